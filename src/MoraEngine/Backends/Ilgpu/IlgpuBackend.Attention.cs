using ILGPU;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

/// <summary>
/// Causal attention as batched GEMMs over (batch, head) pairs that read the heads' strided columns of q/k/v in
/// place (batch addressing with an inner head stride), with a causal row softmax in between; RoPE and strided
/// column copies are elementwise kernels.
/// </summary>
/// <remarks>
/// Unlike the CPU kernel, the forward writes the whole of <c>probs</c> (zeros above the diagonal), and the backward
/// relies on that: it must be given probabilities produced by this backend's forward.
/// </remarks>
public sealed partial class IlgpuBackend
{
    private GemmArgs HeadGemm(int m, int n, int k, float alpha, float beta, bool transA, bool transB,
        int lda, long sA, long sA2, int ldb, long sB, long sB2, int ldc, long sC, long sC2, int heads) => new()
    {
        M = m, N = n, K = k, Alpha = alpha, Beta = beta, TransA = transA ? 1 : 0, TransB = transB ? 1 : 0,
        Lda = lda, Ldb = ldb, Ldc = ldc, BatchInner = heads,
        StrideA = sA, StrideA2 = sA2, StrideB = sB, StrideB2 = sB2, StrideC = sC, StrideC2 = sC2,
    };

    public void CausalAttention(Tensor q, Tensor k, Tensor v, int qkvStride, Tensor output, Tensor probs,
        int batch, int seq, int heads, int headDim, float scale)
    {
        int T = seq, hd = headDim, D = heads * headDim, ld = qkvStride, pairs = batch * heads;
        if (T == 0 || batch == 0 || heads == 0) return;
        if (hd == 0) return;
        long headBlock = (long)T * D, qkvBlock = (long)T * ld, pBlock = (long)T * T;
        // S = scale·Q·Kᵀ for every pair, straight into probs.
        GemmCore(pairs, From(q), From(k), From(probs),
            HeadGemm(T, T, hd, scale, 0f, false, true, ld, qkvBlock, hd, ld, qkvBlock, hd, T, heads * pBlock, pBlock, heads));
        LaunchSoftmax(V(probs), V(probs), pairs * T, T, log: false, causal: true);
        // O = P·V.
        GemmCore(pairs, From(probs), From(v), From(output),
            HeadGemm(T, hd, T, 1f, 0f, false, false, T, heads * pBlock, pBlock, ld, qkvBlock, hd, D, headBlock, hd, heads));
    }

    public void CausalAttentionBackward(Tensor q, Tensor k, Tensor v, int qkvStride, Tensor probs, Tensor gradOutput,
        Tensor? gradQ, bool accumulateQ, Tensor? gradK, bool accumulateK, Tensor? gradV, bool accumulateV,
        int batch, int seq, int heads, int headDim, float scale)
    {
        int T = seq, hd = headDim, D = heads * headDim, ld = qkvStride, pairs = batch * heads;
        if (T == 0 || hd == 0 || batch == 0 || heads == 0) return;
        long headBlock = (long)T * D, qkvBlock = (long)T * ld, pBlock = (long)T * T;
        var p = From(probs);
        if (gradQ != null || gradK != null)
        {
            // dP = dO·Vᵀ, then dS = P∘(dP − rowsum(dP∘P)) in place (zero above the diagonal).
            var ds = Scratch("attn-ds", pairs * pBlock);
            GemmCore(pairs, From(gradOutput), From(v), ds,
                HeadGemm(T, T, hd, 1f, 0f, false, true, D, headBlock, hd, ld, qkvBlock, hd, T, heads * pBlock, pBlock, heads));
            LaunchSoftmaxBackward(p, ds, ds, pairs * T, T, log: false, accumulate: false, causal: true);
            // Order dQ, dK: a shared gradient buffer is written first, then added to.
            if (gradQ != null)
                GemmCore(pairs, ds, From(k), From(gradQ),
                    HeadGemm(T, hd, T, scale, accumulateQ ? 1f : 0f, false, false, T, heads * pBlock, pBlock, ld, qkvBlock, hd, ld, qkvBlock, hd, heads));
            if (gradK != null)
                GemmCore(pairs, ds, From(q), From(gradK),
                    HeadGemm(T, hd, T, scale, accumulateK ? 1f : 0f, true, false, T, heads * pBlock, pBlock, ld, qkvBlock, hd, ld, qkvBlock, hd, heads));
        }
        if (gradV != null)
            GemmCore(pairs, p, From(gradOutput), From(gradV),
                HeadGemm(T, hd, T, 1f, accumulateV ? 1f : 0f, true, false, T, heads * pBlock, pBlock, D, headBlock, hd, ld, qkvBlock, hd, heads));
    }

    // ---------------------------------------------------------------- RoPE

    internal struct RopeArgs
    {
        public int Seq, Heads, Half, HeadDim, Offset, Accumulate;
        public float Sign;
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RopeArgs>? _kRope;

    /// <summary>One thread per rotated pair (j, j + half) of one head of one row.</summary>
    private static void RopeKernel(Index1D index, ArrayView<float> x, ArrayView<float> y, ArrayView<float> cos, ArrayView<float> sin, RopeArgs a)
    {
        int idx = index;
        var perRow = a.Heads * a.Half;
        var r = idx / perRow;
        var rem = idx - r * perRow;
        var h = rem / a.Half;
        var j = rem - h * a.Half;
        var at = (long)r * a.Heads * a.HeadDim + h * a.HeadDim;
        var pos = (long)(r % a.Seq + a.Offset) * a.Half + j;
        float x1 = x[at + j], x2 = x[at + a.Half + j], cv = cos[pos], sv = sin[pos] * a.Sign;
        var y1 = x1 * cv - x2 * sv;
        var y2 = x2 * cv + x1 * sv;
        if (a.Accumulate != 0)
        {
            y1 += y[at + j];
            y2 += y[at + a.Half + j];
        }
        y[at + j] = y1;
        y[at + a.Half + j] = y2;
    }

    public void Rope(Tensor x, Tensor y, Tensor cos, Tensor sin, int batch, int seq, int heads, int headDim,
        int positionOffset, bool inverse, bool accumulate)
    {
        var half = headDim / 2;
        var n = (long)batch * seq * heads * half;
        if (n == 0) return;
        (_kRope ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RopeArgs>(RopeKernel))(
            (int)n, V(x), V(y), V(cos), V(sin),
            new RopeArgs { Seq = seq, Heads = heads, Half = half, HeadDim = headDim, Offset = positionOffset, Accumulate = accumulate ? 1 : 0, Sign = inverse ? -1f : 1f });
    }

    // ---------------------------------------------------------------- strided copies

    internal struct CopyArgs
    {
        public int SrcColumn, SrcStride, DstColumn, DstStride, Width, Accumulate;
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, CopyArgs>? _kCopyColumns;

    private static void CopyColumnsKernel(Index1D index, ArrayView<float> src, ArrayView<float> dst, CopyArgs a)
    {
        int idx = index;
        var r = idx / a.Width;
        var c = idx - r * a.Width;
        var v = src[(long)r * a.SrcStride + a.SrcColumn + c];
        var at = (long)r * a.DstStride + a.DstColumn + c;
        dst[at] = a.Accumulate != 0 ? dst[at] + v : v;
    }

    public void CopyColumns(Tensor src, int srcColumn, int srcStride, Tensor dst, int dstColumn, int dstStride,
        int rows, int width, bool accumulate)
    {
        if (rows == 0 || width == 0) return;
        (_kCopyColumns ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, CopyArgs>(CopyColumnsKernel))(
            rows * width, From(src), From(dst),
            new CopyArgs { SrcColumn = srcColumn, SrcStride = srcStride, DstColumn = dstColumn, DstStride = dstStride, Width = width, Accumulate = accumulate ? 1 : 0 });
    }
}
