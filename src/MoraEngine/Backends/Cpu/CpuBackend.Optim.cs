using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoraEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    public void AdamW(Tensor p, Tensor g, Tensor m, Tensor v, AdamStep step)
    {
        float[] P = p.CpuArray, G = g.CpuArray, M = m.CpuArray, V = v.CpuArray;
        int po = p.Offset, go = g.Offset, mo = m.Offset, vo = v.Offset;
        CpuParallel.For(p.Length, ParallelGrain, (s, e) =>
            AdamWRange(P.AsSpan(po + s, e - s), G.AsSpan(go + s, e - s), M.AsSpan(mo + s, e - s), V.AsSpan(vo + s, e - s), step));
    }

    /// <summary>One fused pass: moments, bias correction, decoupled decay and the update, 16 floats at a time.</summary>
    private static void AdamWRange(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, AdamStep a)
    {
        float stepSize = a.StepSize, b1 = a.Beta1, b1c = a.OneMinusBeta1, b2 = a.Beta2, b2c = a.OneMinusBeta2, eps = a.Eps,
            decay = a.Decay, invBc2Sqrt = a.InvBc2Sqrt;
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vb1 = Vector512.Create(b1);
            var vb1c = Vector512.Create(b1c);
            var vb2 = Vector512.Create(b2);
            var vb2c = Vector512.Create(b2c);
            var veps = Vector512.Create(eps);
            var vdecay = Vector512.Create(decay);
            var vstep = Vector512.Create(stepSize);
            var vbc = Vector512.Create(invBc2Sqrt);
            ref var rp = ref p[0];
            ref var rg = ref Unsafe.AsRef(in g[0]);
            ref var rm = ref m[0];
            ref var rv = ref v[0];
            for (; i + 16 <= p.Length; i += 16)
            {
                var gv = Vector512.LoadUnsafe(ref rg, (nuint)i);
                var mv = vb1 * Vector512.LoadUnsafe(ref rm, (nuint)i) + vb1c * gv;
                var vv = vb2 * Vector512.LoadUnsafe(ref rv, (nuint)i) + vb2c * gv * gv;
                mv.StoreUnsafe(ref rm, (nuint)i);
                vv.StoreUnsafe(ref rv, (nuint)i);
                var denom = Vector512.Sqrt(vv) * vbc + veps;
                var pv = Vector512.LoadUnsafe(ref rp, (nuint)i) * vdecay - vstep * mv / denom;
                pv.StoreUnsafe(ref rp, (nuint)i);
            }
        }
        for (; i < p.Length; i++)
        {
            var gi = g[i];
            var mi = b1 * m[i] + b1c * gi;
            var vi = b2 * v[i] + b2c * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] * decay - stepSize * mi / (MathF.Sqrt(vi) * invBc2Sqrt + eps);
        }
    }

    public void Sgd(Tensor p, Tensor g, Tensor? buf, float lr, float momentum, float weightDecay)
    {
        var P = p.Span;
        var G = g.Span;
        if (buf == null)
        {
            for (var i = 0; i < P.Length; i++) P[i] -= lr * (G[i] + weightDecay * P[i]);
            return;
        }
        var B = buf.Span;
        for (var i = 0; i < P.Length; i++)
        {
            var d = G[i] + weightDecay * P[i];
            B[i] = momentum * B[i] + d;
            P[i] -= lr * B[i];
        }
    }
}
