using MoraEngine;
using MoraEngine.Autograd;
using Xunit;

namespace MoraEngine.Tests;

public class AutogradTests
{
    [Fact]
    public void SharedInput_GradientsAddUp()
    {
        var x = Tensor.FromArray([2f, 3f], 2);
        x.RequiresGrad = true;
        var y = Ops.SumAll(Ops.Add(Ops.Mul(x, x), Ops.Scale(x, 3f)));   // Σ x² + 3x
        y.Backward();
        Assert.Equal([7f, 9f], x.Grad!.ToArray());                      // 2x + 3
    }

    /// <summary>
    /// Add hands its gradient buffer to an op-output input instead of copying it: gradients stay right when that input
    /// has consumers on either side of the Add, when both inputs are one tensor, and when the other input takes
    /// later contributions (a residual stream).
    /// </summary>
    [Fact]
    public void Add_GradientBufferHandedOn_GradientsStayRight()
    {
        var rng = new Rng(5);
        var x = GradCheck.Rand(rng, 12);
        var v = GradCheck.Rand(rng, 12);
        int[] shape = [3, 4];
        static double[] Map(double[] a, Func<double, double> f) => a.Select(f).ToArray();
        static double[] Zip(double[] a, double[] b, Func<double, double, double> f) => a.Zip(b, f).ToArray();
        // b consumed before and after the Add; a = x·v also feeds a later product.
        GradCheck.Check([(x, shape), (v, shape)], t =>
        {
            var b = Ops.Scale(t[0], 2f);
            var before = Ops.Mul(b, b);
            var a = Ops.Mul(t[0], t[1]);
            var y = Ops.Add(a, b);
            var after = Ops.Mul(b, t[1]);
            return Ops.Add(Ops.Add(Ops.Mul(y, a), before), after);
        }, r =>
        {
            var b = Map(r[0], q => 2 * q);
            var a = Zip(r[0], r[1], (p, q) => p * q);
            var y = Zip(a, b, (p, q) => p + q);
            return Zip(Zip(Zip(y, a, (p, q) => p * q), Zip(b, b, (p, q) => p * q), (p, q) => p + q), Zip(b, r[1], (p, q) => p * q), (p, q) => p + q);
        });
        // One tensor on both sides, then a residual chain.
        GradCheck.Check([(x, shape)], t =>
        {
            var b = Ops.Scale(t[0], 3f);
            var h = Ops.Add(b, b);
            var h2 = Ops.Add(h, Ops.Mul(h, h));
            return Ops.Add(h2, Ops.Scale(h2, -0.5f));
        }, r =>
        {
            var h = Map(r[0], q => 6 * q);
            var h2 = Map(h, q => q + q * q);
            return Map(h2, q => 0.5 * q);
        });
    }

    [Fact]
    public void SecondBackward_WithoutNewForward_IsClearError()
    {
        var x = Tensor.FromArray([1f, 2f], 2);
        x.RequiresGrad = true;
        var y = Ops.SumAll(Ops.Mul(x, x));
        y.Backward();
        var ex = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("forward", ex.Message);
    }

    [Fact]
    public void NoGrad_RecordsNothing()
    {
        var x = Tensor.FromArray([1f, 2f], 2);
        x.RequiresGrad = true;
        Tensor y;
        using (Graph.NoGrad()) y = Ops.Mul(x, x);
        Assert.False(y.RequiresGrad);
        Assert.Throws<InvalidOperationException>(() => Ops.SumAll(y).Backward());
    }

    [Fact]
    public void ZeroGrad_MakesNextBackwardOverwrite_ElseAccumulates()
    {
        var x = Tensor.FromArray([1f, 2f], 2);
        x.RequiresGrad = true;
        Ops.SumAll(Ops.Scale(x, 2f)).Backward();
        Ops.SumAll(Ops.Scale(x, 2f)).Backward();
        Assert.Equal([4f, 4f], x.Grad!.ToArray());
        x.ZeroGrad();
        Ops.SumAll(Ops.Scale(x, 5f)).Backward();
        Assert.Equal([5f, 5f], x.Grad!.ToArray());
    }

    [Fact]
    public void NonScalarBackward_NeedsExplicitGradient()
    {
        var x = Tensor.FromArray([1f, 2f], 2);
        x.RequiresGrad = true;
        var y = Ops.Scale(x, 2f);
        Assert.Throws<ArgumentException>(() => y.Backward());
        y.Backward(Tensor.FromArray([1f, 10f], 2));
        Assert.Equal([2f, 20f], x.Grad!.ToArray());
    }
}
