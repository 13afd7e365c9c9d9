using MoraEngine.Adapters;
using Xunit;

namespace MoraEngine.Tests;

/// <summary>
/// A linear layer with its MoRA update, merged into a working weight (many tokens) or as the GEMM's epilogue (few):
/// gradients against the double reference, and the same numbers as the unfused pair (Linear, then MoraDelta) for
/// every type, awkward sizes, both paths, the generic and the generated kernels, and gradients that accumulate.
/// </summary>
public class LinearMoraTests
{
    public static IEnumerable<object[]> Types() =>
        new[] { MoraType.Truncation, MoraType.Sharing, MoraType.Interleave, MoraType.InterleaveTile, MoraType.SharingInterleave, MoraType.Rope }
            .Select(t => new object[] { t });

    [Theory]
    [MemberData(nameof(Types))]
    public void GradientsMatchFiniteDifferencesOfTheDoubleReference(MoraType type)
    {
        // in 37 → out 29 leaves a wrap-padded tail; 24 → 50 tiles the output past the input.
        // 24 → 24 with r̂ = 8: Rope's three chunks tile the output exactly once (f_decomp is the identity).
        // 20 → 50 with r̂ = 8: Rope's third chunk wraps past x's end to its first columns.
        foreach (var (inF, outF, rHat) in new[] { (37, 29, type == MoraType.Rope ? 6 : 5), (24, 50, type == MoraType.Rope ? 8 : 7), (24, 24, 8), (20, 50, 8) })
        foreach (var merge in new[] { true, false })
        {
            var op = new MoraOperator(inF, outF, rHat, type);
            const int rows = 6;
            var rng = new Rng((ulong)(inF * 7 + (int)type));
            GradCheck.Check(
                [
                    (GradCheck.Rand(rng, rows * inF), [2, 3, inF]),
                    (GradCheck.Rand(rng, outF * inF, 0.3f), [outF, inF]),
                    (GradCheck.Rand(rng, outF), [outF]),
                    (GradCheck.Rand(rng, rHat * rHat, 0.3f), [rHat, rHat]),
                ],
                t => MoraEngine.Ops.LinearMora(t[0], t[1], t[2], t[3], op, merge),
                v =>
                {
                    double[] x = v[0], w = v[1], bias = v[2], m = v[3];
                    var y = new double[rows * outF];
                    var xc = new double[op.CompressedWidth];
                    var yh = new double[op.CompressedWidth];
                    var dy = new double[outF];
                    for (var i = 0; i < rows; i++)
                    {
                        op.CompressReference(x.AsSpan(i * inF, inF), xc);
                        Array.Clear(yh);
                        for (var c = 0; c < op.Chunks; c++)
                            for (var p = 0; p < rHat; p++)
                                for (var q = 0; q < rHat; q++) yh[c * rHat + p] += m[p * rHat + q] * xc[c * rHat + q];
                        op.DecompressReference(yh, dy);
                        for (var j = 0; j < outF; j++)
                        {
                            var s = bias[j] + dy[j];
                            for (var q = 0; q < inF; q++) s += x[i * inF + q] * w[j * inF + q];
                            y[i * outF + j] = s;
                        }
                    }
                    return y;
                });
        }
    }

    public static IEnumerable<object[]> Cases()
    {
        foreach (var t in new[] { MoraType.Truncation, MoraType.Sharing, MoraType.Interleave, MoraType.InterleaveTile, MoraType.SharingInterleave, MoraType.Rope })
        {
            yield return [t, 300, 261, 203, 8];  // every dimension crosses a GEMM block; tails everywhere
            yield return [t, 7, 37, 29, 2];      // few rows
            yield return [t, 3, 64, 40, 4];      // m ≤ 4: the unpacked product, then the map
        }
        yield return [MoraType.Sharing, 2048, 256, 1024, 8];  // small-cpu's MLP layers, with their generated kernels
        yield return [MoraType.Rope, 2048, 1024, 256, 8];
        yield return [MoraType.Rope, 2048, 256, 256, 8];
        yield return [MoraType.Rope, 2048, 256, 1024, 8];     // r̂ 100: the third chunk wraps
        yield return [MoraType.Rope, 600, 250, 700, 8];       // r̂ 86, a wrapping chunk, tokens over the deep-product threshold
        yield return [MoraType.Rope, 1100, 1024, 1024, 8];    // r̂ 128, eight whole chunks: gM's blocks in one pass over x
        yield return [MoraType.Sharing, 700, 300, 260, 8];    // r̂ 67: gM from gy's tiles (cut at out) and x's chunks (wrapping), folded
        yield return [MoraType.Truncation, 600, 250, 300, 20]; // r̂ 20: gM on gy's and x's first columns in place
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EqualsTheLayerFollowedByMoraDelta(MoraType type, int rows, int inF, int outF, int rank)
    {
        var rHat = MoraOperator.RankHat(inF, outF, rank, type);
        // The generated kernels where a shape has them, and the generic ones, must both match the unfused pair.
        foreach (var specialise in new[] { true, false })
        foreach (var merge in new[] { true, false })
        {
            var op = new MoraOperator(inF, outF, rHat, type, specialise);
            var g1 = GradCheck.Rand(new Rng(11), rows * outF);
            var g2 = GradCheck.Rand(new Rng(12), rows * outF);
            (float[] Y, float[][] Grads) Go(bool fused)
            {
                var local = new Rng((ulong)(rows * 31 + inF));
                Tensor[] t =
                [
                    Tensor.FromArray(GradCheck.Rand(local, rows * inF), [rows, inF]),
                    Tensor.FromArray(GradCheck.Rand(local, outF * inF, 0.1f), [outF, inF]),
                    Tensor.FromArray(GradCheck.Rand(local, outF, 0.1f), [outF]),
                    Tensor.FromArray(GradCheck.Rand(local, rHat * rHat, 0.1f), [rHat, rHat]),
                ];
                foreach (var p in t) p.RequiresGrad = true;
                Tensor Layer() => fused
                    ? MoraEngine.Ops.LinearMora(t[0], t[1], t[2], t[3], op, merge)
                    : MoraEngine.Ops.MoraDelta(t[0], t[3], op, MoraEngine.Ops.Linear(t[0], t[1], t[2]));
                // The layer twice on the same inputs: the second backward accumulates into every gradient slot.
                var y1 = Layer();
                var y2 = Layer();
                var loss = MoraEngine.Ops.Add(
                    MoraEngine.Ops.SumAll(MoraEngine.Ops.Mul(y1, Tensor.FromArray(g1, [rows, outF]))),
                    MoraEngine.Ops.SumAll(MoraEngine.Ops.Mul(y2, Tensor.FromArray(g2, [rows, outF]))));
                loss.Backward();
                return (y1.ToArray(), t.Select(p => p.Grad!.ToArray()).ToArray());
            }
            var (yf, gf) = Go(true);
            var (yu, gu) = Go(false);
            var what = $"{op} specialised={specialise} merged={merge}";
            Close(yu, yf, $"{what} y");
            string[] names = ["x", "W", "bias", "M"];
            for (var i = 0; i < names.Length; i++) Close(gu[i], gf[i], $"{what} {names[i]}");
        }
    }

    private static void Close(float[] want, float[] got, string what)
    {
        Assert.Equal(want.Length, got.Length);
        var scale = Math.Max(1e-6, want.Max(v => Math.Abs(v)));
        for (var i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) <= 2e-5 * scale, $"{what}[{i}]: fused {got[i]}, unfused {want[i]}");
    }

    /// <summary>The merged weight W + ΔW, from the f_comp basis and the backend's gather, against the operator's float64 ΔW.</summary>
    [Theory]
    [MemberData(nameof(Types))]
    public void MergedWeightIsWPlusTheOperatorsDeltaWeight(MoraType type)
    {
        foreach (var (inF, outF, rHat) in new[] { (37, 29, type == MoraType.Rope ? 6 : 5), (24, 50, type == MoraType.Rope ? 8 : 7), (1024, 256, 100) })
        {
            var op = new MoraOperator(inF, outF, rHat, type);
            var rng = new Rng((ulong)(inF + (int)type));
            var w = Tensor.FromArray(GradCheck.Rand(rng, outF * inF), [outF, inF]);
            var m = Tensor.FromArray(GradCheck.Rand(rng, rHat * rHat), [rHat, rHat]);
            var be = Device.Cpu.Backend;
            var merged = Tensor.Zeros(outF, inF);
            be.MoraMergeWeight(op, w, m, merged);
            var want = op.DeltaWeight(m.ToArray());
            var wv = w.ToArray();
            var got = merged.ToArray();
            for (var i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(wv[i] + want[i] - got[i]) <= 1e-5f * (1 + Math.Abs(want[i])), $"{op} [{i / inF}, {i % inF}]: {got[i]} vs {wv[i] + want[i]}");
        }
    }

    /// <summary>The runs of inputs that reach each chunk hold exactly the inputs with a tap there; Rope's are its chunk's own r̂ inputs.</summary>
    [Theory]
    [MemberData(nameof(Types))]
    public void TapRunsCoverExactlyTheInputsWithTaps(MoraType type)
    {
        foreach (var (inF, outF, rHat) in new[] { (37, 29, type == MoraType.Rope ? 6 : 5), (256, 1024, 100), (1024, 256, 100) })
        {
            var op = new MoraOperator(inF, outF, rHat, type);
            var (_, v) = op.CompressTaps();
            var runs = op.CompressTapRuns();
            Assert.Equal(op.ActiveChunks, runs.Length);
            for (var c = 0; c < runs.Length; c++)
            {
                var inRun = new bool[inF];
                for (var k = 0; k < runs[c].Length; k += 2)
                {
                    Assert.True(runs[c][k] < runs[c][k + 1] && (k == 0 || runs[c][k - 1] < runs[c][k]), $"{op} chunk {c}: runs out of order");
                    for (var j = runs[c][k]; j < runs[c][k + 1]; j++) inRun[j] = true;
                }
                for (var j = 0; j < inF; j++)
                    Assert.True(inRun[j] == (v[2 * c * inF + j] != 0 || v[2 * c * inF + inF + j] != 0), $"{op} chunk {c} input {j}");
                if (type == MoraType.Rope && (c + 1) * rHat <= inF) Assert.Equal([c * rHat, (c + 1) * rHat], runs[c]);
            }
        }
    }

    [Fact]
    public void AnAdaptedLayerTrainsThroughTheFusedOpUnlessDropoutIsOn()
    {
        var rng = new Rng(5);
        var layer = new Nn.Linear(24, 50, bias: false, rng);
        var adapter = new MoraAdapter(24, 50, 2, MoraType.Sharing, dropout: 0f, rng);
        layer.SetAdapter(adapter);
        var x = Tensor.FromArray(GradCheck.Rand(rng, 4 * 24), [4, 24]);
        Assert.Equal("LinearMora", layer.Forward(x).Creator?.Op);
        var withDropout = new MoraAdapter(24, 50, 2, MoraType.Sharing, dropout: 0.1f, rng);
        layer.SetAdapter(withDropout);
        withDropout.Train();
        Assert.Equal("MoraDelta", layer.Forward(x).Creator?.Op);
        withDropout.Eval();
        Assert.Equal("LinearMora", layer.Forward(x).Creator?.Op);
    }

    /// <summary>The CPU merges through the operator's f_comp taps: no dense basis is built.</summary>
    [Fact]
    public void TheCpuMergeGathersFromTapsWithoutADenseBasis()
    {
        var rng = new Rng(8);
        var layer = new Nn.Linear(40, 40, bias: false, rng);
        var adapter = new MoraAdapter(40, 40, 2, MoraType.Rope, dropout: 0f, rng);
        layer.SetAdapter(adapter);
        layer.Forward(Tensor.FromArray(GradCheck.Rand(rng, 64 * 40), [64, 40])); // 64 rows: the merged path
        Assert.Equal(2 * adapter.Operator.ActiveChunks * 40, adapter.Operator.CompressTaps().Q.Length);
        Assert.Equal(0, adapter.Operator.CachedBases);
    }

    [Fact]
    public void BadShapes_NameTheOperands()
    {
        var op = new MoraOperator(8, 6, 3, MoraType.Sharing);
        var x = Tensor.Zeros(4, 8);
        var w = Tensor.Zeros(6, 8);
        Assert.Contains("weight", Assert.Throws<ArgumentException>(() => MoraEngine.Ops.LinearMora(x, Tensor.Zeros(6, 7), null, Tensor.Zeros(3, 3), op)).Message);
        Assert.Contains("input", Assert.Throws<ArgumentException>(() => MoraEngine.Ops.LinearMora(Tensor.Zeros(4, 5), w, null, Tensor.Zeros(3, 3), op)).Message);
        Assert.Contains("M has shape", Assert.Throws<ArgumentException>(() => MoraEngine.Ops.LinearMora(x, w, null, Tensor.Zeros(2, 3), op)).Message);
        Assert.Contains("bias", Assert.Throws<ArgumentException>(() => MoraEngine.Ops.LinearMora(x, w, Tensor.Zeros(5), Tensor.Zeros(3, 3), op)).Message);
    }
}

/// <summary>The fused MoRA layer, both paths, on ILGPU's CPU accelerator against the CPU backend.</summary>
[Trait("Backend", "Ilgpu")]
[Collection("Ilgpu")]
public class LinearMoraIlgpuTests
{
    /// <summary>A ReMoRA restart that switches the type frees the f_comp basis the device's merge cached.</summary>
    [Fact]
    public void ARestartThatSwitchesTheTypeFreesTheOldOperatorsCachedBasis()
    {
        var dev = Ilgpu.IlgpuFixture.Device;
        var rng = new Rng(8);
        var adapter = new MoraAdapter(40, 40, 2, MoraType.Sharing, dropout: 0f, rng);
        var x = Tensor.FromArray(GradCheck.Rand(rng, 64 * 40), [64, 40]).To(dev);
        var w = Tensor.FromArray(GradCheck.Rand(rng, 40 * 40), [40, 40]).To(dev);
        void Forward()
        {
            var r = adapter.Operator.RHat;
            MoraEngine.Ops.LinearMora(x, w, null, Tensor.Zeros(r, r).To(dev), adapter.Operator, merge: true);
        }
        Forward(); // the default merge caches the basis on the device
        var old = adapter.Operator;
        Assert.Equal(1, old.CachedBases);
        adapter.Reset(MoraType.Interleave);
        Assert.Equal(0, old.CachedBases);
        Assert.NotSame(old, adapter.Operator);
        Forward();
        Assert.Equal(1, adapter.Operator.CachedBases);
    }

    [Theory]
    [InlineData(MoraType.Sharing, true)]
    [InlineData(MoraType.Sharing, false)]
    [InlineData(MoraType.Rope, true)]
    [InlineData(MoraType.Rope, false)]
    [InlineData(MoraType.Interleave, true)]
    public void MatchesTheCpu(MoraType type, bool merge)
    {
        const int rows = 9, inF = 37, outF = 29;
        var rHat = type == MoraType.Rope ? 6 : 5;
        var op = new MoraOperator(inF, outF, rHat, type);
        Ilgpu.LayerParity.AssertMatch([([rows, inF], 1f), ([outF, inF], 0.2f), ([rHat, rHat], 0.2f)], rows, outF,
            t => MoraEngine.Ops.LinearMora(t[0], t[1], null, t[2], op, merge));
    }
}
