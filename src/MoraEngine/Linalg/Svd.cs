using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MoraEngine.Backends.Cpu;

namespace MoraEngine.Linalg;

/// <summary>
/// Singular value decomposition by one-sided Jacobi rotations (Hestenes), in double precision.
/// </summary>
/// <remarks>
/// The matrix is worked on in the orientation with fewer columns (transposed internally when cols &gt; rows), stored
/// column-major so that each column pair's dot products and rotation are contiguous SIMD loops. Columns are paired
/// in a round-robin (tournament) order: the pairs of one round are disjoint, so they may be rotated in parallel and
/// the result is bitwise the same whatever the number of threads. A sweep visits every pair once; the iteration
/// stops when no pair's cosine |aₚ·a_q| / (‖aₚ‖‖a_q‖) reaches the tolerance, or after <c>maxSweeps</c> sweeps with
/// the current estimate.
/// </remarks>
public static class Svd
{
    /// <summary>Singular values of a <paramref name="rows"/>×<paramref name="cols"/> row-major matrix.</summary>
    /// <param name="matrix">The matrix, row-major, length rows·cols; every entry finite.</param>
    /// <param name="rows">Row count (≥ 1).</param>
    /// <param name="cols">Column count (≥ 1).</param>
    /// <param name="tolerance">Convergence threshold on the cosine between any two working columns (&gt; 0).</param>
    /// <param name="maxSweeps">Most sweeps over all column pairs (≥ 0); on reaching it the current estimate is returned.</param>
    /// <returns>The min(rows, cols) singular values, sorted descending.</returns>
    /// <exception cref="ArgumentException">Bad shape, length, tolerance or sweep count, or a NaN/∞ entry.</exception>
    public static double[] SingularValues(ReadOnlySpan<float> matrix, int rows, int cols, double tolerance = 1e-12, int maxSweeps = 60)
        => Solve(Load(matrix, rows, cols, tolerance, maxSweeps), tolerance, maxSweeps, wantVectors: false).S;

    /// <inheritdoc cref="SingularValues(ReadOnlySpan{float}, int, int, double, int)"/>
    public static double[] SingularValues(ReadOnlySpan<double> matrix, int rows, int cols, double tolerance = 1e-12, int maxSweeps = 60)
        => Solve(Load(matrix, rows, cols, tolerance, maxSweeps), tolerance, maxSweeps, wantVectors: false).S;

    /// <summary>
    /// Thin decomposition A = U·diag(S)·Vᵀ of a <paramref name="rows"/>×<paramref name="cols"/> row-major matrix,
    /// with k = min(rows, cols).
    /// </summary>
    /// <returns>
    /// U (rows×k, row-major), S (length k, descending) and V (cols×k, row-major). On convergence U and V have
    /// orthonormal columns; columns of U belonging to zero singular values are completed to an orthonormal set.
    /// </returns>
    /// <inheritdoc cref="SingularValues(ReadOnlySpan{float}, int, int, double, int)" path="/param"/>
    /// <exception cref="ArgumentException">Bad shape, length, tolerance or sweep count, or a NaN/∞ entry.</exception>
    public static (double[] U, double[] S, double[] V) Decompose(ReadOnlySpan<double> matrix, int rows, int cols, double tolerance = 1e-12, int maxSweeps = 60)
    {
        var r = Solve(Load(matrix, rows, cols, tolerance, maxSweeps), tolerance, maxSweeps, wantVectors: true);
        return (r.U!, r.S, r.V!);
    }

    /// <summary>
    /// How many singular values exceed <paramref name="relative"/> × the largest one (e.g. 0.01 counts those above
    /// 1% of σ_max). The values need not be sorted; an empty or all-zero spectrum counts 0.
    /// </summary>
    /// <exception cref="ArgumentException">A negative, NaN or infinite value, or <paramref name="relative"/> not finite and ≥ 0.</exception>
    public static int SignificantCount(ReadOnlySpan<double> singularValues, double relative)
    {
        if (!double.IsFinite(relative) || relative < 0)
            throw new ArgumentOutOfRangeException(nameof(relative), relative, "relative must be finite and >= 0.");
        var max = 0.0;
        for (var i = 0; i < singularValues.Length; i++)
        {
            var s = singularValues[i];
            if (!double.IsFinite(s) || s < 0)
                throw new ArgumentException($"Singular value at index {i} is {s}; expected finite and >= 0.", nameof(singularValues));
            max = Math.Max(max, s);
        }
        if (max == 0) return 0;
        var threshold = relative * max;
        var count = 0;
        foreach (var s in singularValues)
            if (s > threshold) count++;
        return count;
    }

    /// <summary>The working matrix: n columns of length m (m ≥ n), column-major, scaled by 2^-Exponent.</summary>
    private sealed class Work
    {
        public required double[] A;
        public required int M, N;
        /// <summary>True when the working matrix is Aᵀ (the input had more columns than rows).</summary>
        public required bool Transposed;
        /// <summary>Power of two the input was divided by, so squared norms can neither overflow nor needlessly underflow.</summary>
        public required int Exponent;
        public required bool AllZero;
    }

    private static Work Load<T>(ReadOnlySpan<T> matrix, int rows, int cols, double tolerance, int maxSweeps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (rows <= 0 || cols <= 0 || (long)rows * cols != matrix.Length)
            throw new ArgumentException(
                $"Matrix shape {rows}×{cols} does not fit a span of length {matrix.Length}; rows and cols must be >= 1 and rows·cols must equal the length.",
                nameof(matrix));
        if (!(tolerance > 0) || double.IsInfinity(tolerance))
            throw new ArgumentOutOfRangeException(nameof(tolerance), tolerance, "tolerance must be finite and > 0.");
        ArgumentOutOfRangeException.ThrowIfNegative(maxSweeps);

        var maxAbs = 0.0;
        for (var i = 0; i < matrix.Length; i++)
        {
            var v = double.CreateTruncating(matrix[i]);
            if (!double.IsFinite(v))
                throw new ArgumentException($"Matrix entry at ({i / cols}, {i % cols}) is {v}; entries must be finite.", nameof(matrix));
            maxAbs = Math.Max(maxAbs, Math.Abs(v));
        }

        var transposed = cols > rows;
        int m = transposed ? cols : rows, n = transposed ? rows : cols;
        // Scale by an exact power of two so the largest entry lies in [1, 2): squared column norms then stay
        // within [0, 4·m], far from overflow, and scaling back is exact.
        var exponent = maxAbs == 0 ? 0 : Math.ILogB(maxAbs);
        var scale = Math.ScaleB(1.0, -exponent);
        var a = new double[(long)m * n];
        if (transposed)
        {
            // Working column j is input row j, already contiguous.
            for (var i = 0; i < a.Length; i++) a[i] = double.CreateTruncating(matrix[i]) * scale;
        }
        else
        {
            for (var i = 0; i < rows; i++)
            for (var j = 0; j < cols; j++)
                a[(long)j * m + i] = double.CreateTruncating(matrix[i * cols + j]) * scale;
        }
        return new Work { A = a, M = m, N = n, Transposed = transposed, Exponent = exponent, AllZero = maxAbs == 0 };
    }

    private static (double[]? U, double[] S, double[]? V) Solve(Work w, double tolerance, int maxSweeps, bool wantVectors)
    {
        int m = w.M, n = w.N;
        var a = w.A;
        double[]? v = null;
        if (wantVectors)
        {
            v = new double[n * n];
            for (var j = 0; j < n; j++) v[j * n + j] = 1;
        }

        if (!w.AllZero && n > 1) Sweep(a, v, m, n, tolerance, maxSweeps);

        var sigma = new double[n];
        for (var j = 0; j < n; j++)
        {
            Dots(a.AsSpan(j * m, m), a.AsSpan(j * m, m), out var aa, out _, out _);
            sigma[j] = Math.Sqrt(aa);
        }
        // Descending, ties by column index so the order is deterministic.
        var order = new int[n];
        for (var j = 0; j < n; j++) order[j] = j;
        Array.Sort(order, (x, y) => sigma[x] != sigma[y] ? sigma[y].CompareTo(sigma[x]) : x.CompareTo(y));

        var s = new double[n];
        for (var k = 0; k < n; k++) s[k] = Math.ScaleB(sigma[order[k]], w.Exponent);
        if (!wantVectors) return (null, s, null);

        // Left vectors of the working matrix: normalised columns, column-major m×n.
        var uw = new double[(long)m * n];
        for (var k = 0; k < n; k++)
        {
            var src = a.AsSpan(order[k] * m, m);
            var dst = uw.AsSpan(k * m, m);
            if (sigma[order[k]] > 0)
                for (var i = 0; i < m; i++) dst[i] = src[i] / sigma[order[k]];
            else
                CompleteOrthonormal(uw, m, k);
        }

        // Output row-major; when transposed the roles swap: A = (Aᵀ)ᵀ = V_w·S·U_wᵀ.
        int rows = w.Transposed ? n : m, cols = w.Transposed ? m : n;
        var u = new double[(long)rows * n];
        var vOut = new double[(long)cols * n];
        for (var k = 0; k < n; k++)
        {
            var vk = v!.AsSpan(order[k] * n, n);
            var uk = uw.AsSpan(k * m, m);
            if (w.Transposed)
            {
                for (var i = 0; i < n; i++) u[i * n + k] = vk[i];
                for (var i = 0; i < m; i++) vOut[i * n + k] = uk[i];
            }
            else
            {
                for (var i = 0; i < m; i++) u[i * n + k] = uk[i];
                for (var i = 0; i < n; i++) vOut[i * n + k] = vk[i];
            }
        }
        return (u, s, vOut);
    }

    /// <summary>
    /// Fills column k of <paramref name="u"/> (m-long columns, the first k orthonormal) with a unit vector orthogonal
    /// to them: the standard basis vector with the largest residual after two Gram–Schmidt passes.
    /// </summary>
    private static void CompleteOrthonormal(double[] u, int m, int k)
    {
        var col = u.AsSpan(k * m, m);
        var best = new double[m];
        var bestNorm = -1.0;
        for (var e = 0; e < m && bestNorm < 0.5; e++)
        {
            col.Clear();
            col[e] = 1;
            for (var pass = 0; pass < 2; pass++) // twice, so the result is orthogonal to working precision
                for (var j = 0; j < k; j++)
                {
                    var q = u.AsSpan(j * m, m);
                    Dots(q, col, out _, out _, out var proj);
                    Axpy(-proj, q, col);
                }
            Dots(col, col, out var nn, out _, out _);
            if (nn > bestNorm)
            {
                bestNorm = nn;
                col.CopyTo(best);
            }
        }
        var inv = 1 / Math.Sqrt(bestNorm);
        for (var i = 0; i < m; i++) col[i] = best[i] * inv;
    }

    /// <summary>Jacobi sweeps in round-robin order until no pair's cosine reaches the tolerance.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: skip tier-0 code
    private static void Sweep(double[] a, double[]? v, int m, int n, double tolerance, int maxSweeps)
    {
        // Tournament schedule: position 0 fixed, the rest rotate; an odd n gets a dummy column (index n) as bye.
        var slots = n + (n & 1);
        var pos = new int[slots];
        for (var i = 0; i < slots; i++) pos[i] = i;
        var pairs = slots / 2;
        var pairP = new int[pairs];
        var pairQ = new int[pairs];
        // A round is one fork/join. Measured on 2 cores (1024×256): ~90 µs rounds ran slower split in two than
        // serially, so only rounds with about a million column elements per chunk go parallel.
        var grain = Math.Max(1, (1 << 20) / (m + (v != null ? n : 0)));

        for (var sweep = 0; sweep < maxSweeps; sweep++)
        {
            var rotated = 0;
            for (var round = 0; round < slots - 1; round++)
            {
                for (var i = 0; i < pairs; i++)
                {
                    int x = pos[i], y = pos[slots - 1 - i];
                    pairP[i] = Math.Min(x, y);
                    pairQ[i] = Math.Max(x, y);
                }
                CpuParallel.For(pairs, grain, (start, end) =>
                {
                    var any = false;
                    for (var i = start; i < end; i++)
                    {
                        int p = pairP[i], q = pairQ[i];
                        if (q >= n) continue; // bye
                        any |= Rotate(a, v, m, n, p, q, tolerance);
                    }
                    if (any) Volatile.Write(ref rotated, 1);
                });
                // Advance the schedule: shift slots 1..end by one.
                var last = pos[slots - 1];
                Array.Copy(pos, 1, pos, 2, slots - 2);
                pos[1] = last;
            }
            if (rotated == 0) return;
        }
    }

    /// <summary>Squared column norms below this count as zero (the working matrix's largest entry is in [1, 2)).</summary>
    private const double NegligibleNorm2 = 1e-200;

    /// <summary>Orthogonalises columns p and q if their cosine reaches the tolerance; returns whether it rotated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: skip tier-0 code
    private static bool Rotate(double[] a, double[]? v, int m, int n, int p, int q, double tolerance)
    {
        var ap = a.AsSpan(p * m, m);
        var aq = a.AsSpan(q * m, m);
        Dots(ap, aq, out var alpha, out var beta, out var gamma);
        // A zero column, or one that exact rank deficiency has driven down to the subnormal range (the input is scaled
        // so its largest entry lies in [1, 2)), is orthogonal to everything. Without this, α·β can underflow to 0 while
        // γ is 0 too, and ζ = 0/0 would poison the matrix with NaN.
        if (alpha <= NegligibleNorm2 || beta <= NegligibleNorm2 || Math.Abs(gamma) <= tolerance * Math.Sqrt(alpha) * Math.Sqrt(beta)) return false;

        // Rutishauser's stable formulas: t is the smaller root of t² + 2ζt − 1 = 0, the tangent that zeroes the
        // off-diagonal of the 2×2 Gram matrix [[α, γ], [γ, β]].
        var zeta = (beta - alpha) / (2 * gamma);
        var t = Math.Abs(zeta) < 1e150
            ? (zeta >= 0 ? 1 : -1) / (Math.Abs(zeta) + Math.Sqrt(1 + zeta * zeta))
            : 0.5 / zeta; // 1 + ζ² would overflow; t ≈ 1/(2ζ)
        var c = 1 / Math.Sqrt(1 + t * t);
        var s = c * t;
        ApplyRotation(ap, aq, c, s);
        if (v != null) ApplyRotation(v.AsSpan(p * n, n), v.AsSpan(q * n, n), c, s);
        return true;
    }

    /// <summary>α = x·x, β = y·y, γ = x·y in one pass over both columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: skip tier-0 code
    private static void Dots(ReadOnlySpan<double> x, ReadOnlySpan<double> y, out double xx, out double yy, out double xy)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var len = x.Length;
        var i = 0;
        double sxx = 0, syy = 0, sxy = 0;
        if (Vector.IsHardwareAccelerated && len >= Vector<double>.Count)
        {
            Vector<double> vxx = default, vyy = default, vxy = default;
            for (; i <= len - Vector<double>.Count; i += Vector<double>.Count)
            {
                var a = Vector.LoadUnsafe(ref rx, (nuint)i);
                var b = Vector.LoadUnsafe(ref ry, (nuint)i);
                vxx += a * a;
                vyy += b * b;
                vxy += a * b;
            }
            sxx = Vector.Sum(vxx);
            syy = Vector.Sum(vyy);
            sxy = Vector.Sum(vxy);
        }
        for (; i < len; i++)
        {
            double a = Unsafe.Add(ref rx, i), b = Unsafe.Add(ref ry, i);
            sxx += a * a;
            syy += b * b;
            sxy += a * b;
        }
        xx = sxx;
        yy = syy;
        xy = sxy;
    }

    /// <summary>(x, y) ← (c·x − s·y, s·x + c·y).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: skip tier-0 code
    private static void ApplyRotation(Span<double> x, Span<double> y, double c, double s)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var len = x.Length;
        var i = 0;
        if (Vector.IsHardwareAccelerated && len >= Vector<double>.Count)
        {
            var vc = new Vector<double>(c);
            var vs = new Vector<double>(s);
            for (; i <= len - Vector<double>.Count; i += Vector<double>.Count)
            {
                var a = Vector.LoadUnsafe(ref rx, (nuint)i);
                var b = Vector.LoadUnsafe(ref ry, (nuint)i);
                (vc * a - vs * b).StoreUnsafe(ref rx, (nuint)i);
                (vs * a + vc * b).StoreUnsafe(ref ry, (nuint)i);
            }
        }
        for (; i < len; i++)
        {
            double a = Unsafe.Add(ref rx, i), b = Unsafe.Add(ref ry, i);
            Unsafe.Add(ref rx, i) = c * a - s * b;
            Unsafe.Add(ref ry, i) = s * a + c * b;
        }
    }

    /// <summary>y ← y + alpha·x.</summary>
    private static void Axpy(double alpha, ReadOnlySpan<double> x, Span<double> y)
    {
        for (var i = 0; i < y.Length; i++) y[i] += alpha * x[i];
    }
}
