namespace MoraEngine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// Causal self-attention forward. <paramref name="q"/>, <paramref name="k"/>, <paramref name="v"/> and
    /// <paramref name="output"/> are [batch, seq, heads·headDim]; head h owns columns [h·headDim, (h+1)·headDim).
    /// Per (batch, head): P = softmax(scale·Q·Kᵀ, causal), output = P·V. <paramref name="probs"/> [batch, heads, seq, seq]
    /// receives P for backward: its lower triangle, and zeros above the diagonal inside the backend's diagonal blocks (4×4 or 8×8 on the CPU); the rest may be left undefined.
    /// Rows of q, k and v are <paramref name="qkvStride"/> floats apart from their first elements: heads·headDim for
    /// separate tensors, 3·heads·headDim for views at columns 0, D and 2D of one fused [batch, seq, 3·D] projection.
    /// </summary>
    void CausalAttention(Tensor q, Tensor k, Tensor v, int qkvStride, Tensor output, Tensor probs,
        int batch, int seq, int heads, int headDim, float scale);

    /// <summary>
    /// Backward of <see cref="CausalAttention"/>: dQ = scale·dS·K, dK = scale·dSᵀ·Q, dV = Pᵀ·dO with
    /// dS = P∘(dO·Vᵀ − rowsum(P∘(dO·Vᵀ))). A null gradient is skipped; each is written or, with its accumulate flag,
    /// added. When gradients share a buffer they are applied in the order dQ, dK, dV. q, k, v and the three gradients
    /// have rows <paramref name="qkvStride"/> apart; <paramref name="gradOutput"/>'s are heads·headDim apart.
    /// </summary>
    void CausalAttentionBackward(Tensor q, Tensor k, Tensor v, int qkvStride, Tensor probs, Tensor gradOutput,
        Tensor? gradQ, bool accumulateQ, Tensor? gradK, bool accumulateK, Tensor? gradV, bool accumulateV,
        int batch, int seq, int heads, int headDim, float scale);

    /// <summary>
    /// Rotary position embedding (rotate-half convention) of x [batch, seq, heads·headDim] into y.
    /// <paramref name="cos"/> and <paramref name="sin"/> are [positions, headDim/2] tables; row t of the sequence
    /// uses table row t + <paramref name="positionOffset"/>. <paramref name="inverse"/> rotates by the negative angle
    /// (the backward). y is written or, with <paramref name="accumulate"/>, added to.
    /// </summary>
    void Rope(Tensor x, Tensor y, Tensor cos, Tensor sin, int batch, int seq, int heads, int headDim,
        int positionOffset, bool inverse, bool accumulate);

    /// <summary>
    /// Copies a block of <paramref name="rows"/>×<paramref name="width"/> between row-major matrices with different
    /// row strides: dst[r·dstStride + dstColumn + c] (+)= src[r·srcStride + srcColumn + c] (relative to each tensor's
    /// offset).
    /// </summary>
    void CopyColumns(Tensor src, int srcColumn, int srcStride, Tensor dst, int dstColumn, int dstStride,
        int rows, int width, bool accumulate);
}
