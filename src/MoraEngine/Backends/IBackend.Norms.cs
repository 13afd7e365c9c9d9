namespace MoraEngine.Backends;

/// <summary>
/// Row-wise neural-network kernels: normalisation, softmax, cross-entropy, embedding lookup and dropout.
/// Tensors are viewed as <c>rows</c> × <c>d</c> (the last axis is <c>d</c>). Gradient outputs that are null are
/// not wanted; an <c>accumulate</c> flag says whether a gradient kernel adds into its output or overwrites it.
/// Host-side index arrays (targets, ids, row weights) are passed as arrays; accelerator backends upload them.
/// </summary>
public partial interface IBackend
{
    /// <summary>
    /// y = (x − mean)·rstd·weight (+ bias) per row; writes each row's <paramref name="mean"/> and
    /// <paramref name="rstd"/> = 1/√(var + eps) (biased variance) for the backward.
    /// </summary>
    void LayerNorm(Tensor x, Tensor weight, Tensor? bias, Tensor y, Tensor mean, Tensor rstd, int rows, int d, float eps);

    /// <summary>
    /// The backward of <see cref="LayerNorm"/> from the saved mean/rstd: gx per row, gweight = Σ_rows gy·x̂ and
    /// gbias = Σ_rows gy, summed over rows in an order that does not depend on scheduling.
    /// </summary>
    void LayerNormBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor gy,
        Tensor? gx, bool accX, Tensor? gweight, bool accWeight, Tensor? gbias, bool accBias, int rows, int d);

    /// <summary>y = x·rstd·weight per row with rstd = 1/√(mean(x²) + eps), saved for the backward.</summary>
    void RmsNorm(Tensor x, Tensor weight, Tensor y, Tensor rstd, int rows, int d, float eps);

    /// <summary>The backward of <see cref="RmsNorm"/>: gx per row and gweight = Σ_rows gy·x̂ (deterministic order).</summary>
    void RmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor gy,
        Tensor? gx, bool accX, Tensor? gweight, bool accWeight, int rows, int d);

    /// <summary>Softmax (or log-softmax when <paramref name="log"/>) of each row, stabilised by the row maximum.</summary>
    void Softmax(Tensor x, Tensor y, int rows, int d, bool log);

    /// <summary>
    /// gx (+)= the backward of <see cref="Softmax"/> from its output y: y·(gy − Σ gy·y), or for log-softmax
    /// gy − exp(y)·Σ gy.
    /// </summary>
    void SoftmaxBackward(Tensor y, Tensor gy, Tensor gx, int rows, int d, bool log, bool accumulate);

    /// <summary>
    /// Cross-entropy of <paramref name="logits"/> (rows × v) against class indices. Row r has weight
    /// <paramref name="rowWeights"/>[r], or without weights 0 when its target is <paramref name="ignoreIndex"/> and
    /// 1 otherwise; rows of weight 0 are skipped (their target is not read). Writes each row's log-sum-exp into
    /// <paramref name="lse"/> and loss[0] = scale·Σ_r w_r·(lse_r − logits[r, target_r]), summed in row order.
    /// Targets of weighted rows must be in [0, v).
    /// </summary>
    void CrossEntropy(Tensor logits, int[] targets, float[]? rowWeights, int ignoreIndex, float scale,
        Tensor lse, Tensor loss, int rows, int v);

    /// <summary>
    /// glogits (+)= (softmax(logits) − onehot(target))·w_r·scale·gy[0] per row, from the saved
    /// <paramref name="lse"/>; rows of weight 0 get zero.
    /// </summary>
    void CrossEntropyBackward(Tensor logits, int[] targets, float[]? rowWeights, int ignoreIndex, float scale,
        Tensor lse, Tensor gy, Tensor glogits, bool accumulate, int rows, int v);

    /// <summary>y[i, :] = weight[ids[i], :] for weight (V × d); ids are in range.</summary>
    void Embedding(Tensor weight, int[] ids, Tensor y, int d);

    /// <summary>
    /// gweight[ids[i], :] += gy[i, :] for every i, in index order (repeated ids add up); gweight is not cleared.
    /// </summary>
    void EmbeddingBackward(Tensor gy, int[] ids, Tensor gweight, int d);

    /// <summary>
    /// Fills <paramref name="mask"/> with 1/(1 − p) (kept) or 0 (dropped, with probability p). Element i depends
    /// only on <paramref name="seed"/> and i, so the mask is the same for every thread count and device.
    /// </summary>
    void DropoutMask(Tensor mask, float p, ulong seed);

    /// <summary>y (+)= x·mask elementwise (the forward and the backward of dropout).</summary>
    void ApplyMask(Tensor x, Tensor mask, Tensor y, bool accumulate);
}
