using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class ShapeOpsTests
{
    private static readonly Rng R = new(9);

    [Fact]
    public void Reshape_IsAView_AndDifferentiates()
    {
        var x = GradCheck.Rand(R, 24);
        GradCheck.Check([(x, [2, 3, 4])], t => Ops.Mul(Ops.Reshape(t[0], 6, -1), Ops.Reshape(t[0], 6, 4)), r => r[0].Select(v => v * v).ToArray());
        var a = Tensor.FromArray(x, 2, 3, 4);
        var v2 = a.Reshape(4, 6);
        Assert.Same(a.Storage, v2.Storage);
        Assert.Throws<ArgumentException>(() => a.Reshape(5, 5));
    }

    [Fact]
    public void Transpose_Contiguous_RoundTrip()
    {
        var x = Tensor.FromArray([1, 2, 3, 4, 5, 6], 2, 3);
        Assert.Equal([1f, 4, 2, 5, 3, 6], x.T.ToArray());
        Assert.Equal([3, 2], x.T.Shape.ToArray());
        Assert.Equal(x.ToArray(), x.T.T.ToArray());
        var d = GradCheck.Rand(R, 30);
        GradCheck.Check([(d, [2, 3, 5])], t => Ops.Mul(Ops.Contiguous(t[0].T), Ops.Contiguous(t[0].T)),
            r =>
            {
                var y = new double[30];
                for (var b = 0; b < 2; b++)
                    for (var i = 0; i < 3; i++)
                        for (var j = 0; j < 5; j++)
                            y[b * 15 + j * 3 + i] = r[0][b * 15 + i * 5 + j] * r[0][b * 15 + i * 5 + j];
                return y;
            });
    }

    [Fact]
    public void Slice_FirstAxis_RoutesGradient()
    {
        var x = GradCheck.Rand(R, 20);
        GradCheck.Check([(x, [5, 4])], t => Ops.Scale(t[0].Slice(1, 3), 2f), r => r[0].Skip(4).Take(12).Select(v => 2 * v).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Zeros(5, 4).Slice(3, 3));
    }
}
