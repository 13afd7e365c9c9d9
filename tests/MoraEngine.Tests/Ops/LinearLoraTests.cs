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

    /// <summary>
    /// The backend's rank-r gradients (gh = s·gy·B, gB (+)= hScale·gyᵀ·h, gA (+)= ghᵀ·x), which the CPU takes in one pass
    /// over row blocks split into parts, against a float64 reference: one part and several, ragged parts and blocks,
    /// r past the narrow kernels (17), every kernel ISA, overwrite and accumulate, with and without A's gradient; the
    /// result is the same bits from run to run.
    /// </summary>
    [Theory]
    [InlineData(2048, 256, 1024, 8)] // small-cpu's MLP up-projection: four parts of two blocks
    [InlineData(1000, 40, 37, 3)]    // two ragged parts, K tails, five zero rows in the narrow kernel
    [InlineData(7, 33, 17, 2)]       // one part, run on the calling thread
    [InlineData(1537, 100, 300, 16)] // r = 16: two column groups; four parts, the last with one block of 129 rows
    [InlineData(600, 64, 50, 17)]    // r = 17: the general products inside each block
    public void LoraGradientsMatchTheDoubleReference(int rows, int inF, int outF, int r)
    {
        const float scale = 0.7f, hScale = 0.5f;
        var rng = new Rng((ulong)(rows + inF * 3 + r));
        float[] gyv = GradCheck.Rand(rng, rows * outF), xv = GradCheck.Rand(rng, rows * inF), hv = GradCheck.Rand(rng, rows * r);
        float[] bv = GradCheck.Rand(rng, outF * r), gb0 = GradCheck.Rand(rng, outF * r), ga0 = GradCheck.Rand(rng, r * inF);
        var gh = new double[rows * r];
        var gbRef = new double[outF * r];
        var gaRef = new double[r * inF];
        for (var t = 0; t < rows; t++)
        {
            for (var i = 0; i < r; i++)
            {
                double s = 0;
                for (var o = 0; o < outF; o++) s += (double)gyv[t * outF + o] * bv[o * r + i];
                gh[t * r + i] = scale * s;
            }
            for (var o = 0; o < outF; o++)
                for (var i = 0; i < r; i++) gbRef[o * r + i] += hScale * (double)gyv[t * outF + o] * hv[t * r + i];
        }
        for (var t = 0; t < rows; t++)
            for (var i = 0; i < r; i++)
                for (var j = 0; j < inF; j++) gaRef[i * inF + j] += gh[t * r + i] * xv[t * inF + j];

        var be = Device.Cpu.Backend;
        foreach (Backends.Cpu.Isa isa in Enum.GetValues<Backends.Cpu.Isa>())
        {
            if (!Backends.Cpu.Sgemm.IsSupported(isa)) continue;
            Backends.Cpu.Sgemm.ForceIsa(isa);
            try
            {
                foreach (var (acc, withA) in new[] { (false, true), (true, true), (true, false) })
                {
                    float[] Run()
                    {
                        var ghT = Tensor.Zeros(rows, r);
                        var gbT = Tensor.FromArray((float[])gb0.Clone(), [outF, r]);
                        var gaT = withA ? Tensor.FromArray((float[])ga0.Clone(), [r, inF]) : null;
                        be.LoraGradients(rows, Tensor.FromArray(gyv, [rows, outF]), Tensor.FromArray(xv, [rows, inF]), Tensor.FromArray(hv, [rows, r]),
                            hScale, Tensor.FromArray(bv, [outF, r]), scale, ghT, gbT, acc, gaT, acc);
                        var what = $"{isa} accumulate={acc} A={withA}";
                        Near(gh, ghT.ToArray(), null, $"{what} gh");
                        Near(gbRef, gbT.ToArray(), acc ? gb0 : null, $"{what} gB");
                        if (gaT != null) Near(gaRef, gaT.ToArray(), acc ? ga0 : null, $"{what} gA");
                        return [.. ghT.ToArray(), .. gbT.ToArray(), .. gaT?.ToArray() ?? []];
                    }
                    Assert.Equal(Run(), Run());
                }
            }
            finally
            {
                Backends.Cpu.Sgemm.ForceIsa(null);
            }
        }

        static void Near(double[] want, float[] got, float[]? old, string what)
        {
            var size = Math.Max(1e-6, want.Max(Math.Abs));
            for (var i = 0; i < want.Length; i++)
            {
                var w = want[i] + (old?[i] ?? 0);
                Assert.True(Math.Abs(w - got[i]) <= 1e-5 * size * 10 + 1e-6, $"{what}[{i}]: {got[i]}, want {w}");
            }
        }
    }

    /// <summary>The backend's LoRA gradients refuse operands whose sizes do not match rows, B and A's gradient, naming the operand.</summary>
    [Fact]
    public void LoraGradients_BadSizes_NameTheOperand()
    {
        var be = Device.Cpu.Backend;
        int rows = 6, inF = 5, outF = 7, r = 2;
        Tensor Z(params int[] s) => Tensor.Zeros(s);
        string Fails(Tensor gy, Tensor x, Tensor h, Tensor b, Tensor? gh, Tensor? gb, Tensor? ga) =>
            Assert.Throws<ArgumentException>(() => be.LoraGradients(rows, gy, x, h, 1f, b, 1f, gh, gb, false, ga, false)).Message;
        Assert.Contains("LoraGradients: gy [", Fails(Z(rows, outF + 1), Z(rows, inF), Z(rows, r), Z(outF, r), Z(rows, r), Z(outF, r), Z(r, inF)));
        Assert.Contains("LoraGradients: h [", Fails(Z(rows, outF), Z(rows, inF), Z(rows - 1, r), Z(outF, r), Z(rows, r), Z(outF, r), Z(r, inF)));
        Assert.Contains("LoraGradients: gh [", Fails(Z(rows, outF), Z(rows, inF), Z(rows, r), Z(outF, r), Z(rows, r + 1), Z(outF, r), Z(r, inF)));
        Assert.Contains("LoraGradients: B's gradient [", Fails(Z(rows, outF), Z(rows, inF), Z(rows, r), Z(outF, r), Z(rows, r), Z(outF, r + 1), Z(r, inF)));
        Assert.Contains("A's gradient must be", Fails(Z(rows, outF), Z(rows, inF), Z(rows, r), Z(outF, r), Z(rows, r), Z(outF, r), Z(r + 1, inF)));
        Assert.Contains("LoraGradients: x [", Fails(Z(rows, outF), Z(rows, inF + 1), Z(rows, r), Z(outF, r), Z(rows, r), Z(outF, r), Z(r, inF)));
        Assert.Contains("needs gh", Fails(Z(rows, outF), Z(rows, inF), Z(rows, r), Z(outF, r), null, Z(outF, r), Z(r, inF)));
        // The same operands with the right sizes go through.
        be.LoraGradients(rows, Z(rows, outF), Z(rows, inF), Z(rows, r), 1f, Z(outF, r), 1f, Z(rows, r), Z(outF, r), false, Z(r, inF), false);
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

/// <summary>LoRA's layer on ILGPU's CPU accelerator (the backend's default, separate products) against the CPU's one-pass gradients.</summary>
[Trait("Backend", "Ilgpu")]
[Collection("Ilgpu")]
public class LinearLoraIlgpuTests
{
    [Theory]
    [InlineData(600, 40, 37, 3)] // two parts on the CPU
    [InlineData(9, 24, 50, 8)]
    public void MatchesTheCpu(int rows, int inF, int outF, int r)
    {
        Ilgpu.LayerParity.AssertMatch([([rows, inF], 1f), ([outF, inF], 0.2f), ([r, inF], 0.2f), ([outF, r], 0.2f)], rows, outF,
            t => MoraEngine.Ops.LinearLora(t[0], t[1], null, t[2], t[3], 1.5f), gradTolerance: 1e-4f);
    }
}
