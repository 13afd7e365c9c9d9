using System.Runtime.CompilerServices;
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
    /// adapter's rank-r side, x·Aᵀ and gy·B. Each row of A is read once, in place, against B's rows (in L1/L2): two
    /// rows of A and eight rows of B per step keep 16 vector accumulators, whose lanes are then summed by one shuffle
    /// tree for all 16 outputs. Neither operand is packed or transposed. Rows are split over the cores; each output
    /// is summed in the same order whatever the split.
    /// </summary>
    private static void RunNarrow512(Problem* p)
    {
        var chunks = (long)p->M * p->N * p->K < ParallelThreshold ? 1 : Math.Min(CpuThreadPool.Parallelism, Math.Max(1, p->M / 16));
        var ctx = new SkinnyContext { P = p, Chunks = chunks };
        if (chunks == 1) Narrow512Chunk(&ctx, 0);
        else CpuThreadPool.For(chunks, &Narrow512Chunk, &ctx);
    }

    [ThreadStatic] private static float[]? t_zeroRow;

    private static void Narrow512Chunk(void* context, int index)
    {
        var ctx = (SkinnyContext*)context;
        ref readonly Problem p = ref *ctx->P;
        // Even row ranges, so that only the last chunk can end on a single row.
        int pairs = (p.M + 1) / 2;
        int i0 = (int)((long)pairs * index / ctx->Chunks) * 2;
        int i1 = Math.Min(p.M, (int)((long)pairs * (index + 1) / ctx->Chunks) * 2);
        if (i0 >= i1) return;
        int k = p.K;
        // Columns past n (a group of fewer than eight) read a row of zeros.
        if (t_zeroRow is null || t_zeroRow.Length < k) t_zeroRow = new float[Math.Max(k, 256)];
        fixed (float* zero = t_zeroRow)
        {
            float* s = stackalloc float[16];
            for (int j0 = 0; j0 < p.N; j0 += 8)
            {
                int nj = Math.Min(8, p.N - j0);
                float* b = p.B + j0 * p.Ldb;
                float* w0 = b, w1 = nj > 1 ? b + p.Ldb : zero, w2 = nj > 2 ? b + 2 * p.Ldb : zero, w3 = nj > 3 ? b + 3 * p.Ldb : zero;
                float* w4 = nj > 4 ? b + 4 * p.Ldb : zero, w5 = nj > 5 ? b + 5 * p.Ldb : zero;
                float* w6 = nj > 6 ? b + 6 * p.Ldb : zero, w7 = nj > 7 ? b + 7 * p.Ldb : zero;
                for (int i = i0; i < i1; i += 2)
                {
                    bool two = i + 1 < i1;
                    float* x0 = p.A + i * p.Lda, x1 = two ? x0 + p.Lda : x0;
                    Narrow2x8(x0, x1, k, w0, w1, w2, w3, w4, w5, w6, w7, s);
                    Narrow512Store(p.C + i * p.Ldc + j0, s, nj, p.Alpha, p.Beta);
                    if (two) Narrow512Store(p.C + (i + 1) * p.Ldc + j0, s + 8, nj, p.Alpha, p.Beta);
                }
            }
        }
    }

    private static void Narrow512Store(float* c, float* s, int n, float alpha, float beta)
    {
        if (beta == 0f)
            for (int j = 0; j < n; j++) c[j] = alpha * s[j];
        else
            for (int j = 0; j < n; j++) c[j] = MathF.FusedMultiplyAdd(s[j], alpha, beta * c[j]);
    }

    /// <summary>s[0..8) = x0·w_j and s[8..16) = x1·w_j for the eight rows w0..w7, each of length k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Narrow2x8(float* x0, float* x1, int k,
        float* w0, float* w1, float* w2, float* w3, float* w4, float* w5, float* w6, float* w7, float* s)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        int q = 0;
        for (; q + 16 <= k; q += 16)
        {
            var xa = Vector512.Load(x0 + q);
            var xb = Vector512.Load(x1 + q);
            var v = Vector512.Load(w0 + q); a0 = Avx512F.FusedMultiplyAdd(xa, v, a0); b0 = Avx512F.FusedMultiplyAdd(xb, v, b0);
            v = Vector512.Load(w1 + q); a1 = Avx512F.FusedMultiplyAdd(xa, v, a1); b1 = Avx512F.FusedMultiplyAdd(xb, v, b1);
            v = Vector512.Load(w2 + q); a2 = Avx512F.FusedMultiplyAdd(xa, v, a2); b2 = Avx512F.FusedMultiplyAdd(xb, v, b2);
            v = Vector512.Load(w3 + q); a3 = Avx512F.FusedMultiplyAdd(xa, v, a3); b3 = Avx512F.FusedMultiplyAdd(xb, v, b3);
            v = Vector512.Load(w4 + q); a4 = Avx512F.FusedMultiplyAdd(xa, v, a4); b4 = Avx512F.FusedMultiplyAdd(xb, v, b4);
            v = Vector512.Load(w5 + q); a5 = Avx512F.FusedMultiplyAdd(xa, v, a5); b5 = Avx512F.FusedMultiplyAdd(xb, v, b5);
            v = Vector512.Load(w6 + q); a6 = Avx512F.FusedMultiplyAdd(xa, v, a6); b6 = Avx512F.FusedMultiplyAdd(xb, v, b6);
            v = Vector512.Load(w7 + q); a7 = Avx512F.FusedMultiplyAdd(xa, v, a7); b7 = Avx512F.FusedMultiplyAdd(xb, v, b7);
        }
        Vector256.Store(Sum8(a0, a1, a2, a3, a4, a5, a6, a7), s);
        Vector256.Store(Sum8(b0, b1, b2, b3, b4, b5, b6, b7), s + 8);
        for (; q < k; q++)
        {
            float u = x0[q], t = x1[q];
            s[0] += u * w0[q]; s[1] += u * w1[q]; s[2] += u * w2[q]; s[3] += u * w3[q];
            s[4] += u * w4[q]; s[5] += u * w5[q]; s[6] += u * w6[q]; s[7] += u * w7[q];
            s[8] += t * w0[q]; s[9] += t * w1[q]; s[10] += t * w2[q]; s[11] += t * w3[q];
            s[12] += t * w4[q]; s[13] += t * w5[q]; s[14] += t * w6[q]; s[15] += t * w7[q];
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
