namespace MoraEngine.Backends;

// Cross-entropy of logits against integer targets. Row-wise conventions as in IBackend.Norms.cs.
public partial interface IBackend
{
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
}
