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

    /// <summary>The backend's batched transpose (8 × 8 register tiles in bands split over the cores) on awkward sizes, at an offset.</summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 8, 8)]
    [InlineData(2, 37, 70)]
    [InlineData(1, 33, 9)]
    [InlineData(2, 100, 31)]
    [InlineData(1, 512, 2048)]
    [InlineData(1, 1031, 257)]
    public void BackendTranspose_MatchesTheDefinition(int batch, int rows, int cols)
    {
        var n = batch * rows * cols;
        var values = Enumerable.Range(0, n + 5).Select(i => (float)i).ToArray();
        var src = Tensor.FromArray(values, n + 5).ViewOf(5, [n], false);
        var dst = Tensor.Zeros(n + 3);
        var dstView = dst.ViewOf(3, [n], false);
        Device.Cpu.Backend.Transpose(src, dstView, batch, rows, cols);
        var got = dst.ToArray();
        for (var b = 0; b < batch; b++)
            for (var r = 0; r < rows; r++)
                for (var c = 0; c < cols; c++)
                    Assert.Equal(values[5 + b * rows * cols + r * cols + c], got[3 + b * rows * cols + c * rows + r]);
        Assert.Equal([0f, 0f, 0f], got[..3]);
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
