using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class ElementwiseOpsTests
{
    private static readonly Rng R = new(11);

    public static TheoryData<int[], int[]> BroadcastShapes => new()
    {
        { [5], [5] },
        { [3, 37], [3, 37] },
        { [3, 7], [7] },
        { [3, 7], [3, 1] },
        { [2, 3, 5], [1, 3, 1] },
        { [4, 1, 6], [1, 5, 1] },
        { [17], [] },
        { [1], [2, 3] },
        { [2, 1, 33], [2, 9, 33] },
    };

    private static double[] RefBinary(Func<double, double, double> f, double[] a, int[] sa, double[] b, int[] sb)
    {
        var rank = Math.Max(sa.Length, sb.Length);
        var outShape = new int[rank];
        for (var i = 0; i < rank; i++)
        {
            var da = i - (rank - sa.Length) >= 0 ? sa[i - (rank - sa.Length)] : 1;
            var db = i - (rank - sb.Length) >= 0 ? sb[i - (rank - sb.Length)] : 1;
            outShape[i] = Math.Max(da, db);
        }
        var n = GradCheck.Count(outShape);
        var result = new double[n];
        var idx = new int[rank];
        for (var e = 0; e < n; e++)
        {
            var rem = e;
            for (var i = rank - 1; i >= 0; i--) { idx[i] = rem % outShape[i]; rem /= outShape[i]; }
            result[e] = f(a[Flat(idx, sa)], b[Flat(idx, sb)]);
        }
        return result;
    }

    private static int Flat(int[] idx, int[] shape)
    {
        var off = 0;
        var lead = idx.Length - shape.Length;
        for (var i = 0; i < shape.Length; i++) off = off * shape[i] + (shape[i] == 1 ? 0 : idx[lead + i]);
        return off;
    }

    [Theory]
    [MemberData(nameof(BroadcastShapes))]
    public void AddSubMulDiv_MatchReference_AndGradients(int[] sa, int[] sb)
    {
        var a = GradCheck.Rand(R, GradCheck.Count(sa));
        var b = GradCheck.RandAway(R, GradCheck.Count(sb), 0.5f, 2f);
        GradCheck.Check([(a, sa), (b, sb)], t => Ops.Add(t[0], t[1]), r => RefBinary((x, y) => x + y, r[0], sa, r[1], sb));
        GradCheck.Check([(a, sa), (b, sb)], t => Ops.Sub(t[0], t[1]), r => RefBinary((x, y) => x - y, r[0], sa, r[1], sb));
        GradCheck.Check([(a, sa), (b, sb)], t => Ops.Mul(t[0], t[1]), r => RefBinary((x, y) => x * y, r[0], sa, r[1], sb));
        GradCheck.Check([(a, sa), (b, sb)], t => Ops.Div(t[0], t[1]), r => RefBinary((x, y) => x / y, r[0], sa, r[1], sb));
    }

    [Fact]
    public void Broadcast_IncompatibleShapes_NameOpAndShapes()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ops.Add(Tensor.Zeros(3, 4), Tensor.Zeros(5)));
        Assert.Contains("Add", ex.Message);
        Assert.Contains("[3, 4]", ex.Message);
        Assert.Contains("[5]", ex.Message);
    }

    public static TheoryData<string> UnaryNames => new() { "Exp", "Log", "Tanh", "Gelu", "Silu", "Sigmoid", "Sqrt", "Relu" };

    [Theory]
    [MemberData(nameof(UnaryNames))]
    public void Unary_MatchesReference_AndGradient(string name)
    {
        int[] shape = [3, 37];
        var positive = name is "Log" or "Sqrt";
        var x = positive ? GradCheck.RandAway(R, 111, 0.3f, 3f).Select(Math.Abs).ToArray() : GradCheck.RandAway(R, 111, 0.05f, 3f);
        Func<Tensor, Tensor> op = name switch
        {
            "Exp" => Ops.Exp, "Log" => Ops.Log, "Tanh" => Ops.Tanh, "Gelu" => Ops.Gelu, "Silu" => Ops.Silu,
            "Sigmoid" => Ops.Sigmoid, "Sqrt" => Ops.Sqrt, _ => Ops.Relu,
        };
        Func<double, double> f = name switch
        {
            "Exp" => Math.Exp, "Log" => Math.Log, "Tanh" => Math.Tanh,
            "Gelu" => v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))),
            "Silu" => v => v / (1 + Math.Exp(-v)), "Sigmoid" => v => 1 / (1 + Math.Exp(-v)),
            "Sqrt" => Math.Sqrt, _ => v => Math.Max(v, 0),
        };
        GradCheck.Check([(x, shape)], t => op(t[0]), r => r[0].Select(f).ToArray());
    }

    [Fact]
    public void LongTensors_UseParallelPath_AndStayExact()
    {
        var n = 300_001;
        var a = GradCheck.Rand(R, n);
        var b = GradCheck.Rand(R, n);
        var c = Ops.Mul(Tensor.FromArray(a, n), Tensor.FromArray(b, n)).ToArray();
        for (var i = 0; i < n; i += 997) Assert.Equal(a[i] * b[i], c[i]);
        var g = Ops.Gelu(Tensor.FromArray(a, n)).ToArray();
        Assert.Equal(0.5 * a[n - 1] * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (a[n - 1] + 0.044715 * Math.Pow(a[n - 1], 3)))), g[n - 1], 5);
    }

    /// <summary>
    /// GELU and its derivative against the tanh form in double over [−12, 12] and beyond: relative error within a few
    /// float ulps, also for negative inputs where 1 + tanh u cancels; every value the same wherever it sits in its
    /// span (512-bit body, 256-bit remainder, padded tail).
    /// </summary>
    [Fact]
    public void Gelu_AndDerivative_AccurateOverWholeRange_SameAtAnyPosition()
    {
        const double c = 0.7978845608028654, k = 0.044715;
        // In double through 1 + tanh u = 2σ(2u) and 1 − tanh² u = 4σ(2u)(1 − σ(2u)): the tanh form itself rounds
        // 1 + tanh u to 0 below about −9 even in double.
        static double Sig(double v) => 1 / (1 + Math.Exp(-2 * c * (v + k * v * v * v)));
        static double Gelu(double v) => v * Sig(v);
        static double Grad(double v)
        {
            double s = Sig(v), s1 = 1 / (1 + Math.Exp(2 * c * (v + k * v * v * v)));
            return s + 2 * v * s * s1 * c * (1 + 3 * k * v * v);
        }
        foreach (var v in new[] { -3.0, -0.5, 0.25, 2.0 })
        {
            var th = Math.Tanh(c * (v + k * v * v * v));
            Assert.Equal(0.5 * v * (1 + th), Gelu(v), 12);
            Assert.Equal(0.5 * (1 + th) + 0.5 * v * (1 - th * th) * c * (1 + 3 * k * v * v), Grad(v), 12);
        }
        var xs = Enumerable.Range(0, 4801).Select(i => -12f + i * 0.005f).Concat([0f, -0f, 1e-20f, -1e-20f, 40f, -40f, 1e4f, -1e4f]).ToArray();
        int n = xs.Length;
        var be = Device.Cpu.Backend;
        var x = Tensor.FromArray(xs, n);
        var y = Tensor.Zeros(n);
        var d = Tensor.Zeros(n);
        be.Unary(Backends.UnaryOp.Gelu, x, y);
        be.UnaryBackward(Backends.UnaryOp.Gelu, x, y, Tensor.Full(1f, n), d, false);
        float[] ya = y.ToArray(), da = d.ToArray();
        for (var i = 0; i < n; i++)
        {
            double v = xs[i], gy = Gelu(v), gd = Grad(v);
            // Rounding 2u to float moves e^{−2u} by up to |2u|·2⁻²⁴ relative: the float function's own limit.
            var rel = 1e-6 + 1.2e-7 * Math.Min(Math.Abs(2 * c * (v + k * v * v * v)), 200);
            Assert.True(Math.Abs(ya[i] - gy) <= rel * Math.Abs(gy) + 1e-30, $"gelu({v}) = {ya[i]}, expected {gy}");
            // The derivative crosses zero near −0.75, where its own cancellation sets an absolute floor.
            Assert.True(Math.Abs(da[i] - gd) <= 2 * rel * Math.Abs(gd) + 1e-7, $"gelu'({v}) = {da[i]}, expected {gd}");
        }
        // With an incoming gradient, writing or accumulating: g·gelu′(x) and fma(g, gelu′(x), previous), value for value.
        var gRand = GradCheck.Rand(R, n);
        var prev = GradCheck.Rand(R, n);
        var gw = Tensor.Zeros(n);
        var acc = Tensor.FromArray((float[])prev.Clone(), n);
        be.UnaryBackward(Backends.UnaryOp.Gelu, x, y, Tensor.FromArray(gRand, n), gw, false);
        be.UnaryBackward(Backends.UnaryOp.Gelu, x, y, Tensor.FromArray(gRand, n), acc, true);
        float[] gwa = gw.ToArray(), acca = acc.ToArray();
        for (var i = 0; i < n; i++)
        {
            Assert.Equal(gRand[i] * da[i], gwa[i]);
            Assert.Equal(MathF.FusedMultiplyAdd(gRand[i], da[i], prev[i]), acca[i]);
        }
        // The same values at every alignment and in short spans.
        foreach (var shift in new[] { 1, 7, 8, 9, 15, 16, 17 })
            foreach (var len in new[] { 3, 8, 13, 16, 31, 47, 200 })
            {
                var part = Tensor.FromArray(xs.Skip(shift).Take(len).ToArray(), len);
                var py = Tensor.Zeros(len);
                var pd = Tensor.Zeros(len);
                be.Unary(Backends.UnaryOp.Gelu, part, py);
                be.UnaryBackward(Backends.UnaryOp.Gelu, part, py, Tensor.Full(1f, len), pd, false);
                Assert.Equal(ya.AsSpan(shift, len).ToArray(), py.ToArray());
                Assert.Equal(da.AsSpan(shift, len).ToArray(), pd.ToArray());
            }
    }

    /// <summary>
    /// SwiGLU against silu(gate)·up in double with gradients by finite differences, on a length that leaves 512-bit,
    /// 256-bit and scalar parts; the same tensor on both sides; and the values and gradients of the two-op form it
    /// replaces (Mul of Silu), accumulated into existing gradients.
    /// </summary>
    [Fact]
    public void SwiGlu_MatchesReference_AndTheTwoOpForm()
    {
        int[] shape = [3, 41];
        var gate = GradCheck.RandAway(R, 123, 0.05f, 4f);
        var up = GradCheck.Rand(R, 123);
        static double Silu(double v) => v / (1 + Math.Exp(-v));
        GradCheck.Check([(gate, shape), (up, shape)], t => Ops.SwiGlu(t[0], t[1]),
            r => r[0].Zip(r[1], (g, u) => Silu(g) * u).ToArray());
        GradCheck.Check([(gate, shape)], t => Ops.SwiGlu(t[0], t[0]), r => r[0].Select(g => Silu(g) * g).ToArray());

        // Against Mul(Silu(gate), up), both feeding a second use of gate and up so gradients accumulate.
        float[] Run(bool fused, out float[] gg, out float[] gu)
        {
            var g = Tensor.FromArray(gate, shape);
            var u = Tensor.FromArray(up, shape);
            g.RequiresGrad = u.RequiresGrad = true;
            var y = fused ? Ops.SwiGlu(g, u) : Ops.Mul(Ops.Silu(g), u);
            var loss = Ops.SumAll(Ops.Add(Ops.Mul(y, y), Ops.Mul(g, u)));
            loss.Backward();
            gg = g.Grad!.ToArray();
            gu = u.Grad!.ToArray();
            return y.ToArray();
        }
        var yf = Run(true, out var ggf, out var guf);
        var yc = Run(false, out var ggc, out var guc);
        Assert.Equal(yc, yf);
        for (var i = 0; i < yf.Length; i++)
        {
            Assert.Equal(ggc[i], ggf[i], 1e-5f * Math.Max(1f, Math.Abs(ggc[i])));
            Assert.Equal(guc[i], guf[i], 1e-5f * Math.Max(1f, Math.Abs(guc[i])));
        }
        var ex = Assert.Throws<ArgumentException>(() => Ops.SwiGlu(Tensor.Zeros(2, 3), Tensor.Zeros(3, 2)));
        Assert.Contains("[2, 3]", ex.Message);
    }

    [Fact]
    public void Scale_AndScalarOps()
    {
        var x = GradCheck.Rand(R, 10);
        GradCheck.Check([(x, [2, 5])], t => Ops.Scale(t[0], -2.5f), r => r[0].Select(v => -2.5 * v).ToArray());
        GradCheck.Check([(x, [2, 5])], t => Ops.AddScalar(t[0], 3f), r => r[0].Select(v => v + 3).ToArray());
    }
}
