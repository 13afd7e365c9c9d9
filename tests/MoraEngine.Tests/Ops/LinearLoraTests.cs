using MoraEngine.Autograd;
using Xunit;

namespace MoraEngine.Tests;

/// <summary>A linear layer with LoRA joined into its GEMM along K: gradients, and the same numbers as the unfused ops.</summary>
public class LinearLoraTests
{
    [Fact]
    public void GradientsMatchFiniteDifferencesOfTheDoubleReference()
    {
        int rows = 6, inF = 40, outF = 37, r = 3;
        const float scale = 0.7f;
        var rng = new Rng(3);
        GradCheck.Check(
            [
                (GradCheck.Rand(rng, rows * inF), [2, 3, inF]),
                (GradCheck.Rand(rng, outF * inF, 0.3f), [outF, inF]),
                (GradCheck.Rand(rng, outF), [outF]),
                (GradCheck.Rand(rng, r * inF, 0.3f), [r, inF]),
                (GradCheck.Rand(rng, outF * r, 0.3f), [outF, r]),
            ],
            t => MoraEngine.Ops.LinearLora(t[0], t[1], t[2], t[3], t[4], scale),
            v =>
            {
                double[] x = v[0], w = v[1], bias = v[2], a = v[3], b = v[4];
                var y = new double[rows * outF];
                for (var i = 0; i < rows; i++)
                {
                    var h = new double[r];
                    for (var k = 0; k < r; k++)
                        for (var q = 0; q < inF; q++) h[k] += x[i * inF + q] * a[k * inF + q];
                    for (var j = 0; j < outF; j++)
                    {
                        var s = bias[j];
                        for (var q = 0; q < inF; q++) s += x[i * inF + q] * w[j * inF + q];
                        for (var k = 0; k < r; k++) s += scale * h[k] * b[j * r + k];
                        y[i * outF + j] = s;
                    }
                }
                return y;
            });
    }

    [Theory]
    [InlineData(300, 300, 260, 8)]   // every dimension crosses a GEMM block
    [InlineData(2048, 256, 1024, 8)] // an MLP up-projection of the small-cpu config
    [InlineData(5, 33, 17, 2)]
    [InlineData(3, 64, 64, 4)]       // few rows: the unpacked path, two products
    public void EqualsTheLayerFollowedByLoraDelta(int rows, int inF, int outF, int r)
    {
        var rng = new Rng((ulong)(rows + inF + outF + r));
        Tensor[] Make()
        {
            var local = new Rng((ulong)(rows * 31 + r));
            return
            [
                Tensor.FromArray(GradCheck.Rand(local, rows * inF), [rows, inF]),
                Tensor.FromArray(GradCheck.Rand(local, outF * inF, 0.1f), [outF, inF]),
                Tensor.FromArray(GradCheck.Rand(local, outF, 0.1f), [outF]),
                Tensor.FromArray(GradCheck.Rand(local, r * inF, 0.1f), [r, inF]),
                Tensor.FromArray(GradCheck.Rand(local, outF * r, 0.1f), [outF, r]),
            ];
        }
        var gy = GradCheck.Rand(rng, rows * outF);
        (float[] Y, float[][] Grads) Go(bool fused)
        {
            var t = Make();
            foreach (var p in t) p.RequiresGrad = true;
            var y = fused ? MoraEngine.Ops.LinearLora(t[0], t[1], t[2], t[3], t[4], 2f)
                : MoraEngine.Ops.LoraDelta(t[0], t[3], t[4], 2f, MoraEngine.Ops.Linear(t[0], t[1], t[2]));
            MoraEngine.Ops.SumAll(MoraEngine.Ops.Mul(y, Tensor.FromArray(gy, [rows, outF]))).Backward();
            return (y.ToArray(), t.Select(p => p.Grad!.ToArray()).ToArray());
        }
        var (yf, gf) = Go(true);
        var (yu, gu) = Go(false);
        Close(yu, yf, "y");
        string[] names = ["x", "W", "bias", "A", "B"];
        for (var i = 0; i < names.Length; i++) Close(gu[i], gf[i], names[i]);
    }

    private static void Close(float[] want, float[] got, string what)
    {
        var scale = Math.Max(1e-6, want.Max(v => Math.Abs(v)));
        for (var i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) <= 2e-5 * scale, $"{what}[{i}]: fused {got[i]}, unfused {want[i]}");
    }

    [Fact]
    public void BadShapes_NameTheOperands()
    {
        var x = Tensor.Zeros(4, 8);
        var w = Tensor.Zeros(6, 8);
        Assert.Contains("A", Assert.Throws<ArgumentException>(() => MoraEngine.Ops.LinearLora(x, w, null, Tensor.Zeros(2, 7), Tensor.Zeros(6, 2), 1f)).Message);
        Assert.Contains("input", Assert.Throws<ArgumentException>(() => MoraEngine.Ops.LinearLora(Tensor.Zeros(4, 5), w, null, Tensor.Zeros(2, 8), Tensor.Zeros(6, 2), 1f)).Message);
        Assert.Contains("bias", Assert.Throws<ArgumentException>(() => MoraEngine.Ops.LinearLora(x, w, Tensor.Zeros(5), Tensor.Zeros(2, 8), Tensor.Zeros(6, 2), 1f)).Message);
    }
}
