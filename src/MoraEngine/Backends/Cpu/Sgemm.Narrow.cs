using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoraEngine.Backends.Cpu;

internal static unsafe partial class Sgemm
{
    /// <summary>Whether A·Bᵀ with few columns (B stored n×k) takes <see cref="RunNarrow512"/>.</summary>
    private static bool TakesNarrow512(Isa isa, bool transA, bool transB, int n, int k) =>
        isa == Isa.Avx512 && !transA && transB && n <= NarrowCols && k >= 16;

    /// <summary>
    /// C = alpha·A·Bᵀ + beta·C for many rows of A and n ≤ <see cref="NarrowCols"/> rows of B (B stored n×k): an
    /// adapter's rank-r side, x·Aᵀ and gy·B. Each row of A is read once, in place, against B's rows, which are first
    /// copied to a 64-byte aligned buffer (8·k floats, in L1/L2): three rows of A and eight rows of B per step keep 24
    /// vector accumulators, whose lanes are then summed by one shuffle tree per row. Loads, not FMAs, bound this loop
    /// (a misaligned 64-byte load costs two cache accesses), so the aligned copy and the third row each cut the loads
    /// per FMA. A is neither packed nor transposed. Rows are split over the cores; each output is summed in the same
    /// order whatever the split or the kernel that takes its row.
    /// </summary>
    private static void RunNarrow512(Problem* p)
    {
        var chunks = (long)p->M * p->N * p->K < ParallelThreshold ? 1 : Math.Min(CpuThreadPool.Parallelism, Math.Max(1, p->M / 16));
        var ctx = new SkinnyContext { P = p, Chunks = chunks };
        if (chunks == 1) Narrow512Chunk(&ctx, 0);
        else CpuThreadPool.For(chunks, &Narrow512Chunk, &ctx);
    }

    /// <summary>Per-thread aligned copy of the eight rows of B a narrow product reads (pinned; grows to the largest k seen).</summary>
    [ThreadStatic] private static float[]? t_narrowRows;

    private static void Narrow512Chunk(void* context, int index)
    {
        var ctx = (SkinnyContext*)context;
        ref readonly Problem p = ref *ctx->P;
        // Row ranges in whole groups of three, so that only the last chunk can end on one or two rows.
        int groups = (p.M + 2) / 3;
        int i0 = (int)((long)groups * index / ctx->Chunks) * 3;
        int i1 = Math.Min(p.M, (int)((long)groups * (index + 1) / ctx->Chunks) * 3);
        if (i0 >= i1) return;
        int k = p.K, ldw = RoundUp(k, 16);
        if (t_narrowRows is null || t_narrowRows.Length < 8 * ldw + 16)
            t_narrowRows = GC.AllocateUninitializedArray<float>(8 * ldw + 16, pinned: true);
        nint addr = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(t_narrowRows));
        float* w = (float*)((addr + 63) & ~(nint)63);
        float* s = stackalloc float[24];
        for (int j0 = 0; j0 < p.N; j0 += 8)
        {
            // B's rows j0.. of this group, then rows of zeros for the columns past n.
            int nj = Math.Min(8, p.N - j0);
            for (int t = 0; t < 8; t++)
            {
                var dst = new Span<float>(w + t * ldw, k);
                if (t < nj) new ReadOnlySpan<float>(p.B + (j0 + t) * p.Ldb, k).CopyTo(dst);
                else dst.Clear();
            }
            int i = i0;
            for (; i + 3 <= i1; i += 3)
            {
                Narrow3x8(p.A + i * p.Lda, p.Lda, k, w, ldw, s);
                for (int t = 0; t < 3; t++) Narrow512Store(p.C + (i + t) * p.Ldc + j0, s + 8 * t, nj, p.Alpha, p.Beta);
            }
            if (i < i1)
            {
                // One or two last rows (the second pointer repeats the first when there is one).
                bool two = i + 1 < i1;
                float* x0 = p.A + i * p.Lda;
                Narrow2x8(x0, two ? x0 + p.Lda : x0, k, w, ldw, s);
                Narrow512Store(p.C + i * p.Ldc + j0, s, nj, p.Alpha, p.Beta);
                if (two) Narrow512Store(p.C + (i + 1) * p.Ldc + j0, s + 8, nj, p.Alpha, p.Beta);
            }
        }
    }

    /// <summary>
    /// c[j] = alpha·s[j] (+ beta·c[j]) for j &lt; n, 1 ≤ n ≤ 8. The eight sums are read back as the vector they were
    /// stored as: reading them one float at a time misses store forwarding, about 15 cycles each, which cost more than
    /// the three rows' arithmetic (three rows of 256: 87 ns, 249 ns with scalar stores).
    /// </summary>
    private static void Narrow512Store(float* c, float* s, int n, float alpha, float beta)
    {
        var sum = Vector256.Load(s);
        if (n == 8)
        {
            Vector256.Store(beta == 0f ? sum * alpha : Fma.MultiplyAdd(sum, Vector256.Create(alpha), Vector256.Load(c) * beta), c);
            return;
        }
        // n < 8: C's columns past n are neither read nor written, and the lanes go out of registers one by one (a
        // masked store costs more here).
        if (beta != 0f)
        {
            var old = Vector256.Create(c[0], n > 1 ? c[1] : 0f, n > 2 ? c[2] : 0f, n > 3 ? c[3] : 0f,
                n > 4 ? c[4] : 0f, n > 5 ? c[5] : 0f, n > 6 ? c[6] : 0f, 0f);
            sum = Fma.MultiplyAdd(sum, Vector256.Create(alpha), old * beta);
        }
        else sum *= alpha;
        var lo = sum.GetLower();
        c[0] = lo.ToScalar();
        if (n > 1) c[1] = lo.GetElement(1);
        if (n > 2) c[2] = lo.GetElement(2);
        if (n > 3) c[3] = lo.GetElement(3);
        if (n <= 4) return;
        var hi = sum.GetUpper();
        c[4] = hi.ToScalar();
        if (n > 5) c[5] = hi.GetElement(1);
        if (n > 6) c[6] = hi.GetElement(2);
    }

    /// <summary>
    /// s[8t..8t + 8) = x_t·w_j for the three rows x_t = x + t·ldx and the eight rows w_j = w + j·ldw (aligned), each of
    /// length k: 24 accumulators, three loads of x and eight aligned loads of w per 24 FMAs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Narrow3x8(float* x, nint ldx, int k, float* w, int ldw, float* s)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        float* x1 = x + ldx, x2 = x1 + ldx;
        int q = 0;
        for (; q + 16 <= k; q += 16)
        {
            var xa = Vector512.Load(x + q);
            var xb = Vector512.Load(x1 + q);
            var xc = Vector512.Load(x2 + q);
            float* wq = w + q;
            var v = Vector512.LoadAligned(wq);
            a0 = Avx512F.FusedMultiplyAdd(xa, v, a0); b0 = Avx512F.FusedMultiplyAdd(xb, v, b0); c0 = Avx512F.FusedMultiplyAdd(xc, v, c0);
            v = Vector512.LoadAligned(wq + ldw);
            a1 = Avx512F.FusedMultiplyAdd(xa, v, a1); b1 = Avx512F.FusedMultiplyAdd(xb, v, b1); c1 = Avx512F.FusedMultiplyAdd(xc, v, c1);
            v = Vector512.LoadAligned(wq + 2 * ldw);
            a2 = Avx512F.FusedMultiplyAdd(xa, v, a2); b2 = Avx512F.FusedMultiplyAdd(xb, v, b2); c2 = Avx512F.FusedMultiplyAdd(xc, v, c2);
            v = Vector512.LoadAligned(wq + 3 * ldw);
            a3 = Avx512F.FusedMultiplyAdd(xa, v, a3); b3 = Avx512F.FusedMultiplyAdd(xb, v, b3); c3 = Avx512F.FusedMultiplyAdd(xc, v, c3);
            v = Vector512.LoadAligned(wq + 4 * ldw);
            a4 = Avx512F.FusedMultiplyAdd(xa, v, a4); b4 = Avx512F.FusedMultiplyAdd(xb, v, b4); c4 = Avx512F.FusedMultiplyAdd(xc, v, c4);
            v = Vector512.LoadAligned(wq + 5 * ldw);
            a5 = Avx512F.FusedMultiplyAdd(xa, v, a5); b5 = Avx512F.FusedMultiplyAdd(xb, v, b5); c5 = Avx512F.FusedMultiplyAdd(xc, v, c5);
            v = Vector512.LoadAligned(wq + 6 * ldw);
            a6 = Avx512F.FusedMultiplyAdd(xa, v, a6); b6 = Avx512F.FusedMultiplyAdd(xb, v, b6); c6 = Avx512F.FusedMultiplyAdd(xc, v, c6);
            v = Vector512.LoadAligned(wq + 7 * ldw);
            a7 = Avx512F.FusedMultiplyAdd(xa, v, a7); b7 = Avx512F.FusedMultiplyAdd(xb, v, b7); c7 = Avx512F.FusedMultiplyAdd(xc, v, c7);
        }
        Vector256.Store(Sum8(a0, a1, a2, a3, a4, a5, a6, a7), s);
        Vector256.Store(Sum8(b0, b1, b2, b3, b4, b5, b6, b7), s + 8);
        Vector256.Store(Sum8(c0, c1, c2, c3, c4, c5, c6, c7), s + 16);
        for (; q < k; q++)
            for (int t = 0; t < 3; t++)
            {
                float u = x[t * ldx + q];
                for (int j = 0; j < 8; j++) s[8 * t + j] += u * w[j * ldw + q];
            }
    }

    /// <summary>s[0..8) = x0·w_j and s[8..16) = x1·w_j for the eight rows w_j = w + j·ldw (aligned), each of length k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Narrow2x8(float* x0, float* x1, int k, float* w, int ldw, float* s)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        int q = 0;
        for (; q + 16 <= k; q += 16)
        {
            var xa = Vector512.Load(x0 + q);
            var xb = Vector512.Load(x1 + q);
            float* wq = w + q;
            var v = Vector512.LoadAligned(wq); a0 = Avx512F.FusedMultiplyAdd(xa, v, a0); b0 = Avx512F.FusedMultiplyAdd(xb, v, b0);
            v = Vector512.LoadAligned(wq + ldw); a1 = Avx512F.FusedMultiplyAdd(xa, v, a1); b1 = Avx512F.FusedMultiplyAdd(xb, v, b1);
            v = Vector512.LoadAligned(wq + 2 * ldw); a2 = Avx512F.FusedMultiplyAdd(xa, v, a2); b2 = Avx512F.FusedMultiplyAdd(xb, v, b2);
            v = Vector512.LoadAligned(wq + 3 * ldw); a3 = Avx512F.FusedMultiplyAdd(xa, v, a3); b3 = Avx512F.FusedMultiplyAdd(xb, v, b3);
            v = Vector512.LoadAligned(wq + 4 * ldw); a4 = Avx512F.FusedMultiplyAdd(xa, v, a4); b4 = Avx512F.FusedMultiplyAdd(xb, v, b4);
            v = Vector512.LoadAligned(wq + 5 * ldw); a5 = Avx512F.FusedMultiplyAdd(xa, v, a5); b5 = Avx512F.FusedMultiplyAdd(xb, v, b5);
            v = Vector512.LoadAligned(wq + 6 * ldw); a6 = Avx512F.FusedMultiplyAdd(xa, v, a6); b6 = Avx512F.FusedMultiplyAdd(xb, v, b6);
            v = Vector512.LoadAligned(wq + 7 * ldw); a7 = Avx512F.FusedMultiplyAdd(xa, v, a7); b7 = Avx512F.FusedMultiplyAdd(xb, v, b7);
        }
        Vector256.Store(Sum8(a0, a1, a2, a3, a4, a5, a6, a7), s);
        Vector256.Store(Sum8(b0, b1, b2, b3, b4, b5, b6, b7), s + 8);
        for (; q < k; q++)
        {
            float u = x0[q], t = x1[q];
            for (int j = 0; j < 8; j++) s[j] += u * w[j * ldw + q];
            for (int j = 0; j < 8; j++) s[8 + j] += t * w[j * ldw + q];
        }
    }

    /// <summary>The lane sums of eight vectors, [Σv0, …, Σv7], by a shuffle tree (halving the lanes three times).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Sum8(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3,
        Vector512<float> v4, Vector512<float> v5, Vector512<float> v6, Vector512<float> v7)
    {
        // 512 → 256 bits per vector: [v.lane0 + v.lane2, v.lane1 + v.lane3] for two vectors in one register.
        var u01 = Avx512F.Shuffle4x128(v0, v1, 0x44) + Avx512F.Shuffle4x128(v0, v1, 0xEE);
        var u23 = Avx512F.Shuffle4x128(v2, v3, 0x44) + Avx512F.Shuffle4x128(v2, v3, 0xEE);
        var u45 = Avx512F.Shuffle4x128(v4, v5, 0x44) + Avx512F.Shuffle4x128(v4, v5, 0xEE);
        var u67 = Avx512F.Shuffle4x128(v6, v7, 0x44) + Avx512F.Shuffle4x128(v6, v7, 0xEE);
        // 256 → 128 bits: 128-bit lane j holds four partial sums of v_j (then of v_{j+4} in the second register).
        var lo = Avx512F.Shuffle4x128(u01, u23, 0x88) + Avx512F.Shuffle4x128(u01, u23, 0xDD);
        var hi = Avx512F.Shuffle4x128(u45, u67, 0x88) + Avx512F.Shuffle4x128(u45, u67, 0xDD);
        // 128 → 32 bits: lane j becomes [Σv_j, Σv_{j+4}, Σv_j, Σv_{j+4}].
        var y = Avx512F.UnpackLow(lo, hi) + Avx512F.UnpackHigh(lo, hi);
        y += Avx512F.Permute4x32(y, 0x4E);
        // Gather [Σv0, Σv1, Σv2, Σv3, Σv4, …] from elements 0, 4, 8, 12, 1, 5, 9, 13.
        var order = Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
        return Avx512F.PermuteVar16x32(y, order).GetLower();
    }
}
