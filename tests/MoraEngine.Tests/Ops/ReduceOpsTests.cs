using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class ReduceOpsTests
{
    private static readonly Rng R = new(5);

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(-1, false)]
    public void SumAndMean_OverAxis(int axis, bool keepDim)
    {
        int[] shape = [3, 5, 7];
        var x = GradCheck.Rand(R, 105);
        var ax = axis < 0 ? axis + 3 : axis;
        double[] Ref(double[] v, bool mean)
        {
            var outer = shape.Take(ax).Aggregate(1, (a, b) => a * b);
            var n = shape[ax];
            var inner = shape.Skip(ax + 1).Aggregate(1, (a, b) => a * b);
            var y = new double[outer * inner];
            for (var o = 0; o < outer; o++)
                for (var j = 0; j < n; j++)
                    for (var i = 0; i < inner; i++)
                        y[o * inner + i] += v[(o * n + j) * inner + i] / (mean ? n : 1);
            return y;
        }
        GradCheck.Check([(x, shape)], t => Ops.Sum(t[0], axis, keepDim), r => Ref(r[0], false));
        GradCheck.Check([(x, shape)], t => Ops.Mean(t[0], axis, keepDim), r => Ref(r[0], true));
        var s = Ops.Sum(Tensor.FromArray(x, shape), axis, keepDim);
        Assert.Equal(keepDim ? 3 : 2, s.Rank);
    }

    /// <summary>
    /// A sum over many rows into one (a bias gradient over the tokens), which splits the rows over the cores,
    /// against the double reference, and the mean's scale.
    /// </summary>
    [Theory]
    [InlineData(1031, 67)]
    [InlineData(4096, 24)]
    public void SumOverManyRows_SplitOverCores_MatchesReference(int n, int inner)
    {
        var x = GradCheck.Rand(R, n * inner);
        var sum = Ops.Sum(Tensor.FromArray(x, n, inner), 0).ToArray();
        var mean = Ops.Mean(Tensor.FromArray(x, n, inner), 0).ToArray();
        for (var i = 0; i < inner; i++)
        {
            double r = 0, bound = 0;
            for (var j = 0; j < n; j++)
            {
                r += x[j * inner + i];
                bound += Math.Abs(x[j * inner + i]);
            }
            Assert.True(Math.Abs(sum[i] - r) <= 1e-6 * bound, $"column {i}: {sum[i]} vs {r}");
            Assert.True(Math.Abs(mean[i] - r / n) <= 1e-6 * bound / n, $"mean column {i}: {mean[i]} vs {r / n}");
        }
    }

    [Fact]
    public void BadAxis_IsClearError()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Sum(Tensor.Zeros(2, 3), 2));
        Assert.Contains("Sum", ex.Message);
    }
}
