using MoraEngine;
using MoraEngine.Optim;
using Xunit;

namespace MoraEngine.Tests;

public class OptimTests
{
    [Fact]
    public void AdamW_MatchesReferenceUpdate()
    {
        var rng = new Rng(1);
        var p0 = GradCheck.Rand(rng, 37);
        var grads = Enumerable.Range(0, 3).Select(_ => GradCheck.Rand(rng, 37)).ToArray();
        var p = Tensor.FromArray(p0, 37, 1);
        float lr = 0.01f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
        var opt = new AdamW([p], lr, b1, b2, eps, wd);
        var refP = p0.Select(v => (double)v).ToArray();
        var m = new double[37];
        var v = new double[37];
        for (var t = 1; t <= 3; t++)
        {
            p.Grad = Tensor.FromArray(grads[t - 1], 37, 1);
            p.GradValid = true;
            opt.Step();
            for (var i = 0; i < 37; i++)
            {
                double g = grads[t - 1][i];
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                var mh = m[i] / (1 - Math.Pow(b1, t));
                var vh = v[i] / (1 - Math.Pow(b2, t));
                refP[i] = refP[i] * (1 - lr * wd) - lr * mh / (Math.Sqrt(vh) + eps);
            }
        }
        var got = p.ToArray();
        for (var i = 0; i < 37; i++) Assert.Equal(refP[i], got[i], 5);
    }

    [Fact]
    public void ClipGradNorm_ScalesToMaxNorm()
    {
        var p = Tensor.FromArray([0f, 0f], 2);
        p.Grad = Tensor.FromArray([3f, 4f], 2);
        p.GradValid = true;
        var opt = new Sgd([p], 0.1f, 0f);
        Assert.Equal(5.0, opt.ClipGradNorm(1f), 5);
        Assert.Equal(0.6f, p.Grad.ToArray()[0], 4);
        Assert.Equal(0.8f, p.Grad.ToArray()[1], 4);
    }

    [Fact]
    public void Sgd_Momentum()
    {
        var p = Tensor.FromArray([1f], 1);
        var opt = new Sgd([p], 0.1f, 0.5f);
        for (var i = 0; i < 2; i++)
        {
            p.Grad = Tensor.FromArray([1f], 1);
            p.GradValid = true;
            opt.Step();
        }
        Assert.Equal(1f - 0.1f - 0.15f, p.ToArray()[0], 5);   // buf 1 then 1.5
    }

    [Fact]
    public void WarmupCosine_Shape_AndRestartWarmup()
    {
        var s = new WarmupCosineLr(1f, 10, 110, 0.1f, restartWarmup: 5);
        Assert.Equal(0.1f, s.At(0), 5);
        Assert.Equal(1f, s.At(9), 5);
        Assert.Equal(0.55f, s.At(60), 2);
        Assert.Equal(0.1f, s.At(110), 4);
        var before = s.At(50);
        s.Restart(50);
        Assert.Equal(before / 5, s.At(50), 5);
        Assert.Equal(s.At(54) , new WarmupCosineLr(1f, 10, 110, 0.1f).At(54), 5);
    }

    [Fact]
    public void BadHyperparameters_AreClearErrors()
    {
        var p = Tensor.Zeros(2);
        p.RequiresGrad = true;
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([p], beta1: 1f));
        Assert.Throws<ArgumentException>(() => new AdamW([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupCosineLr(1f, 20, 10));
    }
}
