namespace MoraEngine.Backends;

// Dropout masks. Row-wise conventions as in IBackend.Norms.cs.
public partial interface IBackend
{
    /// <summary>
    /// Fills <paramref name="mask"/> with 1/(1 − p) (kept) or 0 (dropped, with probability p). Element i depends
    /// only on <paramref name="seed"/> and i, so the mask is the same for every thread count and device.
    /// </summary>
    void DropoutMask(Tensor mask, float p, ulong seed);

    /// <summary>y (+)= x·mask elementwise (the forward and the backward of dropout).</summary>
    void ApplyMask(Tensor x, Tensor mask, Tensor y, bool accumulate);
}
