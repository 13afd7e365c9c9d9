using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoraEngine.Backends.Cpu;

/// <summary>
/// A GEMM epilogue that adds a narrow matrix S [m, w] into C [m, n] through a fixed column map: for every row i and
/// every segment (dst, src, len, broadcast), C[i, dst + t] += S[i, src + t] (or S[i, src] when broadcast) for
/// t &lt; len. This is MoRA's decompression (y += f_decomp(ŷ): tiles and repeat-interleave groups) and the transpose
/// of its compression (gx += f_compᵀ(gx̂)) as data: a layer's product and its update in one pass over C.
/// </summary>
internal unsafe struct GatherAdd
{
    public float* Src;
    public nint Lds;
    /// <summary>Quadruples (dst, src, len, broadcast).</summary>
    public int* Segments;
    public int Count;
}

internal static unsafe partial class Sgemm
{
    /// <summary>Integers per segment of a gather-add map: (dst column, src column, length, broadcast 0/1).</summary>
    internal const int SegmentInts = 4;

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C, then C[i, d + t] += S[i, s + t] (S[i, s] for a broadcast segment) for every
    /// segment (d, s, len, broadcast) of <paramref name="segments"/> and t &lt; len. The packed path applies the
    /// segments to each block of C as soon as its product is final, while the block is in cache, so C is written
    /// once; the unpacked paths (a few rows or columns) apply them after the product. Segments may overlap: their
    /// adds run in order. S is [m, sCols] with row stride lds; every segment must fit: dst + len ≤ n and
    /// src + len ≤ sCols (src &lt; sCols when broadcast).
    /// </summary>
    internal static void MultiplyGatherAdd(Isa isa, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc,
        ReadOnlySpan<float> s, int sCols, int lds, ReadOnlySpan<int> segments)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        CheckLength(a.Length, transA ? k : m, transA ? m : k, lda, 0, 1, nameof(a));
        CheckLength(b.Length, transB ? n : k, transB ? k : n, ldb, 0, 1, nameof(b));
        CheckLength(c.Length, m, n, ldc, 0, 1, nameof(c));
        if (sCols < 0 || lds < sCols)
            throw new ArgumentException($"Sgemm.MultiplyGatherAdd: S has {sCols} columns and row stride {lds} (need 0 ≤ columns ≤ stride).");
        CheckLength(s.Length, m, sCols, lds, 0, 1, nameof(s));
        CheckSegments(segments, n, sCols);
        if (!IsSupported(isa)) throw new PlatformNotSupportedException($"GEMM kernel {isa} is not supported on this CPU.");
        if (m == 0 || n == 0) return;

        var unpacked = !transA && transB && (m <= SkinnyRows || n <= NarrowCols) && k >= 32;
        if (unpacked)
            Multiply(isa, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        fixed (float* ps = s)
        fixed (int* pseg = segments)
        {
            var e = new GatherAdd { Src = ps, Lds = lds, Segments = pseg, Count = segments.Length / SegmentInts };
            if (unpacked)
            {
                ApplyGatherAdd(&e, pc, ldc, 0, m, 0, n);
                return;
            }
            var p = new Problem(isa, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc) { Epilogue = &e };
            if ((long)m * n * k < ParallelThreshold || CpuThreadPool.Parallelism == 1)
                RunSerial(in p, 0, m, 0, n);
            else
                RunParallel(&p);
        }
    }

    /// <summary>As <see cref="MultiplyGatherAdd(Isa, bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, ReadOnlySpan{float}, int, int, ReadOnlySpan{int})"/> with the detected kernel.</summary>
    internal static void MultiplyGatherAdd(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc,
        ReadOnlySpan<float> s, int sCols, int lds, ReadOnlySpan<int> segments)
        => MultiplyGatherAdd(ActiveIsa, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, s, sCols, lds, segments);

    private static void CheckSegments(ReadOnlySpan<int> segments, int n, int sCols)
    {
        if (segments.Length % SegmentInts != 0)
            throw new ArgumentException($"Sgemm.MultiplyGatherAdd: the segment map has {segments.Length} integers, not a multiple of {SegmentInts} (dst, src, len, broadcast).");
        for (var i = 0; i < segments.Length; i += SegmentInts)
        {
            int d = segments[i], src = segments[i + 1], len = segments[i + 2], bc = segments[i + 3];
            var srcEnd = bc != 0 ? (long)src + (len > 0 ? 1 : 0) : (long)src + len;
            if (d < 0 || src < 0 || len < 0 || bc is not (0 or 1) || (long)d + len > n || srcEnd > sCols)
                throw new ArgumentException($"Sgemm.MultiplyGatherAdd: segment {i / SegmentInts} (dst {d}, src {src}, len {len}, broadcast {bc}) does not fit C's {n} columns and S's {sCols}.");
        }
    }

    /// <summary>Applies a gather-add to rows [i0, i0 + rows) × columns [j0, j0 + cols) of C, row by row.</summary>
    private static void ApplyGatherAdd(GatherAdd* e, float* c, nint ldc, int i0, int rows, int j0, int cols)
    {
        int j1 = j0 + cols;
        int* seg = e->Segments;
        for (int i = i0; i < i0 + rows; i++)
        {
            float* crow = c + i * ldc, srow = e->Src + i * e->Lds;
            for (int q = 0; q < e->Count; q++)
            {
                int d = seg[q * SegmentInts], len = seg[q * SegmentInts + 2];
                int lo = Math.Max(d, j0), hi = Math.Min(d + len, j1);
                if (lo >= hi) continue;
                int src = seg[q * SegmentInts + 1];
                if (seg[q * SegmentInts + 3] != 0)
                    AddScalar(crow + lo, srow[src], hi - lo);
                else
                    AddRow(crow + lo, srow + src + (lo - d), hi - lo);
            }
        }
    }

    /// <summary>d[0..n) += s[0..n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* d, float* s, int n)
    {
        int t = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; t + 16 <= n; t += 16) Vector512.Store(Vector512.Load(d + t) + Vector512.Load(s + t), d + t);
        for (; t + 8 <= n; t += 8) Vector256.Store(Vector256.Load(d + t) + Vector256.Load(s + t), d + t);
        for (; t < n; t++) d[t] += s[t];
    }

    /// <summary>d[0..n) += v.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddScalar(float* d, float v, int n)
    {
        int t = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vv = Vector512.Create(v);
            for (; t + 16 <= n; t += 16) Vector512.Store(Vector512.Load(d + t) + vv, d + t);
        }
        for (; t < n; t++) d[t] += v;
    }
}
