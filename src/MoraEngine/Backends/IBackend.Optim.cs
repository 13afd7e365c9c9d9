namespace MoraEngine.Backends;

/// <summary>
/// The coefficients of one AdamW update, computed in double and rounded to float once each, as PyTorch does with
/// its Python-float hyperparameters: 1 − β is not computed in float from a float β (1 − 0.999f is 0.00099998713,
/// 1.3e-5 away from 0.001, which would make the second moment a slightly different average than asked for).
/// </summary>
public readonly struct AdamStep
{
    public readonly float StepSize, Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, Eps, Decay, InvBc2Sqrt;

    private AdamStep(double lr, double beta1, double beta2, double eps, double weightDecay, int t)
    {
        var bc1 = 1 - Math.Pow(beta1, t);
        var bc2 = 1 - Math.Pow(beta2, t);
        StepSize = (float)(lr / bc1);
        Beta1 = (float)beta1;
        OneMinusBeta1 = (float)(1 - beta1);
        Beta2 = (float)beta2;
        OneMinusBeta2 = (float)(1 - beta2);
        Eps = (float)eps;
        Decay = (float)(1 - lr * weightDecay);
        InvBc2Sqrt = (float)(1 / Math.Sqrt(bc2));
    }

    /// <summary>The coefficients of update number <paramref name="t"/> (1-based, for the bias corrections 1 − βᵗ).</summary>
    public static AdamStep Create(double lr, double beta1, double beta2, double eps, double weightDecay, int t)
    {
        if (t < 1) throw new ArgumentOutOfRangeException(nameof(t), $"AdamStep: the update count starts at 1, got {t}.");
        return new AdamStep(lr, beta1, beta2, eps, weightDecay, t);
    }
}

public partial interface IBackend
{
    /// <summary>
    /// One AdamW update of <paramref name="p"/> in place: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
    /// p ← (1 − lr·wd)·p − (lr/bc1)·m / (√v/√bc2 + eps), with the coefficients of <paramref name="step"/>.
    /// </summary>
    void AdamW(Tensor p, Tensor g, Tensor m, Tensor v, AdamStep step);

    /// <summary>SGD with momentum: buf ← μ·buf + g + wd·p; p ← p − lr·buf (buf unused when μ = 0).</summary>
    void Sgd(Tensor p, Tensor g, Tensor? buf, float lr, float momentum, float weightDecay);
}
