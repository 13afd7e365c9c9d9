using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class NormOpsTests
{
    // ------------------------------------------------------------ float64 references

    private static double[] RefLayerNorm(double[] x, double[] w, double[]? b, int d, double eps)
    {
        var y = new double[x.Length];
        for (var r = 0; r < x.Length / d; r++)
        {
            double mean = 0, var = 0;
            for (var j = 0; j < d; j++) mean += x[r * d + j];
            mean /= d;
            for (var j = 0; j < d; j++) var += (x[r * d + j] - mean) * (x[r * d + j] - mean);
            var rstd = 1 / Math.Sqrt(var / d + eps);
            for (var j = 0; j < d; j++) y[r * d + j] = (x[r * d + j] - mean) * rstd * w[j] + (b?[j] ?? 0);
        }
        return y;
    }

    /// <summary>Analytic float64 LayerNorm backward (for sizes too big for finite differences).</summary>
    private static (double[] gx, double[] gw, double[] gb) RefLayerNormBackward(double[] x, double[] w, double[] gy, int d, double eps)
    {
        var gx = new double[x.Length];
        var gw = new double[d];
        var gb = new double[d];
        var xhat = new double[d];
        for (var r = 0; r < x.Length / d; r++)
        {
            double mean = 0, var = 0;
            for (var j = 0; j < d; j++) mean += x[r * d + j];
            mean /= d;
            for (var j = 0; j < d; j++) var += (x[r * d + j] - mean) * (x[r * d + j] - mean);
            var rstd = 1 / Math.Sqrt(var / d + eps);
            double a = 0, c = 0;
            for (var j = 0; j < d; j++)
            {
                xhat[j] = (x[r * d + j] - mean) * rstd;
                var dn = gy[r * d + j] * w[j];
                a += dn;
                c += dn * xhat[j];
                gw[j] += gy[r * d + j] * xhat[j];
                gb[j] += gy[r * d + j];
            }
            a /= d;
            c /= d;
            for (var j = 0; j < d; j++) gx[r * d + j] = rstd * (gy[r * d + j] * w[j] - a - xhat[j] * c);
        }
        return (gx, gw, gb);
    }

    private static double[] RefRmsNorm(double[] x, double[] w, int d, double eps)
    {
        var y = new double[x.Length];
        for (var r = 0; r < x.Length / d; r++)
        {
            double ms = 0;
            for (var j = 0; j < d; j++) ms += x[r * d + j] * x[r * d + j];
            var rstd = 1 / Math.Sqrt(ms / d + eps);
            for (var j = 0; j < d; j++) y[r * d + j] = x[r * d + j] * rstd * w[j];
        }
        return y;
    }

    internal static void AssertClose(double[] expected, float[] actual, double relTol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = 1.0;
        foreach (var e in expected) scale = Math.Max(scale, Math.Abs(e));
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relTol * scale, $"{what}[{i}]: expected {expected[i]}, got {actual[i]} (scale {scale})");
    }

    private static double[] D(float[] v) => Array.ConvertAll(v, f => (double)f);

    // ------------------------------------------------------------ LayerNorm

    [Theory]
    [InlineData(1, 1, true)]
    [InlineData(1, 1, false)]
    [InlineData(3, 5, true)]
    [InlineData(7, 17, false)]
    [InlineData(2, 33, true)]
    [InlineData(3, 67, true)]
    [InlineData(1, 67, false)]
    public void LayerNorm_MatchesReference(int rows, int d, bool withBias)
    {
        var rng = new Rng((ulong)(rows * 1000 + d));
        var x = GradCheck.Rand(rng, rows * d, 2f);
        var w = GradCheck.Rand(rng, d, 1.5f);
        var b = GradCheck.Rand(rng, d);
        var inputs = withBias
            ? new[] { (x, new[] { rows, d }), (w, new[] { d }), (b, new[] { d }) }
            : new[] { (x, new[] { rows, d }), (w, new[] { d }) };
        GradCheck.Check(inputs,
            t => Ops.LayerNorm(t[0], t[1], withBias ? t[2] : null),
            r => RefLayerNorm(r[0], r[1], withBias ? r[2] : null, d, 1e-5));
    }

    [Fact]
    public void LayerNorm_ThreeDimensionalInputAndCustomEps()
    {
        var rng = new Rng(11);
        int[] shape = [2, 3, 5];
        GradCheck.Check(
            [(GradCheck.Rand(rng, 30, 3f), shape), (GradCheck.Rand(rng, 5), [5]), (GradCheck.Rand(rng, 5), [5])],
            t => Ops.LayerNorm(t[0], t[1], t[2], eps: 0.1f),
            r => RefLayerNorm(r[0], r[1], r[2], 5, 0.1));
    }

    [Fact]
    public void LayerNorm_GradientsAccumulateWhenUsedTwice()
    {
        var rng = new Rng(12);
        GradCheck.Check(
            [(GradCheck.Rand(rng, 3 * 17), [3, 17]), (GradCheck.Rand(rng, 17), [17]), (GradCheck.Rand(rng, 17), [17])],
            t => Ops.Add(Ops.LayerNorm(t[0], t[1], t[2]), Ops.Scale(Ops.LayerNorm(t[0], t[1], t[2]), 0.5f)),
            r =>
            {
                var y = RefLayerNorm(r[0], r[1], r[2], 17, 1e-5);
                for (var i = 0; i < y.Length; i++) y[i] *= 1.5;
                return y;
            });
    }

    [Fact]
    public void LayerNorm_OnlyWeightRequiresGrad()
    {
        var rng = new Rng(13);
        GradCheck.Check(
            [(GradCheck.Rand(rng, 35), [7, 5]), (GradCheck.Rand(rng, 5), [5]), (GradCheck.Rand(rng, 5), [5])],
            t => Ops.LayerNorm(t[0], t[1], t[2]),
            r => RefLayerNorm(r[0], r[1], r[2], 5, 1e-5),
            differentiable: [1]);
    }

    [Fact]
    public void LayerNorm_TransposedInput()
    {
        var rng = new Rng(14);
        // x is stored [5, 3] and normalised as its transpose [3, 5].
        var stored = GradCheck.Rand(rng, 15);
        GradCheck.Check(
            [(stored, [5, 3]), (GradCheck.Rand(rng, 5), [5])],
            t => Ops.LayerNorm(t[0].T, t[1], null),
            r =>
            {
                var xt = new double[15];
                for (var i = 0; i < 5; i++)
                    for (var j = 0; j < 3; j++) xt[j * 5 + i] = r[0][i * 3 + j];
                return RefLayerNorm(xt, r[1], null, 5, 1e-5);
            });
    }

    [Fact]
    public void LayerNorm_LargeParallel_MatchesReferenceAndIsDeterministic()
    {
        const int rows = 2048, d = 256;
        var rng = new Rng(15);
        var x = GradCheck.Rand(rng, rows * d, 3f);
        for (var i = 0; i < x.Length; i++) x[i] += 5f; // a non-zero mean tests the two-pass variance
        var w = GradCheck.Rand(rng, d);
        var b = GradCheck.Rand(rng, d);
        var gy = GradCheck.Rand(rng, rows * d);

        (float[] y, float[] gx, float[] gw, float[] gb) Run()
        {
            var xt = Tensor.FromArray(x, 8, rows / 8, d);
            var wt = Tensor.FromArray(w, d);
            var bt = Tensor.FromArray(b, d);
            xt.RequiresGrad = wt.RequiresGrad = bt.RequiresGrad = true;
            var y = Ops.LayerNorm(xt, wt, bt);
            y.Backward(Tensor.FromArray(gy, 8, rows / 8, d));
            return (y.ToArray(), xt.Grad!.ToArray(), wt.Grad!.ToArray(), bt.Grad!.ToArray());
        }

        var first = Run();
        AssertClose(RefLayerNorm(D(x), D(w), D(b), d, 1e-5), first.y, 1e-4, "y");
        var (rgx, rgw, rgb) = RefLayerNormBackward(D(x), D(w), D(gy), d, 1e-5);
        AssertClose(rgx, first.gx, 1e-4, "gx");
        AssertClose(rgw, first.gw, 1e-4, "gweight");
        AssertClose(rgb, first.gb, 1e-4, "gbias");

        var second = Run();
        Assert.Equal(first.gw, second.gw);
        Assert.Equal(first.gb, second.gb);
        Assert.Equal(first.gx, second.gx);
    }

    [Fact]
    public void LayerNorm_BadShapes_NameOpAndShapes()
    {
        var x = Tensor.Zeros(2, 5);
        var ex = Assert.Throws<ArgumentException>(() => Ops.LayerNorm(x, Tensor.Zeros(4), null));
        Assert.Contains("LayerNorm", ex.Message);
        Assert.Contains("[4]", ex.Message);
        Assert.Contains("[2, 5]", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.LayerNorm(x, Tensor.Zeros(5), Tensor.Zeros(5, 1)));
        Assert.Contains("LayerNorm", ex.Message);
        Assert.Contains("bias [5, 1]", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.LayerNorm(Tensor.Zeros(3, 0), Tensor.Zeros(0), null));
        Assert.Contains("LayerNorm", ex.Message);
        Assert.Contains("[3, 0]", ex.Message);
    }

    // ------------------------------------------------------------ RmsNorm

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(7, 17)]
    [InlineData(2, 33)]
    [InlineData(3, 67)]
    public void RmsNorm_MatchesReference(int rows, int d)
    {
        var rng = new Rng((ulong)(rows * 1000 + d + 1));
        // Bounded away from zero: at d = 1 the function is steep near x = 0.
        var x = GradCheck.RandAway(rng, rows * d, 0.2f, 2f);
        var w = GradCheck.Rand(rng, d, 1.5f);
        GradCheck.Check(
            [(x, [rows, d]), (w, [d])],
            t => Ops.RmsNorm(t[0], t[1]),
            r => RefRmsNorm(r[0], r[1], d, 1e-6));
    }

    [Fact]
    public void RmsNorm_GradientsAccumulateWhenUsedTwice()
    {
        var rng = new Rng(21);
        GradCheck.Check(
            [(GradCheck.RandAway(rng, 2 * 3 * 33, 0.1f, 1f), [2, 3, 33]), (GradCheck.Rand(rng, 33), [33])],
            t => Ops.Add(Ops.RmsNorm(t[0], t[1], 1e-3f), Ops.RmsNorm(t[0], t[1], 1e-3f)),
            r =>
            {
                var y = RefRmsNorm(r[0], r[1], 33, 1e-3);
                for (var i = 0; i < y.Length; i++) y[i] *= 2;
                return y;
            });
    }

    [Fact]
    public void RmsNorm_LargeParallel_IsDeterministicAndMatchesReference()
    {
        const int rows = 1024, d = 128;
        var rng = new Rng(22);
        var x = GradCheck.Rand(rng, rows * d, 2f);
        var w = GradCheck.Rand(rng, d);

        (float[] y, float[] gw) Run()
        {
            var xt = Tensor.FromArray(x, rows, d);
            var wt = Tensor.FromArray(w, d);
            wt.RequiresGrad = true;
            var y = Ops.RmsNorm(xt, wt);
            Ops.SumAll(y).Backward();
            return (y.ToArray(), wt.Grad!.ToArray());
        }

        var first = Run();
        AssertClose(RefRmsNorm(D(x), D(w), d, 1e-6), first.y, 1e-4, "y");
        // d(Σ y)/dw_j = Σ_rows x̂_j
        var refGw = new double[d];
        var ones = new double[d];
        Array.Fill(ones, 1.0);
        var xhat = RefRmsNorm(D(x), ones, d, 1e-6);
        for (var i = 0; i < xhat.Length; i++) refGw[i % d] += xhat[i];
        AssertClose(refGw, first.gw, 1e-4, "gweight");
        Assert.Equal(first.gw, Run().gw);
    }

    [Fact]
    public void RmsNorm_BadWeight_NamesOpAndShapes()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ops.RmsNorm(Tensor.Zeros(3, 7), Tensor.Zeros(3, 7)));
        Assert.Contains("RmsNorm", ex.Message);
        Assert.Contains("[3, 7]", ex.Message);
        Assert.Contains("expects [7]", ex.Message);

        var eps = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.RmsNorm(Tensor.Zeros(3, 7), Tensor.Zeros(7), -1f));
        Assert.Contains("RmsNorm", eps.Message);
    }
}
