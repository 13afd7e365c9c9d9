using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class ElementwiseOpsTests
{
    private static readonly Rng R = new(11);

    public static TheoryData<int[], int[]> BroadcastShapes => new()
    {
        { [5], [5] },
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

    [Fact]
    public void Scale_AndScalarOps()
    {
        var x = GradCheck.Rand(R, 10);
        GradCheck.Check([(x, [2, 5])], t => Ops.Scale(t[0], -2.5f), r => r[0].Select(v => -2.5 * v).ToArray());
        GradCheck.Check([(x, [2, 5])], t => Ops.AddScalar(t[0], 3f), r => r[0].Select(v => v + 3).ToArray());
    }
}
