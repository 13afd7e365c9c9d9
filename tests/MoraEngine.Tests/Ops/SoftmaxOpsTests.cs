using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class SoftmaxOpsTests
{
    internal static double[] RefSoftmax(double[] x, int d, bool log)
    {
        var y = new double[x.Length];
        for (var r = 0; r < x.Length / d; r++)
        {
            var max = double.NegativeInfinity;
            for (var j = 0; j < d; j++) max = Math.Max(max, x[r * d + j]);
            double s = 0;
            for (var j = 0; j < d; j++) s += Math.Exp(x[r * d + j] - max);
            for (var j = 0; j < d; j++)
                y[r * d + j] = log ? x[r * d + j] - max - Math.Log(s) : Math.Exp(x[r * d + j] - max) / s;
        }
        return y;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(7, 17)]
    [InlineData(3, 33)]
    [InlineData(1, 67)]
    public void Softmax_MatchesReference(int rows, int d)
    {
        var rng = new Rng((ulong)(rows * 100 + d));
        GradCheck.Check([(GradCheck.Rand(rng, rows * d, 3f), [rows, d])],
            t => Ops.Softmax(t[0]), r => RefSoftmax(r[0], d, false));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(7, 17)]
    [InlineData(3, 33)]
    [InlineData(1, 67)]
    public void LogSoftmax_MatchesReference(int rows, int d)
    {
        var rng = new Rng((ulong)(rows * 100 + d + 5));
        GradCheck.Check([(GradCheck.Rand(rng, rows * d, 3f), [rows, d])],
            t => Ops.LogSoftmax(t[0]), r => RefSoftmax(r[0], d, true));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Softmax_LargeLogits_Stable(bool log)
    {
        var rng = new Rng(31);
        // ±50: exp would still fit a float, but the gradient check covers the saturated regime.
        GradCheck.Check([(GradCheck.Rand(rng, 3 * 17, 50f), [3, 17])],
            t => log ? Ops.LogSoftmax(t[0]) : Ops.Softmax(t[0]),
            r => RefSoftmax(r[0], 17, log));

        // ±1000: exp(1000) overflows float (and double), so only a max-shifted kernel gives finite values.
        var x = GradCheck.Rand(rng, 4 * 33, 1000f);
        x[5] = 1000f;
        x[40] = -1000f;
        var y = (log ? Ops.LogSoftmax(Tensor.FromArray(x, 4, 33)) : Ops.Softmax(Tensor.FromArray(x, 4, 33))).ToArray();
        foreach (var v in y) Assert.True(float.IsFinite(v), $"non-finite output {v}");
        NormOpsTests.AssertClose(RefSoftmax(Array.ConvertAll(x, f => (double)f), 33, log), y, 1e-5, "y");
    }

    [Fact]
    public void Softmax_RowsSumToOne_ThreeDimensional()
    {
        var rng = new Rng(32);
        var y = Ops.Softmax(Tensor.FromArray(GradCheck.Rand(rng, 2 * 3 * 67, 10f), 2, 3, 67)).ToArray();
        for (var r = 0; r < 6; r++)
        {
            double s = 0;
            for (var j = 0; j < 67; j++) s += y[r * 67 + j];
            Assert.Equal(1.0, s, 5);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Softmax_GradientsAccumulate_AndTransposedInput(bool log)
    {
        var rng = new Rng(33);
        // Stored [5, 3], used as its transpose [3, 5] twice: exercises Contiguous and the accumulate path.
        GradCheck.Check([(GradCheck.Rand(rng, 15, 2f), [5, 3])],
            t =>
            {
                // One contiguous copy used twice, so the softmax backward itself accumulates.
                var xt = Ops.Contiguous(t[0].T);
                return log ? Ops.Add(Ops.LogSoftmax(xt), Ops.LogSoftmax(xt)) : Ops.Add(Ops.Softmax(xt), Ops.Softmax(xt));
            },
            r =>
            {
                var xt = new double[15];
                for (var i = 0; i < 5; i++)
                    for (var j = 0; j < 3; j++) xt[j * 5 + i] = r[0][i * 3 + j];
                var y = RefSoftmax(xt, 5, log);
                for (var i = 0; i < y.Length; i++) y[i] *= 2;
                return y;
            });
    }

    [Fact]
    public void Softmax_BadInput_NamesOpAndShape()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ops.Softmax(Tensor.Scalar(1f)));
        Assert.Contains("Softmax", ex.Message);
        Assert.Contains("[]", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.LogSoftmax(Tensor.Zeros(4, 0)));
        Assert.Contains("LogSoftmax", ex.Message);
        Assert.Contains("[4, 0]", ex.Message);
    }
}
