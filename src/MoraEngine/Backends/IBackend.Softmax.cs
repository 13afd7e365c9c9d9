namespace MoraEngine.Backends;

// Softmax and log-softmax over rows. Row-wise conventions as in IBackend.Norms.cs.
public partial interface IBackend
{
    /// <summary>Softmax (or log-softmax when <paramref name="log"/>) of each row, stabilised by the row maximum.</summary>
    void Softmax(Tensor x, Tensor y, int rows, int d, bool log);

    /// <summary>
    /// gx (+)= the backward of <see cref="Softmax"/> from its output y: y·(gy − Σ gy·y), or for log-softmax
    /// gy − exp(y)·Σ gy.
    /// </summary>
    void SoftmaxBackward(Tensor y, Tensor gy, Tensor gx, int rows, int d, bool log, bool accumulate);
}
