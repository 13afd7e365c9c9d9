using MoraEngine;
using MoraEngine.Adapters;
using Xunit;

namespace MoraEngine.Tests;

public class MoraOperatorTests
{
    /// <summary>Float64 MoRA written straight from docs/MORA.md (index by index, with an explicit padded copy).</summary>
    private static class Reference
    {
        public static double[] Compress(ReadOnlySpan<double> x, int inF, int r, MoraType t)
        {
            var g = (inF + r - 1) / r;
            var xp = new double[g * r]; // wrap padding: x followed by its own first elements
            for (var k = 0; k < xp.Length; k++) xp[k] = k < inF ? x[k] : x[k - inF];
            switch (t)
            {
                case MoraType.Truncation:
                    return xp[..r];
                case MoraType.Sharing or MoraType.SharingInterleave:
                {
                    var s = new double[r];
                    for (var c = 0; c < g; c++)
                        for (var j = 0; j < r; j++) s[j] += xp[c * r + j];
                    return s;
                }
                case MoraType.Interleave or MoraType.InterleaveTile:
                {
                    int nr = inF / r, mr = nr + 1, m = inF - r * nr, p = 0;
                    var s = new double[r];
                    for (var i = 0; i < r; i++)
                        for (var n = i < m ? mr : nr; n > 0; n--) s[i] += x[p++];
                    return s;
                }
                default:
                {
                    var h = r / 2;
                    var s = new double[g * r];
                    for (var c = 0; c < g; c++)
                        for (var j = 0; j < r; j++)
                        {
                            var a = c * Math.Pow(10000, -2.0 * (j % h) / r);
                            var rh = j < h ? -xp[c * r + j + h] : xp[c * r + j - h];
                            s[c * r + j] = xp[c * r + j] * Math.Cos(a) + rh * Math.Sin(a);
                        }
                    return s;
                }
            }
        }

        public static double[] Decompress(double[] yh, int outF, int r, MoraType t)
        {
            var y = new double[outF];
            switch (t)
            {
                case MoraType.Truncation:
                    for (var i = 0; i < r; i++) y[i] = yh[i];
                    break;
                case MoraType.Sharing or MoraType.InterleaveTile:
                    for (var i = 0; i < outF; i++) y[i] = yh[i % r];
                    break;
                case MoraType.Interleave or MoraType.SharingInterleave:
                {
                    int nr = outF / r, mr = nr + 1, m = outF - r * nr, p = 0;
                    for (var i = 0; i < r; i++)
                        for (var n = i < m ? mr : nr; n > 0; n--) y[p++] = yh[i];
                    break;
                }
                default:
                    for (var i = 0; i < outF; i++) y[i] = yh[i % yh.Length]; // concatenated chunks, tiled, cut
                    break;
            }
            return y;
        }

        /// <summary>f_decomp(M · f_comp(x_row)) for one row; M applies to every chunk.</summary>
        public static double[] DeltaRow(ReadOnlySpan<double> x, double[] m, int inF, int outF, int r, MoraType t)
        {
            var xc = Compress(x, inF, r, t);
            var yh = new double[xc.Length];
            for (var c = 0; c < xc.Length / r; c++)
                for (var p = 0; p < r; p++)
                {
                    double s = 0;
                    for (var q = 0; q < r; q++) s += m[p * r + q] * xc[c * r + q];
                    yh[c * r + p] = s;
                }
            return Decompress(yh, outF, r, t);
        }

        /// <summary>base + ΔW·x for x [rows, in] (flat).</summary>
        public static double[] Forward(double[] x, double[] m, double[] b, int inF, int outF, int r, MoraType t)
        {
            var rows = x.Length / inF;
            var y = new double[rows * outF];
            for (var row = 0; row < rows; row++)
            {
                var d = DeltaRow(x.AsSpan(row * inF, inF), m, inF, outF, r, t);
                for (var i = 0; i < outF; i++) y[row * outF + i] = b[row * outF + i] + d[i];
            }
            return y;
        }
    }

    /// <summary>
    /// (type, in, out, r̂): in not a multiple of r̂ everywhere, in &lt; out and in &gt; out, odd r̂ for types 1–4;
    /// Rope with cut-off chunks (in &gt; out), with tiling (G·r̂ &lt; out) and with an exact fit.
    /// </summary>
    public static TheoryData<MoraType, int, int, int> AwkwardSizes => new()
    {
        { MoraType.Truncation, 23, 37, 5 },
        { MoraType.Truncation, 37, 23, 7 },
        { MoraType.Sharing, 23, 37, 5 },
        { MoraType.Sharing, 37, 23, 7 },
        { MoraType.Interleave, 23, 37, 5 },
        { MoraType.Interleave, 37, 23, 7 },
        { MoraType.InterleaveTile, 23, 37, 5 },
        { MoraType.InterleaveTile, 37, 23, 7 },
        { MoraType.SharingInterleave, 23, 37, 5 },
        { MoraType.SharingInterleave, 37, 23, 7 },
        { MoraType.Rope, 23, 37, 6 },
        { MoraType.Rope, 37, 23, 6 },
        { MoraType.Rope, 23, 50, 6 },
        { MoraType.Rope, 24, 24, 6 },
        { MoraType.Rope, 45, 30, 20 }, // r̂/2 = 10: a SIMD vector plus a scalar tail in the rotation; chunk 2 cut off
    };

    [Theory]
    [MemberData(nameof(AwkwardSizes))]
    public void GradCheck_XMAndBase_MatchFloat64Reference(MoraType type, int inF, int outF, int r)
    {
        var op = new MoraOperator(inF, outF, r, type);
        var rng = new Rng((ulong)((int)type * 1000 + inF * 37 + outF * 7 + r));
        GradCheck.Check(
            [
                (GradCheck.Rand(rng, 2 * 3 * inF), [2, 3, inF]),
                (GradCheck.Rand(rng, r * r, 0.5f), [r, r]),
                (GradCheck.Rand(rng, 2 * 3 * outF), [2, 3, outF]),
            ],
            t => Ops.MoraDelta(t[0], t[1], op, t[2]),
            v => Reference.Forward(v[0], v[1], v[2], inF, outF, r, type));
    }

    [Theory]
    [MemberData(nameof(AwkwardSizes))]
    public void DeltaWeight_EqualsTheOperator(MoraType type, int inF, int outF, int r)
    {
        var op = new MoraOperator(inF, outF, r, type);
        var rng = new Rng((ulong)(r * 7919 + inF + (int)type));
        const int rows = 5;
        var x = GradCheck.Rand(rng, rows * inF);
        var m = GradCheck.Rand(rng, r * r);
        var b = GradCheck.Rand(rng, rows * outF);
        var y = Ops.MoraDelta(Tensor.FromArray(x, rows, inF), Tensor.FromArray(m, r, r), op, Tensor.FromArray(b, rows, outF)).ToArray();
        var w = op.DeltaWeight(m);
        for (var row = 0; row < rows; row++)
            for (var i = 0; i < outF; i++)
            {
                double merged = 0;
                for (var j = 0; j < inF; j++) merged += (double)w[i * inF + j] * x[row * inF + j];
                var adapted = y[row * outF + i] - b[row * outF + i];
                Assert.True(Math.Abs(merged - adapted) < 1e-4, $"row {row}, out {i}: x·ΔWᵀ = {merged}, MoraDelta − base = {adapted}");
            }
    }

    [Fact]
    public void RankHat_FollowsTheOfficialRounding()
    {
        Assert.Equal(14, MoraOperator.RankHat(48, 48, 2, MoraType.Sharing));   // √192 = 13.86
        Assert.Equal(17, MoraOperator.RankHat(40, 100, 2, MoraType.Sharing));  // √280 = 16.73
        Assert.Equal(16, MoraOperator.RankHat(40, 100, 2, MoraType.Rope));     // 17 rounded down to even
        Assert.Equal(101, MoraOperator.RankHat(256, 1024, 8, MoraType.Sharing));
        Assert.Equal(100, MoraOperator.RankHat(256, 1024, 8, MoraType.Rope));
        Assert.Equal(4, MoraOperator.RankHat(32, 64, 4, MoraType.Truncation));
    }

    [Fact]
    public void Properties_DescribeTheLayout()
    {
        var rope = new MoraOperator(37, 23, 6, MoraType.Rope);
        Assert.Equal(7, rope.Chunks);
        Assert.Equal(42, rope.CompressedWidth);
        Assert.Equal(4, rope.ActiveChunks); // chunk outputs past out = 23 are cut off
        Assert.Equal(7 * 3, rope.RopeCos.Length);
        var share = new MoraOperator(37, 23, 7, MoraType.Sharing);
        Assert.Equal(1, share.Chunks);
        Assert.Equal(7, share.CompressedWidth);
        var inter = new MoraOperator(37, 23, 7, MoraType.Interleave);
        Assert.Equal([0, 6, 12, 17, 22, 27, 32, 37], inter.InGroupStart.ToArray()); // 37 = 2·6 + 5·5
        Assert.Equal([0, 4, 8, 11, 14, 17, 20, 23], inter.OutGroupStart.ToArray()); // 23 = 2·4 + 5·3
    }

    [Theory]
    [InlineData(0, "r̂ must be positive")]
    [InlineData(-3, "r̂ must be positive")]
    [InlineData(25, "exceeds min(in_features, out_features)")]
    public void Constructor_RejectsBadRank(int r, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => new MoraOperator(30, 24, r, MoraType.Sharing));
        Assert.Contains("MoraOperator", e.Message);
        Assert.Contains(message, e.Message);
        Assert.Contains("30", e.Message);
    }

    [Fact]
    public void Constructor_RejectsOddRankForRope()
    {
        var e = Assert.Throws<ArgumentException>(() => new MoraOperator(30, 24, 7, MoraType.Rope));
        Assert.Contains("even", e.Message);
        Assert.Contains("7", e.Message);
        new MoraOperator(30, 24, 7, MoraType.Sharing); // odd is fine elsewhere
    }

    [Fact]
    public void Constructor_RejectsBadSizesAndTypes()
    {
        Assert.Throws<ArgumentException>(() => new MoraOperator(0, 24, 4, MoraType.Sharing));
        Assert.Contains("unknown MoRA type 5", Assert.Throws<ArgumentException>(() => new MoraOperator(30, 24, 4, (MoraType)5)).Message);
        Assert.Throws<ArgumentException>(() => MoraOperator.RankHat(30, 24, 0, MoraType.Sharing));
    }

    [Fact]
    public void MoraDelta_RejectsMismatchedShapes()
    {
        var op = new MoraOperator(30, 24, 6, MoraType.Sharing);
        var x = Tensor.Zeros(4, 30);
        var m = Tensor.Zeros(6, 6);
        var b = Tensor.Zeros(4, 24);

        var e = Assert.Throws<ArgumentException>(() => Ops.MoraDelta(Tensor.Zeros(4, 29), m, op, b));
        Assert.Contains("MoraDelta", e.Message);
        Assert.Contains("[4, 29]", e.Message);
        Assert.Contains("in_features = 30", e.Message);

        e = Assert.Throws<ArgumentException>(() => Ops.MoraDelta(x, Tensor.Zeros(6, 5), op, b));
        Assert.Contains("MoraDelta", e.Message);
        Assert.Contains("[6, 5]", e.Message);
        Assert.Contains("[6, 6]", e.Message);

        e = Assert.Throws<ArgumentException>(() => Ops.MoraDelta(x, Tensor.Zeros(36), op, b));
        Assert.Contains("[36]", e.Message);

        e = Assert.Throws<ArgumentException>(() => Ops.MoraDelta(x, m, op, Tensor.Zeros(4, 25)));
        Assert.Contains("MoraDelta", e.Message);
        Assert.Contains("[4, 25]", e.Message);
        Assert.Contains("[4, 24]", e.Message);

        e = Assert.Throws<ArgumentException>(() => op.DeltaWeight(new float[35]));
        Assert.Contains("DeltaWeight", e.Message);
    }

    [Fact]
    public void MoraDelta_ReturnsANewTensorAndLeavesBaseAlone()
    {
        var op = new MoraOperator(12, 10, 4, MoraType.Sharing);
        var rng = new Rng(3);
        var b = Tensor.FromArray(GradCheck.Rand(rng, 20), 2, 10);
        var before = b.ToArray();
        var y = Ops.MoraDelta(Tensor.FromArray(GradCheck.Rand(rng, 24), 2, 12), Tensor.FromArray(GradCheck.Rand(rng, 16), 4, 4), op, b);
        Assert.NotSame(b, y);
        Assert.Equal(before, b.ToArray());
        Assert.NotEqual(before, y.ToArray());
    }

    /// <summary>2048 tokens: the row-parallel kernels and the tall GEMMs, checked on sampled tokens.</summary>
    [Theory]
    [InlineData(MoraType.Sharing)]
    [InlineData(MoraType.Rope)]
    public void LargeBatch_MatchesReferenceOnSampledRows(MoraType type)
    {
        const int rows = 2048, inF = 256, outF = 1024;
        var r = MoraOperator.RankHat(inF, outF, 8, type);
        var op = new MoraOperator(inF, outF, r, type);
        var rng = new Rng(11);
        var x = GradCheck.Rand(rng, rows * inF);
        var m = GradCheck.Rand(rng, r * r, 0.1f);
        var b = GradCheck.Rand(rng, rows * outF);
        var xt = Tensor.FromArray(x, rows, inF);
        var y = Ops.MoraDelta(xt, Tensor.FromArray(m, r, r), op, Tensor.FromArray(b, rows, outF)).ToArray();
        var md = m.Select(v => (double)v).ToArray();
        foreach (var row in new[] { 0, 1, 700, 1023, 1024, 1500, 2046, 2047 })
        {
            var xr = x.AsSpan(row * inF, inF).ToArray().Select(v => (double)v).ToArray();
            var d = Reference.DeltaRow(xr, md, inF, outF, r, type);
            for (var i = 0; i < outF; i++)
            {
                var expected = b[row * outF + i] + d[i];
                Assert.True(Math.Abs(y[row * outF + i] - expected) < 1e-4 * Math.Max(1, Math.Abs(expected)),
                    $"row {row}, out {i}: {y[row * outF + i]} vs {expected}");
            }
        }
    }
}
