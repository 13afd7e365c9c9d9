using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class DropoutOpsTests
{
    private static float[] MaskOf(ulong seed, float p, params int[] shape)
    {
        var ones = Tensor.Full(1f, shape);
        return Ops.Dropout(ones, p, new Rng(seed)).ToArray();
    }

    [Fact]
    public void Dropout_SameSeedSameMask_DifferentSeedOrNextDrawDifferent()
    {
        var a = MaskOf(1, 0.5f, 7, 33);
        Assert.Equal(a, MaskOf(1, 0.5f, 7, 33));
        Assert.NotEqual(a, MaskOf(2, 0.5f, 7, 33));

        var rng = new Rng(1);
        var x = Tensor.Full(1f, 7, 33);
        var first = Ops.Dropout(x, 0.5f, rng).ToArray();
        var second = Ops.Dropout(x, 0.5f, rng).ToArray();
        Assert.Equal(a, first);
        Assert.NotEqual(first, second);
    }

    [Theory]
    [InlineData(0.1f)]
    [InlineData(0.5f)]
    [InlineData(0.9f)]
    public void Dropout_KeepFractionAndScale(float p)
    {
        const int n = 1 << 20;
        var y = MaskOf(3, p, 1024, 1024);
        var keep = 1f / (1f - p);
        var kept = 0;
        foreach (var v in y)
        {
            if (v == keep) kept++;
            else Assert.Equal(0f, v);
        }
        // Binomial std of the fraction is √(p(1−p)/n) ≤ 0.0005; 0.005 is ten of them.
        Assert.InRange(kept / (double)n, 1 - p - 0.005, 1 - p + 0.005);
    }

    [Fact]
    public void Dropout_GradientIsMaskOverKeepProbability()
    {
        const float p = 0.3f;
        var rng = new Rng(5);
        var xData = GradCheck.RandAway(rng, 3 * 67, 0.5f, 2f);
        var x = Tensor.FromArray(xData, 3, 67);
        x.RequiresGrad = true;
        var y = Ops.Dropout(x, p, new Rng(9));
        Ops.SumAll(y).Backward();
        var mask = MaskOf(9, p, 3, 67);
        Assert.Contains(0f, mask);
        Assert.Contains(1f / (1f - p), mask);
        Assert.Equal(mask, x.Grad!.ToArray());
        var yv = y.ToArray();
        for (var i = 0; i < yv.Length; i++) Assert.Equal(xData[i] * mask[i], yv[i]);

        // And through the generic checker, with the mask the same seed reproduces (accumulating twice).
        GradCheck.Check([(xData, [3, 67])],
            t => Ops.Add(Ops.Dropout(t[0], p, new Rng(9)), Ops.Dropout(t[0], p, new Rng(9))),
            r =>
            {
                var o = new double[r[0].Length];
                for (var i = 0; i < o.Length; i++) o[i] = 2 * r[0][i] * mask[i];
                return o;
            });
    }

    [Fact]
    public void Dropout_EvalOrZeroP_ReturnsInput()
    {
        var x = Tensor.FromArray([1f, 2f, 3f], 3);
        var rng = new Rng(1);
        Assert.Same(x, Ops.Dropout(x, 0.5f, rng, training: false));
        Assert.Same(x, Ops.Dropout(x, 0f, rng));
        Assert.Equal(new Rng(1).NextUInt(), rng.NextUInt()); // no draw was made
    }

    [Theory]
    [InlineData(1f)]
    [InlineData(-0.1f)]
    [InlineData(float.NaN)]
    public void Dropout_BadP_Throws(float p)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Dropout(Tensor.Zeros(2, 3), p, new Rng(1)));
        Assert.Contains("Dropout", ex.Message);
        Assert.Contains(p.ToString(), ex.Message);
        Assert.Contains("[2, 3]", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Dropout(Tensor.Zeros(2, 3), p, new Rng(1), training: false));
    }
}
