using MoraEngine.Backends.Cpu;
using Xunit;

namespace MoraEngine.Tests;

public class SgemmTests
{
    // Isa is internal, so theories take the kernel by name (public test methods can't expose it).

    /// <summary>Every kernel this CPU can run (Avx512, Avx2 and Scalar on an AVX-512 machine).</summary>
    public static IEnumerable<object[]> Isas()
    {
        foreach (Isa isa in Enum.GetValues<Isa>())
            if (Sgemm.IsSupported(isa)) yield return [isa.ToString()];
    }

    public static IEnumerable<object[]> Shapes()
    {
        (int m, int n, int k)[] shapes =
        [
            (1, 1, 1), (3, 5, 7), (17, 33, 65), (67, 129, 31), (200, 1, 300), (1, 300, 200),
            (255, 257, 259),
            (400, 301, 600),   // crosses MC (192) and KC (256), uneven last blocks
            (19, 4133, 300),   // crosses NC (512): A packed once per K block for all nine panels
            (8, 32, 256),      // exactly one AVX-512 tile and one KC block
            (48, 64, 513),
        ];
        foreach (var (m, n, k) in shapes)
            yield return [m, n, k];
    }

    private sealed class Case
    {
        public required int M, N, K, Lda, Ldb, Ldc;
        public required bool TransA, TransB;
        public required float[] A, B, C0;
        public required double[] Expected, Bound;
    }

    private static float[] RandomArray(Random rng, int length)
    {
        var x = new float[length];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>Builds a case with padded leading dimensions and the double-precision reference result.</summary>
    private static Case MakeCase(Random rng, bool transA, bool transB, int m, int n, int k, float alpha, float beta,
        int padA = 0, int padB = 0, int padC = 0, bool nanC = false)
    {
        int rowsA = transA ? k : m, colsA = transA ? m : k;
        int rowsB = transB ? n : k, colsB = transB ? k : n;
        int lda = Math.Max(1, colsA + padA), ldb = Math.Max(1, colsB + padB), ldc = Math.Max(1, n + padC);
        float[] a = RandomArray(rng, Math.Max(0, (rowsA - 1) * lda + colsA));
        float[] b = RandomArray(rng, Math.Max(0, (rowsB - 1) * ldb + colsB));
        float[] c0 = RandomArray(rng, Math.Max(0, (m - 1) * ldc + n));
        if (nanC) Array.Fill(c0, float.NaN);

        var expected = new double[m * n];
        var bound = new double[m * n];
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0, abs = 0;
            for (int p = 0; p < k; p++)
            {
                double av = transA ? a[p * lda + i] : a[i * lda + p];
                double bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                sum += av * bv;
                abs += Math.Abs(av * bv);
            }
            double old = beta == 0 ? 0 : c0[i * ldc + j];
            expected[i * n + j] = alpha * sum + beta * old;
            bound[i * n + j] = Math.Abs(alpha) * abs + Math.Abs(beta * old);
        }

        return new Case
        {
            M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc, TransA = transA, TransB = transB,
            A = a, B = b, C0 = c0, Expected = expected, Bound = bound,
        };
    }

    private static void AssertClose(Case t, float[] c, int cOffset = 0, string what = "")
    {
        for (int i = 0; i < t.M; i++)
        for (int j = 0; j < t.N; j++)
        {
            double got = c[cOffset + i * t.Ldc + j];
            double want = t.Expected[i * t.N + j];
            double tol = 1e-4 * t.Bound[i * t.N + j] + 1e-30;
            if (!(Math.Abs(got - want) <= tol))
                Assert.Fail($"{what} m={t.M} n={t.N} k={t.K} tA={t.TransA} tB={t.TransB}: C[{i},{j}] = {got}, expected {want} (tol {tol})");
        }

        // Padding between rows of C must be untouched.
        for (int i = 0; i + 1 < t.M; i++)
        for (int j = t.N; j < t.Ldc; j++)
        {
            int idx = cOffset + i * t.Ldc + j;
            Assert.True(c[idx].Equals(t.C0[i * t.Ldc + j]), $"{what} padding C[{i},{j}] was modified");
        }
    }

    private static float[] Run(Isa isa, Case t, float alpha, float beta)
    {
        var c = (float[])t.C0.Clone();
        Sgemm.Multiply(isa, t.TransA, t.TransB, t.M, t.N, t.K, alpha, t.A, t.Lda, t.B, t.Ldb, beta, c, t.Ldc);
        return c;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void AllTransposesAndKernels_MatchReference(int m, int n, int k)
    {
        var rng = new Random(m * 1_000_003 + n * 1009 + k);
        foreach (bool transA in new[] { false, true })
        foreach (bool transB in new[] { false, true })
        {
            // beta = 0 with NaN garbage in C, no padding.
            var t0 = MakeCase(rng, transA, transB, m, n, k, 1f, 0f, nanC: true);
            // alpha ≠ 1, beta = 1, padded leading dimensions.
            var t1 = MakeCase(rng, transA, transB, m, n, k, -0.75f, 1f, padA: 3, padB: 5, padC: 7);
            foreach (Isa isa in Enum.GetValues<Isa>())
            {
                if (!Sgemm.IsSupported(isa)) continue;
                AssertClose(t0, Run(isa, t0, 1f, 0f), what: $"{isa} beta=0");
                AssertClose(t1, Run(isa, t1, -0.75f, 1f), what: $"{isa} beta=1");
            }
        }
    }

    /// <summary>
    /// A thread whose columns span several NC panels packs A once per K block for all of them: the same bits as
    /// packing it per panel, since every element still sums its K blocks in order (ragged rows, panels and blocks).
    /// </summary>
    [Theory]
    [InlineData(203, 1100, 600)]  // two or three panels per thread (the last ragged), three K blocks, a ragged row block
    [InlineData(37, 2049, 264)]   // one K block of 264, a one-column last tile
    public void PackingASlabOncePerKBlock_SameBitsAsPerPanel(int m, int n, int k)
    {
        var rng = new Random(m + n + k);
        foreach (bool transA in new[] { false, true })
        foreach (bool transB in new[] { false, true })
        {
            var t = MakeCase(rng, transA, transB, m, n, k, -0.75f, 1f, padA: 3, padB: 5, padC: 7);
            foreach (Isa isa in Enum.GetValues<Isa>())
            {
                if (!Sgemm.IsSupported(isa)) continue;
                float[] perPanel, slab;
                try
                {
                    Sgemm.UseSlab = false;
                    perPanel = Run(isa, t, -0.75f, 1f);
                }
                finally
                {
                    Sgemm.UseSlab = true;
                }
                slab = Run(isa, t, -0.75f, 1f);
                AssertClose(t, slab, what: $"{isa} slab");
                for (int i = 0; i < slab.Length; i++)
                    if (BitConverter.SingleToInt32Bits(slab[i]) != BitConverter.SingleToInt32Bits(perPanel[i]))
                        Assert.Fail($"{isa} tA={transA} tB={transB}: element {i} is {slab[i]} with A packed once per K block, {perPanel[i]} per panel");
            }
        }
    }

    /// <summary>Columns [k0, k0 + kn) of op(X) as their own matrix (row-major storage with a padded leading dimension).</summary>
    private static (float[] X, int Ld) SliceK(float[] x, int ld, bool trans, int outer, int k0, int kn, int pad)
    {
        // trans: X stored K×outer, so the slice is rows k0..k0+kn; otherwise X stored outer×K: columns k0..k0+kn.
        int rows = trans ? kn : outer, cols = trans ? outer : kn, newLd = cols + pad;
        var r = new float[Math.Max(0, (rows - 1) * newLd + cols)];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                r[i * newLd + j] = trans ? x[(k0 + i) * ld + j] : x[i * ld + k0 + j];
        return (r, newLd);
    }

    /// <summary>
    /// C = alpha·(op(A)·op(B) + op(A2)·op(B2)) + beta·C against the double reference of one product over the joined K:
    /// every transpose and kernel, K blocks that straddle the two sources, the unpacked shapes (two products).
    /// </summary>
    [Theory]
    [InlineData(37, 53, 250, 8)]     // K = 258: two blocks, the second straddles A and A2
    [InlineData(200, 300, 256, 8)]   // A fills the first block exactly; A2 alone in the last
    [InlineData(400, 301, 600, 16)]  // crosses MC, KC and the parallel threshold
    [InlineData(5, 7, 3, 2)]
    [InlineData(19, 4133, 64, 4)]    // crosses NC (512)
    [InlineData(2048, 16, 256, 8)]   // n ≤ 16 with Bᵀ: two products
    [InlineData(3, 40, 64, 8)]       // m ≤ 4 with Bᵀ: two products
    public void MultiplyConcat_IsOneGemmOverTheJoinedK(int m, int n, int k, int k2)
    {
        var rng = new Random(m * 7919 + n * 31 + k + k2);
        foreach (bool transA in new[] { false, true })
        foreach (bool transB in new[] { false, true })
        foreach (var (alpha, beta) in new[] { (1f, 0f), (-0.5f, 1f) })
        {
            var t = MakeCase(rng, transA, transB, m, n, k + k2, alpha, beta, padC: 3, nanC: beta == 0);
            var (a1, lda1) = SliceK(t.A, t.Lda, transA, m, 0, k, 1);
            var (a2, lda2) = SliceK(t.A, t.Lda, transA, m, k, k2, 2);
            var (b1, ldb1) = SliceK(t.B, t.Ldb, !transB, n, 0, k, 3);
            var (b2, ldb2) = SliceK(t.B, t.Ldb, !transB, n, k, k2, 0);
            foreach (Isa isa in Enum.GetValues<Isa>())
            {
                if (!Sgemm.IsSupported(isa)) continue;
                var c = (float[])t.C0.Clone();
                Sgemm.MultiplyConcat(isa, transA, transB, m, n, k, alpha, a1, lda1, b1, ldb1, k2, a2, lda2, b2, ldb2, beta, c, t.Ldc);
                AssertClose(t, c, what: $"{isa} concat alpha={alpha} beta={beta}");
            }
        }
    }

    /// <summary>
    /// The gather-add epilogue (MoRA's column maps): the product plus S's columns added through overlapping slice and
    /// broadcast segments, against the double reference, for every transpose and kernel, blocks split over MC, KC,
    /// NC and threads (segments cut by block edges), the unpacked shapes and k = 0.
    /// </summary>
    [Theory]
    [InlineData(37, 53, 45, 7)]
    [InlineData(400, 301, 600, 64)]  // crosses MC, KC and the parallel threshold: blocks end inside segments
    [InlineData(19, 4133, 64, 100)]  // crosses NC (512)
    [InlineData(2048, 16, 256, 5)]   // n ≤ 16 with Bᵀ: unpacked, then the map
    [InlineData(3, 40, 64, 9)]       // m ≤ 4 with Bᵀ: unpacked
    [InlineData(6, 20, 0, 4)]        // k = 0: beta·C plus the map
    public void MultiplyGatherAdd_AddsTheColumnMapToTheProduct(int m, int n, int k, int w)
    {
        var rng = new Random(m * 131 + n * 17 + k + w);
        // Tiles of width w over C (the last one cut), a broadcast group, and a slice overlapping the first tile.
        var segs = new List<int>();
        for (var d = 0; d < n; d += w) segs.AddRange([d, 0, Math.Min(w, n - d), 0]);
        segs.AddRange([n / 3, w - 1, Math.Min(n - n / 3, 11), 1]);
        segs.AddRange([0, w / 2, Math.Min(n, w - w / 2), 0]);
        foreach (bool transA in new[] { false, true })
        foreach (bool transB in new[] { false, true })
        foreach (var (alpha, beta) in new[] { (1f, 0f), (-0.5f, 1f) })
        {
            var t = MakeCase(rng, transA, transB, m, n, k, alpha, beta, padC: 3, nanC: beta == 0);
            const int padS = 2;
            var sMat = RandomArray(rng, m * (w + padS));
            for (var q = 0; q < segs.Count; q += 4)
                for (var i = 0; i < m; i++)
                    for (var j = 0; j < segs[q + 2]; j++)
                    {
                        double v = sMat[i * (w + padS) + segs[q + 1] + (segs[q + 3] != 0 ? 0 : j)];
                        t.Expected[i * n + segs[q] + j] += v;
                        t.Bound[i * n + segs[q] + j] += Math.Abs(v);
                    }
            foreach (Isa isa in Enum.GetValues<Isa>())
            {
                if (!Sgemm.IsSupported(isa)) continue;
                var c = (float[])t.C0.Clone();
                Sgemm.MultiplyGatherAdd(isa, transA, transB, m, n, k, alpha, t.A, t.Lda, t.B, t.Ldb, beta, c, t.Ldc, sMat, w, w + padS, segs.ToArray());
                AssertClose(t, c, what: $"{isa} gather-add alpha={alpha} beta={beta}");
            }
        }
    }

    [Fact]
    public void MultiplyGatherAdd_RefusesSegmentsOutsideTheMatrices()
    {
        var a = new float[4 * 8];
        var b = new float[8 * 6];
        var c = new float[4 * 6];
        var s = new float[4 * 3];
        void Go(params int[] segs) => Sgemm.MultiplyGatherAdd(false, false, 4, 6, 8, 1f, a, 8, b, 6, 0f, c, 6, s, 3, 3, segs);
        Go(0, 0, 3, 0, 3, 2, 3, 1);
        Assert.Contains("segment 0", Assert.Throws<ArgumentException>(() => Go(4, 0, 3, 0)).Message);   // past C's columns
        Assert.Contains("segment 1", Assert.Throws<ArgumentException>(() => Go(0, 0, 1, 0, 0, 1, 3, 0)).Message); // past S's
        Assert.Contains("segment 0", Assert.Throws<ArgumentException>(() => Go(0, 3, 2, 1)).Message);   // broadcast of a missing column
        Assert.Contains("multiple of 4", Assert.Throws<ArgumentException>(() => Go(0, 0, 1)).Message);
    }

    /// <summary>
    /// Products with few columns and many rows run as their transpose (the columns become the kernel's rows): every
    /// transpose, kernel, alpha/beta and padding, on the edges of that path (n = 1 and 16, m = 64, k = 16).
    /// </summary>
    [Theory]
    [InlineData(64, 1, 16)]
    [InlineData(300, 8, 100)]
    [InlineData(2048, 16, 256)]
    [InlineData(100, 5, 17)]
    [InlineData(65, 13, 400)]
    [InlineData(63, 8, 40)]   // one row short: the direct path
    [InlineData(301, 9, 1029)] // two column groups (the second of one), an odd last row, a K tail of 5
    [InlineData(302, 8, 48)]   // serial: whole groups of three rows, then two rows
    [InlineData(7, 3, 16)]     // two groups and one row, no K tail, five columns of zeros
    public void FewColumnsManyRows_RunTransposed_MatchReference(int m, int n, int k)
    {
        var rng = new Random(m * 13 + n * 7 + k);
        foreach (bool transA in new[] { false, true })
        foreach (bool transB in new[] { false, true })
        foreach (var (alpha, beta) in new[] { (1f, 0f), (-0.75f, 0.5f) })
        {
            var t = MakeCase(rng, transA, transB, m, n, k, alpha, beta, padA: 1, padB: 2, padC: 3, nanC: beta == 0);
            foreach (Isa isa in Enum.GetValues<Isa>())
            {
                if (!Sgemm.IsSupported(isa)) continue;
                AssertClose(t, Run(isa, t, alpha, beta), what: $"{isa} alpha={alpha} beta={beta}");
            }
        }
    }

    /// <summary>
    /// Aᵀ·B with small sides over a deep k (MoRA's gM) reads A and B in place: full tiles, ragged last rows and
    /// columns (zero-padded copies), K blocks, serial and split over the cores, padding and alpha/beta, against the
    /// double reference; the other transposes of the same shapes take the packed path and must agree too.
    /// </summary>
    [Theory]
    [InlineData(64, 64, 8192)]    // 16 depth segments over the cores, partials added in order
    [InlineData(101, 101, 2049)]  // 3 tiles and 5 columns: the tail kernel, two row groups (64 + 37); 5 uneven segments
    [InlineData(33, 70, 512)]     // one segment: tiles split over the cores, column by column, ragged both ways
    [InlineData(150, 97, 1500)]   // a one-column tail, three row groups
    [InlineData(40, 38, 900)]     // the widest tail (6 columns)
    [InlineData(5, 70, 3001)]
    [InlineData(160, 160, 1024)]
    [InlineData(8, 32, 512)]     // one full tile, serial
    [InlineData(143, 7, 700)]
    [InlineData(161, 20, 600)]   // one past the side: the packed path
    [InlineData(8, 1000, 2048)]  // few rows of C at any width (an adapter's ghᵀ·x): short K blocks, a ragged last tile
    [InlineData(13, 333, 1100)]
    [InlineData(17, 300, 600)]   // one row past: the packed path
    public void SmallSidesDeepK_MatchReference(int m, int n, int k)
    {
        var rng = new Random(m * 3 + n * 5 + k);
        foreach (bool transA in new[] { true, false })
        foreach (bool transB in new[] { false, true })
        foreach (var (alpha, beta, pad) in new[] { (1f, 0f, 0), (-0.75f, 0.5f, 3) })
        {
            var t = MakeCase(rng, transA, transB, m, n, k, alpha, beta, padA: pad, padB: pad, padC: 3, nanC: beta == 0);
            foreach (Isa isa in Enum.GetValues<Isa>())
            {
                if (!Sgemm.IsSupported(isa)) continue;
                var c1 = Run(isa, t, alpha, beta);
                AssertClose(t, c1, what: $"{isa} alpha={alpha} beta={beta}");
                Assert.Equal(c1, Run(isa, t, alpha, beta)); // deterministic
            }
        }
    }

    /// <summary>
    /// The diagonal blocks of Aᵀ·B in one pass (MoRA's per-chunk gŷ_cᵀ·x_c) against a float64 reference, and bit for
    /// bit against one product per block on the same ISA where both cut k alike: padded strides, ragged tiles, the tail kernel, one depth
    /// segment and several, shallow depths (one product per block), alpha and beta, NaN in C with beta = 0.
    /// </summary>
    [Theory]
    [InlineData(4, 64, 64, 2048, 0)]
    [InlineData(3, 100, 100, 1300, 0)]   // the tail kernel, a ragged row tile, uneven segments
    [InlineData(3, 100, 100, 1300, 256)] // RoPE's wrapping last chunk: B's columns 200..255, then 0..43
    [InlineData(4, 142, 142, 1100, 512)] // 512→2048's chunks: a 14-column strip that wraps, a ragged row tile
    [InlineData(3, 40, 40, 700, 100)]    // the wrap inside the tail columns' copy
    [InlineData(8, 128, 128, 4700, 0)]   // partials capped at 4 MiB: 8 segments instead of 10
    [InlineData(8, 24, 24, 600, 0)]      // C's blocks narrower than a tile
    [InlineData(2, 37, 45, 512, 0)]      // one segment: tiles split over the cores
    [InlineData(3, 20, 20, 100, 0)]      // shallow: one product per block
    [InlineData(3, 20, 20, 100, 50)]     // shallow and wrapping: two products for the last block
    [InlineData(1, 10, 130, 700, 0)]     // few rows of C: one product per block
    public void TnBlocks_AreTheDiagonalBlocksOfTheProduct(int batch, int m, int n, int k, int wrap)
    {
        var rng = new Random(batch * 7 + m * 3 + n + k + wrap);
        int bWrap = wrap == 0 ? batch * n : wrap, bCols = Math.Min(batch * n, bWrap);
        foreach (var (alpha, beta, pad) in new[] { (1f, 0f, 0), (-0.75f, 0.5f, 5) })
        {
            int lda = batch * m + pad, ldb = bCols + pad + 1, ldc = batch * n + 3;
            var a = RandomArray(rng, (k - 1) * lda + batch * m);
            var b = RandomArray(rng, (k - 1) * ldb + bCols);
            var c0 = RandomArray(rng, (m - 1) * ldc + batch * n);
            if (beta == 0f) Array.Fill(c0, float.NaN);
            var want = new double[m * batch * n];
            var tol = new double[m * batch * n];
            for (int q = 0; q < batch; q++)
            for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0, abs = 0;
                for (int p = 0; p < k; p++)
                {
                    double v = (double)a[p * lda + q * m + i] * b[p * ldb + (q * n + j) % bWrap];
                    sum += v;
                    abs += Math.Abs(v);
                }
                double old = beta == 0f ? 0 : c0[i * ldc + q * n + j];
                want[i * batch * n + q * n + j] = alpha * sum + beta * old;
                tol[i * batch * n + q * n + j] = 1e-4 * (Math.Abs(alpha) * abs + Math.Abs(beta * old)) + 1e-30;
            }
            foreach (Isa isa in Enum.GetValues<Isa>())
            {
                if (!Sgemm.IsSupported(isa)) continue;
                Sgemm.ForceIsa(isa);
                try
                {
                    var c = (float[])c0.Clone();
                    Sgemm.MultiplyTnBlocks(batch, m, n, k, alpha, a, lda, b, ldb, bWrap, beta, c, ldc);
                    if (wrap == 0)
                    {
                        var same = (float[])c0.Clone();
                        Sgemm.MultiplyTnBlocks(batch, m, n, k, alpha, a, lda, b, ldb, beta, same, ldc);
                        Assert.True(same.AsSpan().SequenceEqual(c), $"{isa}: B's columns wrapping past the last block changed the result");
                    }
                    var each = (float[])c0.Clone();
                    for (int q = 0; q < batch && wrap == 0; q++)
                        Sgemm.Multiply(true, false, m, n, k, alpha, a.AsSpan(q * m), lda, b.AsSpan(q * n), ldb, beta, each.AsSpan(q * n), ldc);
                    // Bit for bit, unless the batch's partials are capped into fewer, longer depth segments.
                    int Segments(int blocks) => Math.Min((k + Sgemm.SmallTnSegment - 1) / Sgemm.SmallTnSegment,
                        Math.Max(2, Sgemm.SmallTnPartialFloats / (m * blocks * n)));
                    if (wrap == 0 && Segments(batch) == Segments(1))
                        Assert.True(each.AsSpan().SequenceEqual(c), $"{isa}: blocks in one pass differ from one product per block");
                    for (int i = 0; i < m; i++)
                    for (int j = 0; j < batch * n; j++)
                    {
                        double got = c[i * ldc + j], w = want[i * batch * n + j];
                        Assert.True(Math.Abs(got - w) <= tol[i * batch * n + j], $"{isa} block {j / n}: C[{i},{j % n}] = {got}, expected {w}");
                    }
                    // Padding between C's rows is untouched.
                    for (int i = 0; i + 1 < m; i++)
                    for (int j = batch * n; j < ldc; j++)
                        Assert.True(c[i * ldc + j].Equals(c0[i * ldc + j]), $"{isa}: padding C[{i},{j}] was modified");
                }
                finally
                {
                    Sgemm.ForceIsa(null);
                }
            }
        }
    }

    [Fact]
    public void TnBlocks_RefuseOverlappingOrShortOperands()
    {
        var a = new float[600 * 64];
        var b = new float[600 * 64];
        var c = new float[32 * 64];
        Assert.Throws<ArgumentOutOfRangeException>(() => Sgemm.MultiplyTnBlocks(0, 32, 32, 600, 1f, a, 64, b, 64, 0f, c, 64));
        Assert.Throws<ArgumentException>(() => Sgemm.MultiplyTnBlocks(2, 32, 32, 600, 1f, a, 60, b, 64, 0f, c, 64));
        Assert.ThrowsAny<ArgumentException>(() => Sgemm.MultiplyTnBlocks(2, 32, 32, 601, 1f, a, 64, b, 64, 0f, c, 64));
        Assert.ThrowsAny<ArgumentException>(() => Sgemm.MultiplyTnBlocks(3, 32, 32, 600, 1f, a, 96, b, 64, 0f, c, 64));
        Assert.ThrowsAny<ArgumentException>(() => Sgemm.MultiplyTnBlocks(2, 32, 32, 600, 1f, a, 64, b, 64, 31, 0f, c, 64)); // wraps inside a block
        Assert.ThrowsAny<ArgumentException>(() => Sgemm.MultiplyTnBlocks(2, 32, 32, 600, 1f, a, 64, b, 40, 48, 0f, c, 64)); // ldb short of the wrap
        Sgemm.MultiplyTnBlocks(2, 32, 0, 600, 1f, a, 64, b, 64, 0f, c, 64); // empty blocks: nothing to do
        Sgemm.MultiplyTnBlocks(2, 0, 32, 600, 1f, a, 64, b, 64, 0f, c, 64);
        Assert.True(c.All(v => v == 0f), "empty blocks wrote C");
    }

    /// <summary>The unpacked paths on awkward sizes, serial and split: few rows times a transposed weight (x·Wᵀ with W [n, k], m ≤ 4: decoding) and many rows times few (n ≤ 16: an adapter's x·Aᵀ), and shapes just past both.</summary>
    [Theory]
    [InlineData(1, 1, 32)]
    [InlineData(1, 7, 33)]
    [InlineData(2, 300, 100)]
    [InlineData(3, 17, 777)]
    [InlineData(4, 2304, 768)]
    [InlineData(1, 50257, 64)]
    [InlineData(5, 33, 64)]
    [InlineData(300, 8, 100)]
    [InlineData(2048, 16, 256)]
    [InlineData(33, 3, 777)]
    [InlineData(7, 16, 32)]
    [InlineData(9, 17, 40)]
    [InlineData(301, 5, 300)]    // n < 8: masked stores of the narrow kernels' sums
    [InlineData(1000, 11, 64)]   // a group of 8 columns, then one of 3
    public void FewRowsTimesTransposed_MatchesReference(int m, int n, int k)
    {
        var rng = new Random(m * 31 + n * 7 + k);
        var t0 = MakeCase(rng, false, true, m, n, k, 1f, 0f, nanC: true);
        var t1 = MakeCase(rng, false, true, m, n, k, -0.75f, 1f, padA: 3, padB: 5, padC: 7);
        AssertClose(t0, Run(Sgemm.ActiveIsa, t0, 1f, 0f), what: "beta=0");
        AssertClose(t1, Run(Sgemm.ActiveIsa, t1, -0.75f, 1f), what: "beta=1");
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void ArbitraryAlphaBeta_WithPadding(string isaName)
    {
        var isa = Enum.Parse<Isa>(isaName);
        var rng = new Random(7);
        var t = MakeCase(rng, true, false, 37, 71, 45, 2.5f, -0.5f, padA: 1, padB: 16, padC: 3);
        AssertClose(t, Run(isa, t, 2.5f, -0.5f));
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void ZeroK_ScalesC(string isaName)
    {
        var isa = Enum.Parse<Isa>(isaName);
        var rng = new Random(3);
        var t = MakeCase(rng, false, false, 13, 9, 0, 1f, 0.5f, padC: 2);
        AssertClose(t, Run(isa, t, 1f, 0.5f));

        var z = MakeCase(rng, false, true, 13, 9, 0, 1f, 0f, nanC: true);
        var c = Run(isa, z, 1f, 0f);
        for (int i = 0; i < c.Length; i++) Assert.Equal(0f, c[i]);
    }

    [Fact]
    public void EmptyDimensions_DoNothing()
    {
        var c = new float[] { 1, 2, 3 };
        Sgemm.Multiply(false, false, 0, 3, 4, 1f, [], 4, new float[12], 3, 0f, [], 3);
        Sgemm.Multiply(false, false, 3, 0, 4, 1f, new float[12], 4, [], 1, 0f, [], 1);
        Sgemm.Multiply(false, false, 1, 3, 0, 1f, [], 1, [], 3, 2f, c, 3);
        Assert.Equal(new float[] { 2, 4, 6 }, c);
    }

    [Fact]
    public void ShortSpan_Throws()
    {
        Assert.Throws<ArgumentException>(() =>
            Sgemm.Multiply(false, false, 4, 4, 4, 1f, new float[15], 4, new float[16], 4, 0f, new float[16], 4));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            Sgemm.Multiply(false, false, 4, 4, 4, 1f, new float[16], 3, new float[16], 4, 0f, new float[16], 4));
    }

    [Fact]
    public void LargeMultiply_IsDeterministic()
    {
        var rng = new Random(11);
        int m = 300, n = 520, k = 700;
        var a = RandomArray(rng, m * k);
        var b = RandomArray(rng, k * n);
        var c1 = new float[m * n];
        var c2 = new float[m * n];
        Sgemm.Multiply(false, true, m, n, k, 1f, a, k, b, k, 0f, c1, n);
        for (int rep = 0; rep < 3; rep++)
        {
            Array.Fill(c2, float.NaN);
            Sgemm.Multiply(false, true, m, n, k, 1f, a, k, b, k, 0f, c2, n);
            Assert.True(c1.AsSpan().SequenceEqual(c2), "results differ between runs");
        }
    }

    [Fact]
    public void ConcurrentCallers_GetBitIdenticalResults()
    {
        // Callers that find the pool busy run inline on their own thread with a different partition
        // of C; each element's k-order does not depend on the partition, so results must be identical.
        var rng = new Random(13);
        int m = 150, n = 170, k = 530;
        var a = RandomArray(rng, m * k);
        var b = RandomArray(rng, k * n);
        var expected = new float[m * n];
        Sgemm.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, expected, n);

        var results = new bool[4];
        Parallel.For(0, results.Length, t =>
        {
            var c = new float[m * n];
            bool same = true;
            for (int rep = 0; rep < 8; rep++)
            {
                Sgemm.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
                same &= c.AsSpan().SequenceEqual(expected);
            }
            results[t] = same;
        });
        Assert.All(results, Assert.True);
    }

    [Fact]
    public void ForceIsa_SwitchesKernel()
    {
        var rng = new Random(5);
        var t = MakeCase(rng, false, false, 21, 35, 19, 1f, 0f);
        try
        {
            foreach (Isa isa in Enum.GetValues<Isa>())
            {
                if (!Sgemm.IsSupported(isa)) continue;
                Sgemm.ForceIsa(isa);
                Assert.Equal(isa, Sgemm.ActiveIsa);
                var c = (float[])t.C0.Clone();
                Sgemm.Multiply(false, false, t.M, t.N, t.K, 1f, t.A, t.Lda, t.B, t.Ldb, 0f, c, t.Ldc);
                AssertClose(t, c, what: $"forced {isa}");
            }
        }
        finally
        {
            Sgemm.ForceIsa(null);
        }
        Assert.Equal(Sgemm.DetectedIsa, Sgemm.ActiveIsa);
    }

    public static IEnumerable<object[]> BatchCases()
    {
        // (batch, m, n, k, broadcastA, broadcastB)
        foreach (Isa isa in Enum.GetValues<Isa>())
        {
            if (!Sgemm.IsSupported(isa)) continue;
            yield return [isa.ToString(), 5, 7, 9, 11, false, false];     // small: parallel over batch
            yield return [isa.ToString(), 4, 33, 17, 40, true, false];    // strideA = 0
            yield return [isa.ToString(), 3, 20, 45, 16, false, true];    // strideB = 0
            yield return [isa.ToString(), 3, 130, 140, 150, false, true]; // large: parallel inside each multiply
        }
    }

    [Theory]
    [MemberData(nameof(BatchCases))]
    public void Batched_MatchesPerMatrixReference(string isaName, int batch, int m, int n, int k, bool broadcastA, bool broadcastB)
    {
        var isa = Enum.Parse<Isa>(isaName);
        var rng = new Random(batch * 31 + m);
        foreach (bool transA in new[] { false, true })
        foreach (bool transB in new[] { false, true })
        {
            float alpha = 1.5f, beta = 0.25f;
            var cases = new Case[batch];
            var shared = MakeCase(rng, transA, transB, m, n, k, alpha, beta, padA: 2, padB: 1, padC: 3);
            for (int i = 0; i < batch; i++)
            {
                var t = MakeCase(rng, transA, transB, m, n, k, alpha, beta, padA: 2, padB: 1, padC: 3);
                // Broadcast operands are shared by the whole batch: rebuild the reference with them.
                if (broadcastA || broadcastB)
                    t = WithOperands(t, broadcastA ? shared.A : t.A, broadcastB ? shared.B : t.B, alpha, beta);
                cases[i] = t;
            }

            long strideA = broadcastA ? 0 : cases[0].A.Length + 5;
            long strideB = broadcastB ? 0 : cases[0].B.Length + 2;
            long strideC = cases[0].C0.Length + 4;
            var a = new float[broadcastA ? cases[0].A.Length : strideA * batch];
            var b = new float[broadcastB ? cases[0].B.Length : strideB * batch];
            var c = new float[strideC * batch];
            for (int i = 0; i < batch; i++)
            {
                cases[i].A.CopyTo(a, broadcastA ? 0 : i * strideA);
                cases[i].B.CopyTo(b, broadcastB ? 0 : i * strideB);
                cases[i].C0.CopyTo(c, i * strideC);
            }

            Sgemm.MultiplyBatched(isa, batch, transA, transB, m, n, k, alpha, a, cases[0].Lda, strideA,
                b, cases[0].Ldb, strideB, beta, c, cases[0].Ldc, strideC);
            for (int i = 0; i < batch; i++)
                AssertClose(cases[i], c, (int)(i * strideC), $"{isa} batch item {i}");
        }
    }

    private static Case WithOperands(Case t, float[] a, float[] b, float alpha, float beta)
    {
        var expected = new double[t.M * t.N];
        var bound = new double[t.M * t.N];
        for (int i = 0; i < t.M; i++)
        for (int j = 0; j < t.N; j++)
        {
            double sum = 0, abs = 0;
            for (int p = 0; p < t.K; p++)
            {
                double av = t.TransA ? a[p * t.Lda + i] : a[i * t.Lda + p];
                double bv = t.TransB ? b[j * t.Ldb + p] : b[p * t.Ldb + j];
                sum += av * bv;
                abs += Math.Abs(av * bv);
            }
            double old = t.C0[i * t.Ldc + j];
            expected[i * t.N + j] = alpha * sum + beta * old;
            bound[i * t.N + j] = Math.Abs(alpha) * abs + Math.Abs(beta * old);
        }
        return new Case
        {
            M = t.M, N = t.N, K = t.K, Lda = t.Lda, Ldb = t.Ldb, Ldc = t.Ldc, TransA = t.TransA, TransB = t.TransB,
            A = a, B = b, C0 = t.C0, Expected = expected, Bound = bound,
        };
    }
}
