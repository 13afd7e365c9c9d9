using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class LossOpsTests
{
    /// <summary>Σ w·nll / Σ w in float64, with w from the mask or from the ignore index.</summary>
    private static double[] RefCrossEntropy(double[] logits, int[] targets, int v, float[]? mask, int ignoreIndex = -100)
    {
        double num = 0, den = 0;
        for (var r = 0; r < targets.Length; r++)
        {
            double w = mask != null ? mask[r] : targets[r] == ignoreIndex ? 0 : 1;
            if (w == 0) continue;
            var max = double.NegativeInfinity;
            for (var j = 0; j < v; j++) max = Math.Max(max, logits[r * v + j]);
            double s = 0;
            for (var j = 0; j < v; j++) s += Math.Exp(logits[r * v + j] - max);
            num += w * (max + Math.Log(s) - logits[r * v + targets[r]]);
            den += w;
        }
        return [den > 0 ? num / den : 0];
    }

    private static int[] Targets(Rng rng, int n, int v)
    {
        var t = new int[n];
        for (var i = 0; i < n; i++) t[i] = rng.NextInt(v);
        return t;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(7, 17)]
    [InlineData(4, 33)]
    [InlineData(2, 67)]
    public void CrossEntropy_MatchesReference(int rows, int v)
    {
        var rng = new Rng((ulong)(rows * 100 + v));
        var t = Targets(rng, rows, v);
        GradCheck.Check([(GradCheck.Rand(rng, rows * v, 3f), [rows, v])],
            x => Ops.CrossEntropy(x[0], t), r => RefCrossEntropy(r[0], t, v, null));
    }

    [Fact]
    public void CrossEntropy_ThreeDimensionalLogits()
    {
        var rng = new Rng(41);
        var t = Targets(rng, 6, 5);
        GradCheck.Check([(GradCheck.Rand(rng, 30, 2f), [2, 3, 5])],
            x => Ops.CrossEntropy(x[0], t), r => RefCrossEntropy(r[0], t, 5, null));
    }

    [Fact]
    public void CrossEntropy_IgnoreIndex_SkipsRows()
    {
        var rng = new Rng(42);
        int[] t = [3, -100, 0, -100, 16, 5, -100];
        GradCheck.Check([(GradCheck.Rand(rng, 7 * 17, 3f), [7, 17])],
            x => Ops.CrossEntropy(x[0], t), r => RefCrossEntropy(r[0], t, 17, null));

        // A custom ignore index inside the class range.
        int[] t2 = [2, 1, 2, 0];
        GradCheck.Check([(GradCheck.Rand(rng, 4 * 5, 3f), [4, 5])],
            x => Ops.CrossEntropy(x[0], t2, ignoreIndex: 2), r => RefCrossEntropy(r[0], t2, 5, null, ignoreIndex: 2));

        // Ignored rows get exactly zero gradient, also when the gradient buffer is reused after ZeroGrad.
        var logits = Tensor.FromArray(GradCheck.Rand(rng, 7 * 17, 3f), 7, 17);
        logits.RequiresGrad = true;
        Ops.CrossEntropy(logits, [3, 1, 0, 2, 16, 5, 4]).Backward();
        logits.ZeroGrad();
        Ops.CrossEntropy(logits, t).Backward();
        var g = logits.Grad!.ToArray();
        for (var j = 0; j < 17; j++) Assert.Equal(0f, g[1 * 17 + j]);
    }

    [Fact]
    public void CrossEntropy_Mask_WeightsRows()
    {
        var rng = new Rng(43);
        int[] t = [1, 4, 0, 99, 2];          // row 3 has weight 0, so its placeholder target is never read
        float[] mask = [0.5f, 2f, 1f, 0f, 0.25f];
        GradCheck.Check([(GradCheck.Rand(rng, 5 * 5, 3f), [5, 5])],
            x => Ops.CrossEntropy(x[0], t, mask), r => RefCrossEntropy(r[0], t, 5, mask));
    }

    [Fact]
    public void CrossEntropy_AllIgnored_IsZeroWithZeroGradient()
    {
        var rng = new Rng(44);
        var logits = Tensor.FromArray(GradCheck.Rand(rng, 3 * 5), 3, 5);
        logits.RequiresGrad = true;
        var loss = Ops.CrossEntropy(logits, [-100, -100, -100]);
        Assert.Equal(0f, loss.Item());
        loss.Backward();
        Assert.All(logits.Grad!.ToArray(), g => Assert.Equal(0f, g));

        var logits2 = Tensor.FromArray(GradCheck.Rand(rng, 3 * 5), 3, 5);
        logits2.RequiresGrad = true;
        var loss2 = Ops.CrossEntropy(logits2, [1, 2, 3], [0f, 0f, 0f]);
        Assert.Equal(0f, loss2.Item());
        loss2.Backward();
        Assert.All(logits2.Grad!.ToArray(), g => Assert.Equal(0f, g));
    }

    [Fact]
    public void CrossEntropy_LargeLogits_Stable()
    {
        var rng = new Rng(45);
        var t = Targets(rng, 4, 33);
        GradCheck.Check([(GradCheck.Rand(rng, 4 * 33, 50f), [4, 33])],
            x => Ops.CrossEntropy(x[0], t), r => RefCrossEntropy(r[0], t, 33, null));

        // ±1000 with the target far below the max: a loss near 2000, finite, gradient finite.
        var x = GradCheck.Rand(rng, 2 * 7, 10f);
        x[0] = 1000f; x[1] = -1000f; x[8] = -1000f; x[9] = 1000f;
        int[] tt = [1, 3];
        var logits = Tensor.FromArray(x, 2, 7);
        logits.RequiresGrad = true;
        var loss = Ops.CrossEntropy(logits, tt);
        var expected = RefCrossEntropy(Array.ConvertAll(x, f => (double)f), tt, 7, null)[0];
        Assert.True(float.IsFinite(loss.Item()));
        Assert.Equal(expected, loss.Item(), 1e-5 * expected);
        loss.Backward();
        var g = logits.Grad!.ToArray();
        Assert.All(g, v => Assert.True(float.IsFinite(v)));
        // Row 0: softmax is one-hot at column 0, target 1 → +0.5 and −0.5 (mean over 2 rows).
        Assert.Equal(0.5f, g[0], 5);
        Assert.Equal(-0.5f, g[1], 5);
    }

    [Fact]
    public void CrossEntropy_GradientsAccumulateWhenUsedTwice()
    {
        var rng = new Rng(46);
        int[] t = [0, 4, -100];
        GradCheck.Check([(GradCheck.Rand(rng, 15, 2f), [3, 5])],
            x => Ops.Add(Ops.Reshape(Ops.CrossEntropy(x[0], t), 1), Ops.Reshape(Ops.CrossEntropy(x[0], t), 1)),
            r => [2 * RefCrossEntropy(r[0], t, 5, null)[0]]);
    }

    [Fact]
    public void CrossEntropy_InMemoryScope_ReusedBuffersGiveSameResults()
    {
        // Pooled buffers come back holding the previous step's values; every kernel output must be fully written.
        var rng = new Rng(48);
        var data = GradCheck.Rand(rng, 5 * 17, 4f);
        int[] t = [3, -100, 16, 0, -100];
        float[]? firstGrad = null;
        float firstLoss = 0;
        for (var step = 0; step < 3; step++)
        {
            var logits = Tensor.FromArray(data, 5, 17);
            logits.RequiresGrad = true;
            using (MemoryScope.Begin())
            {
                var h = Ops.LogSoftmax(Ops.LayerNorm(logits, Tensor.Full(2f, 17), null));
                var loss = Ops.CrossEntropy(Ops.Dropout(h, 0.2f, new Rng(1)), step == 1 ? [1, 2, 3, 4, 5] : t);
                loss.Backward();
                if (step == 0)
                {
                    firstLoss = loss.Item();
                    firstGrad = logits.Grad!.ToArray();
                }
                else if (step == 2)
                {
                    Assert.Equal(firstLoss, loss.Item());
                    Assert.Equal(firstGrad, logits.Grad!.ToArray());
                }
            }
        }
    }

    [Fact]
    public void CrossEntropy_TargetsCopied_BeforeBackward()
    {
        var rng = new Rng(47);
        var x = GradCheck.Rand(rng, 10);
        int[] t = [1, 3];
        var logits = Tensor.FromArray(x, 2, 5);
        logits.RequiresGrad = true;
        var loss = Ops.CrossEntropy(logits, t);
        t[0] = 4; // a reused batch buffer refilled before backward
        loss.Backward();
        Assert.Equal(-0.5f + 0.5f * SoftmaxAt(x, 0, 1), logits.Grad!.ToArray()[1], 5);
    }

    private static float SoftmaxAt(float[] x, int row, int col)
    {
        var y = SoftmaxOpsTests.RefSoftmax(Array.ConvertAll(x, f => (double)f), 5, false);
        return (float)y[row * 5 + col];
    }

    [Fact]
    public void CrossEntropy_BadInputs_NameOpRowAndValue()
    {
        var logits = Tensor.Zeros(3, 5);
        var ex = Assert.Throws<ArgumentException>(() => Ops.CrossEntropy(logits, [0, 1, 5]));
        Assert.Contains("CrossEntropy", ex.Message);
        Assert.Contains("target 5 at row 2", ex.Message);
        Assert.Contains("[3, 5]", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.CrossEntropy(logits, [0, -1, 2]));
        Assert.Contains("target -1 at row 1", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.CrossEntropy(logits, [0, 1]));
        Assert.Contains("CrossEntropy", ex.Message);
        Assert.Contains("2 targets", ex.Message);
        Assert.Contains("[3, 5]", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.CrossEntropy(logits, [0, 1, 2], [1f, 1f]));
        Assert.Contains("2 mask values", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.CrossEntropy(logits, [0, 7, 2], [1f, 1f, 1f]));
        Assert.Contains("target 7 at row 1", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.CrossEntropy(logits, [0, 1, 2], [1f, -1f, 1f]));
        Assert.Contains("mask value -1 at row 1", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.CrossEntropy(Tensor.Zeros(5), [0]));
        Assert.Contains("CrossEntropy", ex.Message);
        Assert.Contains("[5]", ex.Message);
    }
}
