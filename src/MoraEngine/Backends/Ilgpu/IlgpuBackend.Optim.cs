using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

public sealed partial class IlgpuBackend
{
    internal struct AdamArgs
    {
        public float StepSize, Beta1, Beta2, Eps, Decay, InvBc2Sqrt;
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamArgs>? _kAdamW;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, Vec4>? _kSgd;

    /// <summary>The CPU backend's fused AdamW update, element for element.</summary>
    private static void AdamWKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamArgs a)
    {
        var gi = g[i];
        var mi = a.Beta1 * m[i] + (1 - a.Beta1) * gi;
        var vi = a.Beta2 * v[i] + (1 - a.Beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * a.Decay - a.StepSize * mi / (XMath.Sqrt(vi) * a.InvBc2Sqrt + a.Eps);
    }

    internal static AdamArgs AdamParams(float lr, float beta1, float beta2, float eps, float weightDecay, float bc1, float bc2) => new()
    {
        StepSize = lr / bc1, Beta1 = beta1, Beta2 = beta2, Eps = eps, Decay = 1f - lr * weightDecay, InvBc2Sqrt = 1f / MathF.Sqrt(bc2),
    };

    public void AdamW(Tensor p, Tensor g, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps, float weightDecay, float bc1, float bc2)
    {
        if (p.Length == 0) return;
        (_kAdamW ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamArgs>(AdamWKernel))(
            p.Length, V(p), V(g), V(m), V(v), AdamParams(lr, beta1, beta2, eps, weightDecay, bc1, bc2));
    }

    /// <summary>I0: momentum buffer present; F0: lr, F1: momentum, F2: weight decay.</summary>
    private static void SgdKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> buf, Vec4 a)
    {
        var wd = a.F2;
        var d = g[i] + wd * p[i];
        if (a.I0 != 0)
        {
            var b = a.F1 * buf[i] + d;
            buf[i] = b;
            p[i] -= a.F0 * b;
        }
        else
        {
            p[i] -= a.F0 * d;
        }
    }

    public void Sgd(Tensor p, Tensor g, Tensor? buf, float lr, float momentum, float weightDecay)
    {
        if (p.Length == 0) return;
        (_kSgd ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, Vec4>(SgdKernel))(
            p.Length, V(p), V(g), buf != null ? V(buf) : V(g),
            new Vec4 { I0 = buf != null ? 1 : 0, F2 = weightDecay, F0 = lr, F1 = momentum });
    }
}
