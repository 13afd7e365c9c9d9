namespace MoraEngine.Backends;

// Embedding lookup and its scatter-add backward. Row-wise conventions as in IBackend.Norms.cs.
public partial interface IBackend
{
    /// <summary>y[i, :] = weight[ids[i], :] for weight (V × d); ids are in range.</summary>
    void Embedding(Tensor weight, int[] ids, Tensor y, int d);

    /// <summary>
    /// gweight[ids[i], :] += gy[i, :] for every i, in index order (repeated ids add up); gweight is not cleared.
    /// </summary>
    void EmbeddingBackward(Tensor gy, int[] ids, Tensor gweight, int d);
}
