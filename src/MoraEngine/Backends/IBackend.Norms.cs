namespace MoraEngine.Backends;

/// <summary>
/// Row-wise neural-network kernels: normalisation here; softmax, cross-entropy, embedding lookup and dropout in
/// IBackend.Softmax.cs, IBackend.Loss.cs, IBackend.Embedding.cs and IBackend.Dropout.cs.
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
}
