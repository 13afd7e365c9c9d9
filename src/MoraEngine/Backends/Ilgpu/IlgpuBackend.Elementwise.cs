using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

public sealed partial class IlgpuBackend
{
    /// <summary>
    /// A broadcast plan padded to 6 axes at the front (size 1, stride 0): output dims, a's strides, b's strides,
    /// and the row-major strides of the output (for the reductions of <see cref="BroadcastBackward"/>).
    /// </summary>
    internal struct Bcast
    {
        public int D0, D1, D2, D3, D4, D5;
        public int A0, A1, A2, A3, A4, A5;
        public int B0, B1, B2, B3, B4, B5;
        public int O0, O1, O2, O3, O4, O5;
    }

    private const int MaxBroadcastRank = 6;

    private static Bcast Pack(Broadcast plan, bool swap)
    {
        var rank = plan.Dims.Length;
        if (rank > MaxBroadcastRank)
            throw new NotSupportedException($"IlgpuBackend: broadcasts over {rank} merged axes are not supported (at most {MaxBroadcastRank}).");
        Span<int> d = stackalloc int[MaxBroadcastRank];
        Span<int> sa = stackalloc int[MaxBroadcastRank];
        Span<int> sb = stackalloc int[MaxBroadcastRank];
        Span<int> so = stackalloc int[MaxBroadcastRank];
        d.Fill(1);
        var pad = MaxBroadcastRank - rank;
        for (var i = 0; i < rank; i++)
        {
            d[pad + i] = plan.Dims[i];
            sa[pad + i] = swap ? plan.StridesB[i] : plan.StridesA[i];
            sb[pad + i] = swap ? plan.StridesA[i] : plan.StridesB[i];
        }
        var s = 1;
        for (var i = MaxBroadcastRank - 1; i >= 0; i--)
        {
            so[i] = s;
            s *= d[i];
        }
        return new Bcast
        {
            D0 = d[0], D1 = d[1], D2 = d[2], D3 = d[3], D4 = d[4], D5 = d[5],
            A0 = sa[0], A1 = sa[1], A2 = sa[2], A3 = sa[3], A4 = sa[4], A5 = sa[5],
            B0 = sb[0], B1 = sb[1], B2 = sb[2], B3 = sb[3], B4 = sb[4], B5 = sb[5],
            O0 = so[0], O1 = so[1], O2 = so[2], O3 = so[3], O4 = so[4], O5 = so[5],
        };
    }

    /// <summary>Offsets of a and b for output element <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Offsets(int i, in Bcast p, out int oa, out int ob)
    {
        var t = i;
        var x = t % p.D5; t /= p.D5;
        oa = x * p.A5; ob = x * p.B5;
        x = t % p.D4; t /= p.D4;
        oa += x * p.A4; ob += x * p.B4;
        x = t % p.D3; t /= p.D3;
        oa += x * p.A3; ob += x * p.B3;
        x = t % p.D2; t /= p.D2;
        oa += x * p.A2; ob += x * p.B2;
        x = t % p.D1; t /= p.D1;
        oa += x * p.A1; ob += x * p.B1;
        oa += t * p.A0; ob += t * p.B0;
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, Bcast, int>? _kBinary;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, Bcast, Vec4>? _kBcastBack;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int>? _kUnary;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _kUnaryBack;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, float, int>? _kScale;
    private Action<Index1D, ArrayView<float>, float>? _kAddScalar;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, Vec4>? _kReduceSum;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, Vec4>? _kExpandSum;
    private Action<Index1D, ArrayView<float>, ArrayView<double>, int, int>? _kSumSqPartial;
    private Action<Index1D, ArrayView<double>, ArrayView<double>, int, int>? _kSumDoubles;

    /// <summary>Four ints and two floats of kernel arguments.</summary>
    internal struct Vec4
    {
        public int I0, I1, I2, I3;
        public float F0, F1, F2;
    }

    private static void BinaryKernel(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, Bcast p, int op)
    {
        Offsets(i, p, out var oa, out var ob);
        float x = a[oa], y = b[ob];
        c[i] = op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
    }

    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor c, Broadcast plan)
    {
        if (plan.Length == 0) return;
        (_kBinary ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, Bcast, int>(BinaryKernel))(
            plan.Length, V(a), V(b), V(c), Pack(plan, false), (int)op);
    }

    /// <summary>
    /// One thread per destination element: sums src (· other) over every output position that maps to it, in
    /// row-major order of the broadcast axes (deterministic). In the packed plan "A" is dst's operand, "B" the other.
    /// </summary>
    private static void BroadcastBackwardKernel(Index1D od, ArrayView<float> src, ArrayView<float> other, ArrayView<float> dst, Bcast p, Vec4 a)
    {
        // a.I0: other present; a.I1: accumulate; a.F0: scale.
        // dst is contiguous over its kept axes (stride ≠ 0), so each kept index is (od / stride) mod dim.
        int k0 = p.A0 != 0 ? od / p.A0 % p.D0 : 0, k1 = p.A1 != 0 ? od / p.A1 % p.D1 : 0, k2 = p.A2 != 0 ? od / p.A2 % p.D2 : 0;
        int k3 = p.A3 != 0 ? od / p.A3 % p.D3 : 0, k4 = p.A4 != 0 ? od / p.A4 % p.D4 : 0, k5 = p.A5 != 0 ? od / p.A5 % p.D5 : 0;
        int r0 = p.A0 != 0 ? 1 : p.D0, r1 = p.A1 != 0 ? 1 : p.D1, r2 = p.A2 != 0 ? 1 : p.D2;
        int r3 = p.A3 != 0 ? 1 : p.D3, r4 = p.A4 != 0 ? 1 : p.D4, r5 = p.A5 != 0 ? 1 : p.D5;
        var count = r0 * r1 * r2 * r3 * r4 * r5;
        var sum = 0f;
        for (var r = 0; r < count; r++)
        {
            var t = r;
            var i5 = p.A5 != 0 ? k5 : t % r5; t /= r5;
            var i4 = p.A4 != 0 ? k4 : t % r4; t /= r4;
            var i3 = p.A3 != 0 ? k3 : t % r3; t /= r3;
            var i2 = p.A2 != 0 ? k2 : t % r2; t /= r2;
            var i1 = p.A1 != 0 ? k1 : t % r1; t /= r1;
            var i0 = p.A0 != 0 ? k0 : t;
            var oi = i0 * p.O0 + i1 * p.O1 + i2 * p.O2 + i3 * p.O3 + i4 * p.O4 + i5 * p.O5;
            var g = src[oi];
            if (a.I0 != 0) g *= other[i0 * p.B0 + i1 * p.B1 + i2 * p.B2 + i3 * p.B3 + i4 * p.B4 + i5 * p.B5];
            sum += g;
        }
        var v = a.F0 * sum;
        dst[od] = a.I1 != 0 ? dst[od] + v : v;
    }

    public void BroadcastBackward(Tensor src, Tensor? other, Tensor dst, Broadcast plan, int which, float scale, bool accumulate)
    {
        if (dst.Length == 0) return;
        if (plan.Length == 0)
        {
            if (!accumulate) Fill(dst, 0f);
            return;
        }
        var p = Pack(plan, swap: which == 1);
        (_kBcastBack ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, Bcast, Vec4>(BroadcastBackwardKernel))(
            dst.Length, V(src), other != null ? V(other) : V(src), V(dst), p,
            new Vec4 { I0 = other != null ? 1 : 0, I1 = accumulate ? 1 : 0, F0 = scale });
    }

    private const float GeluC = 0.7978845608028654f;   // √(2/π)
    private const float GeluA = 0.044715f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sigmoid(float x) => 1f / (1f + XMath.Exp(-x));

    private static void UnaryKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, int op)
    {
        var v = x[i];
        float r;
        if (op == (int)UnaryOp.Exp) r = XMath.Exp(v);
        else if (op == (int)UnaryOp.Log) r = XMath.Log(v);
        else if (op == (int)UnaryOp.Tanh) r = XMath.Tanh(v);
        else if (op == (int)UnaryOp.Gelu) r = 0.5f * v * (1f + XMath.Tanh(GeluC * (v + GeluA * v * v * v)));
        else if (op == (int)UnaryOp.Silu) r = v * Sigmoid(v);
        else if (op == (int)UnaryOp.Sigmoid) r = Sigmoid(v);
        else if (op == (int)UnaryOp.Relu) r = v > 0f ? v : 0f;
        else r = XMath.Sqrt(v);
        y[i] = r;
    }

    private static void UnaryBackwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> gy, ArrayView<float> gx, int op, int accumulate)
    {
        var v = x[i];
        float d;
        if (op == (int)UnaryOp.Exp) d = y[i];
        else if (op == (int)UnaryOp.Log) d = 1f / v;
        else if (op == (int)UnaryOp.Tanh)
        {
            var t = y[i];
            d = 1f - t * t;
        }
        else if (op == (int)UnaryOp.Gelu)
        {
            var u = GeluC * (v + GeluA * v * v * v);
            var t = XMath.Tanh(u);
            d = 0.5f * (1f + t) + 0.5f * v * (1f - t * t) * GeluC * (1f + 3f * GeluA * v * v);
        }
        else if (op == (int)UnaryOp.Silu)
        {
            var s = Sigmoid(v);
            d = s * (1f + v * (1f - s));
        }
        else if (op == (int)UnaryOp.Sigmoid)
        {
            var s = y[i];
            d = (1f - s) * s;
        }
        else if (op == (int)UnaryOp.Relu) d = v > 0f ? 1f : 0f;
        else d = 0.5f / y[i];
        var g = gy[i] * d;
        gx[i] = accumulate != 0 ? gx[i] + g : g;
    }

    public void Unary(UnaryOp op, Tensor x, Tensor y)
    {
        if (x.Length == 0) return;
        (_kUnary ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(UnaryKernel))(x.Length, V(x), V(y), (int)op);
    }

    public void UnaryBackward(UnaryOp op, Tensor x, Tensor y, Tensor gy, Tensor gx, bool accumulate)
    {
        if (x.Length == 0) return;
        (_kUnaryBack ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(UnaryBackwardKernel))(
            x.Length, V(x), V(y), V(gy), V(gx), (int)op, accumulate ? 1 : 0);
    }

    private static void ScaleKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, float alpha, int accumulate)
    {
        var v = alpha * x[i];
        y[i] = accumulate != 0 ? y[i] + v : v;
    }

    public void Scale(Tensor x, float alpha, Tensor y, bool accumulate)
    {
        if (x.Length == 0) return;
        (_kScale ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float, int>(ScaleKernel))(
            x.Length, V(x), V(y), alpha, accumulate ? 1 : 0);
    }

    private static void AddScalarKernel(Index1D i, ArrayView<float> y, float value) => y[i] += value;

    public void AddScalar(Tensor y, float value)
    {
        if (y.Length == 0) return;
        (_kAddScalar ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(AddScalarKernel))(y.Length, V(y), value);
    }

    /// <summary>y[o, i] = scale·Σ_j x[o, j, i], one thread per output, j in order.</summary>
    private static void ReduceSumKernel(Index1D index, ArrayView<float> x, ArrayView<float> y, Vec4 a)
    {
        int idx = index;
        int n = a.I0, inner = a.I1;
        int o = idx / inner, i = idx - o * inner;
        var at = (long)o * n * inner + i;
        var sum = 0f;
        for (var j = 0; j < n; j++) sum += x[at + (long)j * inner];
        y[idx] = a.F0 * sum;
    }

    public void ReduceSum(Tensor x, Tensor y, int outer, int n, int inner, float scale)
    {
        var outputs = (long)outer * inner;
        if (outputs == 0) return;
        (_kReduceSum ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, Vec4>(ReduceSumKernel))(
            (int)outputs, V(x), V(y), new Vec4 { I0 = n, I1 = inner, F0 = scale });
    }

    private static void ExpandSumKernel(Index1D index, ArrayView<float> gy, ArrayView<float> gx, Vec4 a)
    {
        int idx = index;
        int n = a.I0, inner = a.I1;
        var o = idx / (n * inner);
        var i = idx % inner;
        var v = a.F0 * gy[o * inner + i];
        gx[idx] = a.I2 != 0 ? gx[idx] + v : v;
    }

    public void ExpandSum(Tensor gy, Tensor gx, int outer, int n, int inner, float scale, bool accumulate)
    {
        if (gx.Length == 0) return;
        (_kExpandSum ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, Vec4>(ExpandSumKernel))(
            gx.Length, V(gy), V(gx), new Vec4 { I0 = n, I1 = inner, I2 = accumulate ? 1 : 0, F0 = scale });
    }

    // ---------------------------------------------------------------- deterministic sums of squares

    internal const int SumPartials = 4096;

    /// <summary>partial[p] = Σ x[p + P·q]² in double (interleaved: coalesced loads, a fixed order per partial).</summary>
    private static void SumSquaresPartialKernel(Index1D p, ArrayView<float> x, ArrayView<double> partial, int n, int parts)
    {
        var s = 0.0;
        for (var i = (long)(int)p; i < n; i += parts)
        {
            double v = x[i];
            s += v * v;
        }
        partial[p] = s;
    }

    /// <summary>dst[p] = Σ_{q &lt; group} src[p·group + q], in order.</summary>
    private static void SumDoublesKernel(Index1D p, ArrayView<double> src, ArrayView<double> dst, int group, int n)
    {
        var s = 0.0;
        var start = p * group;
        for (var q = 0; q < group; q++)
            if (start + q < n) s += src[start + q];
        dst[p] = s;
    }

    /// <summary>Queues Σ x² (double) into <paramref name="result"/>[0]: three fixed-shape passes 4096 → 64 → 1.</summary>
    internal void SumSquaresInto(ArrayView<float> x, int n, ArrayView<double> result)
    {
        var partial = ScratchD("sumsq-partial", SumPartials);
        var mid = ScratchD("sumsq-mid", 64);
        (_kSumSqPartial ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<double>, int, int>(SumSquaresPartialKernel))(
            SumPartials, x, partial, n, SumPartials);
        _kSumDoubles ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, int, int>(SumDoublesKernel);
        _kSumDoubles(64, partial, mid, SumPartials / 64, SumPartials);
        _kSumDoubles(1, mid, result, 64, 64);
    }

    public double SumSquares(Tensor x)
    {
        if (x.Length == 0) return 0;
        var result = ScratchD("sumsq-result", 1);
        SumSquaresInto(V(x), x.Length, result);
        var host = new double[1];
        ToHost(result, Stream, host.AsSpan(0, 1));
        Stream.Synchronize();
        return host[0];
    }
}
