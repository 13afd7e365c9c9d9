using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class AttentionOpsTests
{
    /// <summary>Straightforward float64 causal attention on [B, T, D] arrays; optionally returns P [B, H, T, T].</summary>
    internal static double[] Reference(double[] q, double[] k, double[] v, int B, int T, int D, int H, double[]? probs = null)
    {
        var hd = D / H;
        var scale = 1.0 / Math.Sqrt(hd);
        var o = new double[B * T * D];
        var s = new double[T];
        for (var b = 0; b < B; b++)
            for (var h = 0; h < H; h++)
                for (var i = 0; i < T; i++)
                {
                    var qi = (b * T + i) * D + h * hd;
                    var max = double.NegativeInfinity;
                    for (var j = 0; j <= i; j++)
                    {
                        var kj = (b * T + j) * D + h * hd;
                        double dot = 0;
                        for (var p = 0; p < hd; p++) dot += q[qi + p] * k[kj + p];
                        s[j] = dot * scale;
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (var j = 0; j <= i; j++) sum += s[j] = Math.Exp(s[j] - max);
                    for (var j = 0; j <= i; j++)
                    {
                        var pij = s[j] / sum;
                        if (probs != null) probs[((b * H + h) * T + i) * T + j] = pij;
                        var vj = (b * T + j) * D + h * hd;
                        for (var p = 0; p < hd; p++) o[qi + p] += pij * v[vj + p];
                    }
                }
        return o;
    }

    /// <summary>Float64 analytic backward of <see cref="Reference"/> for output gradient g.</summary>
    private static (double[] dq, double[] dk, double[] dv) ReferenceBackward(double[] q, double[] k, double[] v, double[] g, int B, int T, int D, int H)
    {
        var hd = D / H;
        var scale = 1.0 / Math.Sqrt(hd);
        var P = new double[B * H * T * T];
        Reference(q, k, v, B, T, D, H, P);
        double[] dq = new double[q.Length], dk = new double[k.Length], dv = new double[v.Length];
        var dp = new double[T];
        for (var b = 0; b < B; b++)
            for (var h = 0; h < H; h++)
                for (var i = 0; i < T; i++)
                {
                    var gi = (b * T + i) * D + h * hd;
                    double rowDot = 0;
                    for (var j = 0; j <= i; j++)
                    {
                        var vj = (b * T + j) * D + h * hd;
                        double d = 0;
                        for (var p = 0; p < hd; p++) d += g[gi + p] * v[vj + p];
                        dp[j] = d;
                        rowDot += d * P[((b * H + h) * T + i) * T + j];
                    }
                    for (var j = 0; j <= i; j++)
                    {
                        var pij = P[((b * H + h) * T + i) * T + j];
                        var ds = pij * (dp[j] - rowDot) * scale;
                        var xj = (b * T + j) * D + h * hd;
                        for (var p = 0; p < hd; p++)
                        {
                            dq[gi + p] += ds * k[xj + p];
                            dk[xj + p] += ds * q[gi + p];
                            dv[xj + p] += pij * g[gi + p];
                        }
                    }
                }
        return (dq, dk, dv);
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 5, 2, 3)]
    [InlineData(1, 13, 3, 8)]
    [InlineData(2, 13, 1, 14)]
    [InlineData(2, 5, 3, 7)]
    [InlineData(1, 21, 2, 20)] // crosses the kernel's 16-wide tiles in both T and head dim
    public void GradCheck_MatchesFloat64Reference(int B, int T, int H, int hd)
    {
        var D = H * hd;
        var rng = new Rng((ulong)(B * 1000 + T * 100 + H * 10 + hd));
        var shape = new[] { B, T, D };
        var n = B * T * D;
        GradCheck.Check(
            [(GradCheck.Rand(rng, n), shape), (GradCheck.Rand(rng, n), shape), (GradCheck.Rand(rng, n), shape)],
            t => Ops.CausalSelfAttention(t[0], t[1], t[2], H),
            r => Reference(r[0], r[1], r[2], B, T, D, H));
    }

    [Fact]
    public void GradCheck_SharedInput_AccumulatesAllThreeGradients()
    {
        // q = k = v = x: the kernel must overwrite for q and add for k and v.
        const int B = 2, T = 6, H = 2, hd = 5, D = H * hd;
        var rng = new Rng(11);
        GradCheck.Check(
            [(GradCheck.Rand(rng, B * T * D), new[] { B, T, D })],
            t => Ops.CausalSelfAttention(t[0], t[0], t[0], H),
            r => Reference(r[0], r[0], r[0], B, T, D, H));
    }

    [Fact]
    public void GradCheck_OnlyValueNeedsGradient()
    {
        const int B = 1, T = 7, H = 2, hd = 3, D = H * hd;
        var rng = new Rng(12);
        var shape = new[] { B, T, D };
        GradCheck.Check(
            [(GradCheck.Rand(rng, B * T * D), shape), (GradCheck.Rand(rng, B * T * D), shape), (GradCheck.Rand(rng, B * T * D), shape)],
            t => Ops.CausalSelfAttention(t[0], t[1], t[2], H),
            r => Reference(r[0], r[1], r[2], B, T, D, H),
            differentiable: [2]);
    }

    [Fact]
    public void GradCheck_SaturatedScores()
    {
        // Score gaps of hundreds push exp to its clamped range; probabilities must still match the reference.
        const int B = 1, T = 9, H = 1, hd = 4;
        var rng = new Rng(13);
        var shape = new[] { B, T, hd };
        GradCheck.Check(
            [(GradCheck.Rand(rng, T * hd, 20f), shape), (GradCheck.Rand(rng, T * hd, 20f), shape), (GradCheck.Rand(rng, T * hd), shape)],
            t => Ops.CausalSelfAttention(t[0], t[1], t[2], H),
            r => Reference(r[0], r[1], r[2], B, T, hd, H),
            differentiable: [2]);
    }

    [Fact]
    public void LaterKeysAndValues_DoNotChangeEarlierOutputs()
    {
        const int B = 2, T = 11, H = 3, hd = 6, D = H * hd;
        var rng = new Rng(3);
        var q = GradCheck.Rand(rng, B * T * D);
        var k = GradCheck.Rand(rng, B * T * D);
        var v = GradCheck.Rand(rng, B * T * D);
        var baseline = Run(q, k, v);
        foreach (var t0 in new[] { 1, 5, 6, 10 })
        {
            var k2 = (float[])k.Clone();
            var v2 = (float[])v.Clone();
            for (var b = 0; b < B; b++)
                for (var c = 0; c < D; c++)
                {
                    k2[(b * T + t0) * D + c] += 3f;
                    v2[(b * T + t0) * D + c] -= 5f;
                }
            var changed = Run(q, k2, v2);
            for (var b = 0; b < B; b++)
                for (var t = 0; t < T; t++)
                    for (var c = 0; c < D; c++)
                    {
                        var i = (b * T + t) * D + c;
                        if (t < t0) Assert.Equal(baseline[i], changed[i]);
                        else if (t == t0) Assert.NotEqual(baseline[i], changed[i]);
                    }
        }

        static float[] Run(float[] q, float[] k, float[] v) =>
            Ops.CausalSelfAttention(Tensor.FromArray(q, B, T, D), Tensor.FromArray(k, B, T, D), Tensor.FromArray(v, B, T, D), H).ToArray();
    }

    [Fact]
    public void FirstPosition_ReturnsItsOwnValue()
    {
        // Position 0 attends only to itself, so its output is v[0] exactly whatever q and k are.
        const int B = 1, T = 4, H = 2, D = 8;
        var rng = new Rng(5);
        var v = GradCheck.Rand(rng, B * T * D);
        var o = Ops.CausalSelfAttention(Tensor.FromArray(GradCheck.Rand(rng, B * T * D, 4f), B, T, D),
            Tensor.FromArray(GradCheck.Rand(rng, B * T * D, 4f), B, T, D), Tensor.FromArray(v, B, T, D), H).ToArray();
        for (var c = 0; c < D; c++) Assert.Equal(v[c], o[c]);
    }

    [Fact]
    public void RealSize_ParallelPath_MatchesFloat64Reference()
    {
        const int B = 2, T = 128, D = 256, H = 4;
        var rng = new Rng(42);
        var n = B * T * D;
        float[] q = GradCheck.Rand(rng, n), k = GradCheck.Rand(rng, n), v = GradCheck.Rand(rng, n), g = GradCheck.Rand(rng, n);
        var qt = Tensor.FromArray(q, B, T, D);
        var kt = Tensor.FromArray(k, B, T, D);
        var vt = Tensor.FromArray(v, B, T, D);
        qt.RequiresGrad = kt.RequiresGrad = vt.RequiresGrad = true;
        var o = Ops.CausalSelfAttention(qt, kt, vt, H);
        o.Backward(Tensor.FromArray(g, B, T, D));

        double[] qd = ToDouble(q), kd = ToDouble(k), vd = ToDouble(v), gd = ToDouble(g);
        AssertClose(Reference(qd, kd, vd, B, T, D, H), o.ToArray(), 1e-5, "output");
        var (dq, dk, dv) = ReferenceBackward(qd, kd, vd, gd, B, T, D, H);
        AssertClose(dq, qt.Grad!.ToArray(), 1e-4, "dQ");
        AssertClose(dk, kt.Grad!.ToArray(), 1e-4, "dK");
        AssertClose(dv, vt.Grad!.ToArray(), 1e-4, "dV");

        // Validate the analytic reference itself at a few entries (different batches and heads) by central differences.
        foreach (var (which, idx) in new[] { (0, 5), (1, (1 * T + 77) * D + 200), (2, (0 * T + 3) * D + 130), (0, (1 * T + 127) * D + 255) })
        {
            var x = which == 0 ? qd : which == 1 ? kd : vd;
            var keep = x[idx];
            const double h = 1e-5;
            x[idx] = keep + h;
            var up = Dot(Reference(qd, kd, vd, B, T, D, H), gd);
            x[idx] = keep - h;
            var down = Dot(Reference(qd, kd, vd, B, T, D, H), gd);
            x[idx] = keep;
            var numeric = (up - down) / (2 * h);
            var analytic = (which == 0 ? qt : which == 1 ? kt : vt).Grad!.ToArray()[idx];
            Assert.True(Math.Abs(numeric - analytic) <= 1e-3 * Math.Max(1, Math.Abs(numeric)),
                $"input {which} [{idx}]: engine {analytic} vs finite difference {numeric}");
        }
    }

    [Fact]
    public void BadShapes_Throw_NamingOpAndShapes()
    {
        var a = Tensor.Zeros(2, 3, 8);
        var b = Tensor.Zeros(2, 4, 8);
        var ex = Assert.Throws<ArgumentException>(() => Ops.CausalSelfAttention(a, b, a, 2));
        Assert.Contains("CausalSelfAttention", ex.Message);
        Assert.Contains("[2, 3, 8]", ex.Message);
        Assert.Contains("[2, 4, 8]", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.CausalSelfAttention(a, a, a, 3));
        Assert.Contains("CausalSelfAttention", ex.Message);
        Assert.Contains("[2, 3, 8]", ex.Message);

        var flat = Tensor.Zeros(3, 8);
        ex = Assert.Throws<ArgumentException>(() => Ops.CausalSelfAttention(flat, flat, flat, 2));
        Assert.Contains("[3, 8]", ex.Message);
    }

    [Theory]
    [InlineData(13, 0, 0, 64, 0, 32, false, false)]    // full tile, A read by rows
    [InlineData(13, 12, 0, 13, 0, 32, false, true)]    // one row left: the last row re-read, seven dropped
    [InlineData(13, 8, 0, 13, 0, 32, false, false)]    // five rows left: a whole 4-row half and one row
    [InlineData(37, 8, 8, 37, 32, 5, true, false)]     // A read transposed (dS's columns), a ragged 5-column tile
    [InlineData(64, 60, 3, 61, 32, 17, true, true)]    // columns across the 512-bit halves, accumulate
    [InlineData(9, 4, 0, 9, 0, 16, false, true)]       // exactly the 256-bit tile's width
    public unsafe void AttnTile512_SameBitsAs256BitTiles(int rowsTotal, int r0, int p0, int p1, int c0, int cols, bool transposedA, bool accumulate)
    {
        // The AVX-512 tile (8×32) must sum every element in the 256-bit tile's (4×16) order.
        if (!System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated || !System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        const int P = 64, ldb = 64, ldc = 80;
        var rng = new Rng((ulong)(rowsTotal * 31 + r0 * 7 + cols));
        var a = GradCheck.Rand(rng, rowsTotal * P);
        var b = GradCheck.Rand(rng, P * ldb);
        var c0Values = GradCheck.Rand(rng, rowsTotal * ldc);
        float[] wide = (float[])c0Values.Clone(), narrow = (float[])c0Values.Clone();
        nint rs = transposedA ? 1 : P, ps = transposedA ? rowsTotal : 1;
        fixed (float* pa = a, pb = b, pw = wide, pn = narrow)
        {
            Backends.Cpu.CpuBackend.AttnTile512(pa, rs, ps, rowsTotal, r0, p0, p1, pb, ldb, c0, cols, pw, ldc, 0.37f, accumulate);
            // The 8×32 tile as four 4×16 ones: rows r0 and r0 + 4 (while inside the matrix), columns c0 and c0 + 16.
            for (var r = r0; r < Math.Min(rowsTotal, r0 + 8); r += 4)
            {
                Backends.Cpu.CpuBackend.AttnTile256(pa, rs, ps, rowsTotal, r, p0, p1, pb, ldb, c0, Math.Min(16, cols), pn, ldc, 0.37f, accumulate);
                if (cols > 16)
                    Backends.Cpu.CpuBackend.AttnTile256(pa, rs, ps, rowsTotal, r, p0, p1, pb, ldb, c0 + 16, cols - 16, pn, ldc, 0.37f, accumulate);
            }
        }
        Assert.Equal(narrow, wide);
        Assert.NotEqual(c0Values, wide);
    }

    /// <summary>The column third <paramref name="i"/> of a [B, T, 3·D] array as a [B, T, D] one.</summary>
    private static double[] Third(double[] qkv, int rows, int D, int i)
    {
        var r = new double[rows * D];
        for (var row = 0; row < rows; row++) Array.Copy(qkv, row * 3 * D + i * D, r, row * D, D);
        return r;
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 5, 2, 3)]
    [InlineData(1, 21, 2, 20)] // crosses the kernel's 16-wide tiles in both T and head dim
    public void Qkv_GradCheck_MatchesFloat64Reference(int B, int T, int H, int hd)
    {
        var D = H * hd;
        var rng = new Rng((ulong)(B * 1000 + T * 100 + H * 10 + hd + 7));
        GradCheck.Check(
            [(GradCheck.Rand(rng, B * T * 3 * D), new[] { B, T, 3 * D })],
            t => Ops.CausalSelfAttentionQkv(t[0], H),
            r => Reference(Third(r[0], B * T, D, 0), Third(r[0], B * T, D, 1), Third(r[0], B * T, D, 2), B, T, D, H));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Qkv_SameBitsAsSplitThenAttention(bool qkvReadTwice)
    {
        // The fused input read in place must give exactly what the three copies give, forward and backward; read a
        // second time (qkvReadTwice), its gradient slot already holds a value and the kernel must add to it.
        const int B = 2, T = 37, H = 3, hd = 20, D = H * hd;
        var rng = new Rng(21);
        var x = GradCheck.Rand(rng, B * T * 3 * D);
        var g = GradCheck.Rand(rng, B * T * D);
        (float[] Out, float[] Grad) Run(bool fused)
        {
            var qkv = Tensor.FromArray((float[])x.Clone(), B, T, 3 * D);
            qkv.RequiresGrad = true;
            Tensor o;
            if (fused) o = Ops.CausalSelfAttentionQkv(qkv, H);
            else
            {
                var parts = Ops.Split(qkv, D, D, D);
                o = Ops.CausalSelfAttention(parts[0], parts[1], parts[2], H);
            }
            var outValues = o.ToArray();
            if (qkvReadTwice) o = Ops.Add(o, Ops.Split(qkv, D, 2 * D)[0]);
            o.Backward(Tensor.FromArray(g, B, T, D));
            return (outValues, qkv.Grad!.ToArray());
        }
        var (splitOut, splitGrad) = Run(false);
        var (fusedOut, fusedGrad) = Run(true);
        Assert.Equal(splitOut, fusedOut);
        Assert.Equal(splitGrad, fusedGrad);
    }

    [Fact]
    public void Qkv_BadShapes_Throw_NamingOpAndShape()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ops.CausalSelfAttentionQkv(Tensor.Zeros(2, 3, 8), 2));
        Assert.Contains("CausalSelfAttentionQkv", ex.Message);
        Assert.Contains("[2, 3, 8]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Ops.CausalSelfAttentionQkv(Tensor.Zeros(2, 3, 12), 3));
        Assert.Contains("width 4", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Ops.CausalSelfAttentionQkv(Tensor.Zeros(6, 12), 2));
        Assert.Contains("[6, 12]", ex.Message);
    }

    private static double[] ToDouble(float[] x)
    {
        var d = new double[x.Length];
        for (var i = 0; i < x.Length; i++) d[i] = x[i];
        return d;
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (var i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    private static void AssertClose(double[] expected, float[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 1;
        foreach (var e in expected) scale = Math.Max(scale, Math.Abs(e));
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * scale, $"{what}[{i}]: engine {actual[i]} vs reference {expected[i]}");
    }
}
