using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class RopeOpsTests
{
    /// <summary>Float64 rotate-half RoPE, written from the definition.</summary>
    private static double[] Reference(double[] x, int B, int T, int H, int hd, double theta, int offset)
    {
        var D = H * hd;
        var half = hd / 2;
        var y = new double[x.Length];
        for (var b = 0; b < B; b++)
            for (var t = 0; t < T; t++)
                for (var h = 0; h < H; h++)
                {
                    var at = (b * T + t) * D + h * hd;
                    for (var j = 0; j < hd; j++)
                    {
                        var a = (t + offset) * Math.Pow(theta, -2.0 * (j % half) / hd);
                        var rotated = j < half ? -x[at + j + half] : x[at + j - half];
                        y[at + j] = x[at + j] * Math.Cos(a) + rotated * Math.Sin(a);
                    }
                }
        return y;
    }

    [Theory]
    [InlineData(1, 1, 1, 2, 0)]
    [InlineData(2, 5, 3, 4, 0)]
    [InlineData(2, 7, 2, 18, 3)] // half = 9: one 8-wide vector plus a scalar tail
    [InlineData(1, 4, 1, 32, 100)]
    public void GradCheck_MatchesFloat64Reference(int B, int T, int H, int hd, int offset)
    {
        var rng = new Rng((ulong)(B + 10 * T + 100 * H + 1000 * hd + offset));
        var shape = new[] { B, T, H * hd };
        GradCheck.Check(
            [(GradCheck.Rand(rng, B * T * H * hd), shape)],
            t => Ops.Rope(t[0], H, 10000f, offset),
            r => Reference(r[0], B, T, H, hd, 10000.0, offset));
    }

    [Fact]
    public void OtherTheta_AndGrowingTable_MatchReference()
    {
        // A small table first, then a far larger offset for the same (headDim, θ) forces the cache to grow.
        var rng = new Rng(9);
        const int B = 1, T = 3, H = 2, hd = 6;
        var x = GradCheck.Rand(rng, B * T * H * hd);
        foreach (var offset in new[] { 0, 500, 7 })
        {
            var y = Ops.Rope(Tensor.FromArray(x, B, T, H * hd), H, 500f, offset).ToArray();
            var expected = Reference(Array.ConvertAll(x, v => (double)v), B, T, H, hd, 500.0, offset);
            for (var i = 0; i < y.Length; i++) Assert.Equal(expected[i], y[i], 1e-5);
        }
    }

    [Fact]
    public void PreservesNormOfEveryHead()
    {
        const int B = 2, T = 9, H = 3, hd = 20, D = H * hd;
        var rng = new Rng(4);
        var x = GradCheck.Rand(rng, B * T * D);
        var y = Ops.Rope(Tensor.FromArray(x, B, T, D), H, 10000f, 13).ToArray();
        for (var row = 0; row < B * T; row++)
            for (var h = 0; h < H; h++)
            {
                double nx = 0, ny = 0;
                for (var j = 0; j < hd; j++)
                {
                    var i = row * D + h * hd + j;
                    nx += x[i] * (double)x[i];
                    ny += y[i] * (double)y[i];
                }
                Assert.Equal(Math.Sqrt(nx), Math.Sqrt(ny), 1e-5);
            }
    }

    [Fact]
    public void PositionZero_IsIdentity()
    {
        var rng = new Rng(8);
        var x = GradCheck.Rand(rng, 2 * 1 * 24);
        var y = Ops.Rope(Tensor.FromArray(x, 2, 1, 24), 2).ToArray();
        Assert.Equal(x, y);
    }

    [Fact]
    public void QueryKeyDot_DependsOnlyOnRelativePosition()
    {
        const int hd = 16;
        var rng = new Rng(6);
        var q = GradCheck.Rand(rng, hd);
        var k = GradCheck.Rand(rng, hd);

        double Score(int posQ, int posK)
        {
            var rq = Ops.Rope(Tensor.FromArray(q, 1, 1, hd), 1, 10000f, posQ).ToArray();
            var rk = Ops.Rope(Tensor.FromArray(k, 1, 1, hd), 1, 10000f, posK).ToArray();
            double s = 0;
            for (var j = 0; j < hd; j++) s += rq[j] * (double)rk[j];
            return s;
        }

        var baseScore = Score(5, 2);
        foreach (var shift in new[] { 1, 17, 250 })
            Assert.Equal(baseScore, Score(5 + shift, 2 + shift), 1e-4);
        // A different distance gives a different score, so the check above can fail.
        Assert.True(Math.Abs(baseScore - Score(5, 3)) > 1e-3);
    }

    [Fact]
    public void BadInputs_Throw_NamingOpAndShape()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ops.Rope(Tensor.Zeros(1, 2, 6), 2)); // head size 3 is odd
        Assert.Contains("Rope", ex.Message);
        Assert.Contains("[1, 2, 6]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Ops.Rope(Tensor.Zeros(2, 8), 1));
        Assert.Contains("[2, 8]", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Rope(Tensor.Zeros(1, 2, 8), 1, positionOffset: -1));
    }
}
