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
