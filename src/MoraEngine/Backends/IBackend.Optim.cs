namespace MoraEngine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// One AdamW update of <paramref name="p"/> in place: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
    /// p ← p − lr·(m/bc1 / (√(v/bc2) + eps) + wd·p). bc1, bc2 are the bias corrections 1 − βᵗ.
    /// </summary>
    void AdamW(Tensor p, Tensor g, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps, float weightDecay, float bc1, float bc2);

    /// <summary>SGD with momentum: buf ← μ·buf + g + wd·p; p ← p − lr·buf (buf unused when μ = 0).</summary>
    void Sgd(Tensor p, Tensor g, Tensor? buf, float lr, float momentum, float weightDecay);
}
