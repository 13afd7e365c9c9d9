using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MoraEngine.Backends.Cpu;

/// <summary>
/// Row-level SIMD primitives for the CPU kernels, with the call shapes of
/// <see cref="System.Numerics.Tensors.TensorPrimitives"/>. Kernels call these on short rows (a 256-wide
/// LayerNorm row, one softmax row) thousands of times per step, where TensorPrimitives' per-call dispatch and its
/// precompiled transcendental paths measured 10–60× slower than plain inlined 256-bit loops on the target runtime.
/// Results do not depend on threading: every reduction runs in a fixed lane and tail order.
/// </summary>
internal static class Simd
{
    private const int W = 8;

    // ---------------------------------------------------------------- binary and scalar arithmetic

    public static void Add(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d) => Zip<AddOp>(x, y, d);
    public static void Subtract(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d) => Zip<SubOp>(x, y, d);
    public static void Multiply(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d) => Zip<MulOp>(x, y, d);
    public static void Divide(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d) => Zip<DivOp>(x, y, d);

    public static void Add(ReadOnlySpan<float> x, float s, Span<float> d) => Zip<AddOp>(x, s, d);
    public static void Subtract(ReadOnlySpan<float> x, float s, Span<float> d) => Zip<AddOp>(x, -s, d);
    public static void Multiply(ReadOnlySpan<float> x, float s, Span<float> d) => Zip<MulOp>(x, s, d);
    public static void Divide(ReadOnlySpan<float> x, float s, Span<float> d) => Zip<DivOp>(x, s, d);

    /// <summary>d = s − y.</summary>
    public static void Subtract(float s, ReadOnlySpan<float> y, Span<float> d) => Zip<RSubOp>(y, s, d);

    /// <summary>d = s / y.</summary>
    public static void Divide(float s, ReadOnlySpan<float> y, Span<float> d) => Zip<RDivOp>(y, s, d);

    /// <summary>d = 1 / x.</summary>
    public static void Reciprocal(ReadOnlySpan<float> x, Span<float> d) => Zip<RDivOp>(x, 1f, d);

    /// <summary>d = max(x, s).</summary>
    public static void Max(ReadOnlySpan<float> x, float s, Span<float> d) => Zip<MaxOp>(x, s, d);

    /// <summary>d = x·y + a.</summary>
    public static void MultiplyAdd(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> a, Span<float> d)
    {
        Check(x.Length, y.Length, d.Length);
        Check(x.Length, a.Length, d.Length);
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        ref var ra = ref MemoryMarshal.GetReference(a);
        ref var rd = ref MemoryMarshal.GetReference(d);
        nuint n = (nuint)x.Length, i = 0;
        for (; i + W <= n; i += W)
            Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, i), Vector256.LoadUnsafe(ref ry, i), Vector256.LoadUnsafe(ref ra, i)).StoreUnsafe(ref rd, i);
        for (; i < n; i++) Unsafe.Add(ref rd, i) = MathF.FusedMultiplyAdd(Unsafe.Add(ref rx, i), Unsafe.Add(ref ry, i), Unsafe.Add(ref ra, i));
    }

    /// <summary>d = x·y + a (FusedMultiplyAdd naming).</summary>
    public static void FusedMultiplyAdd(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> a, Span<float> d) => MultiplyAdd(x, y, a, d);

    /// <summary>d = x·s + a.</summary>
    public static void MultiplyAdd(ReadOnlySpan<float> x, float s, ReadOnlySpan<float> a, Span<float> d)
    {
        Check(x.Length, a.Length, d.Length);
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ra = ref MemoryMarshal.GetReference(a);
        ref var rd = ref MemoryMarshal.GetReference(d);
        var vs = Vector256.Create(s);
        nuint n = (nuint)x.Length, i = 0;
        for (; i + W <= n; i += W)
            Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, i), vs, Vector256.LoadUnsafe(ref ra, i)).StoreUnsafe(ref rd, i);
        for (; i < n; i++) Unsafe.Add(ref rd, i) = MathF.FusedMultiplyAdd(Unsafe.Add(ref rx, i), s, Unsafe.Add(ref ra, i));
    }

    /// <summary>d = x·y + s.</summary>
    public static void MultiplyAdd(ReadOnlySpan<float> x, ReadOnlySpan<float> y, float s, Span<float> d)
    {
        Check(x.Length, y.Length, d.Length);
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        ref var rd = ref MemoryMarshal.GetReference(d);
        var vs = Vector256.Create(s);
        nuint n = (nuint)x.Length, i = 0;
        for (; i + W <= n; i += W)
            Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, i), Vector256.LoadUnsafe(ref ry, i), vs).StoreUnsafe(ref rd, i);
        for (; i < n; i++) Unsafe.Add(ref rd, i) = MathF.FusedMultiplyAdd(Unsafe.Add(ref rx, i), Unsafe.Add(ref ry, i), s);
    }

    /// <summary>
    /// d = fma(g·o, s, d) with <paramref name="accumulate"/>, else fma(g·o, s, +0) (that is, (g·o)·s); without o
    /// (empty), g takes g·o's place.
    /// </summary>
    public static void ScaledProductAdd(ReadOnlySpan<float> g, ReadOnlySpan<float> o, float s, Span<float> d, bool accumulate)
    {
        bool hasO = !o.IsEmpty;
        Check(g.Length, hasO ? o.Length : g.Length, d.Length);
        ref var rg = ref MemoryMarshal.GetReference(g);
        ref var ro = ref MemoryMarshal.GetReference(o);
        ref var rd = ref MemoryMarshal.GetReference(d);
        var vs = Vector256.Create(s);
        nuint n = (nuint)g.Length, i = 0;
        for (; i + W <= n; i += W)
        {
            var t = Vector256.LoadUnsafe(ref rg, i);
            if (hasO) t *= Vector256.LoadUnsafe(ref ro, i);
            Vector256.FusedMultiplyAdd(t, vs, accumulate ? Vector256.LoadUnsafe(ref rd, i) : Vector256<float>.Zero).StoreUnsafe(ref rd, i);
        }
        for (; i < n; i++)
        {
            float t = Unsafe.Add(ref rg, i);
            if (hasO) t *= Unsafe.Add(ref ro, i);
            Unsafe.Add(ref rd, i) = MathF.FusedMultiplyAdd(t, s, accumulate ? Unsafe.Add(ref rd, i) : 0f);
        }
    }

    // ---------------------------------------------------------------- reductions (fixed order)

    public static float Sum(ReadOnlySpan<float> x)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        nuint n = (nuint)x.Length, i = 0;
        Vector256<float> a0 = default, a1 = default;
        for (; i + 2 * W <= n; i += 2 * W)
        {
            a0 += Vector256.LoadUnsafe(ref rx, i);
            a1 += Vector256.LoadUnsafe(ref rx, i + W);
        }
        if (i + W <= n)
        {
            a0 += Vector256.LoadUnsafe(ref rx, i);
            i += W;
        }
        var s = Vector256.Sum(a0 + a1);
        for (; i < n; i++) s += Unsafe.Add(ref rx, i);
        return s;
    }

    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException("Simd.Dot: lengths differ.");
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length, i = 0;
        Vector256<float> a0 = default, a1 = default;
        for (; i + 2 * W <= n; i += 2 * W)
        {
            a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, i), Vector256.LoadUnsafe(ref ry, i), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, i + W), Vector256.LoadUnsafe(ref ry, i + W), a1);
        }
        if (i + W <= n)
        {
            a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, i), Vector256.LoadUnsafe(ref ry, i), a0);
            i += W;
        }
        var s = Vector256.Sum(a0 + a1);
        for (; i < n; i++) s += Unsafe.Add(ref rx, i) * Unsafe.Add(ref ry, i);
        return s;
    }

    public static float SumOfSquares(ReadOnlySpan<float> x) => Dot(x, x);

    public static float Max(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty) throw new ArgumentException("Simd.Max: empty span.");
        ref var rx = ref MemoryMarshal.GetReference(x);
        nuint n = (nuint)x.Length, i = 0;
        var m = float.NegativeInfinity;
        if (n >= W)
        {
            var vm = Vector256.LoadUnsafe(ref rx, 0);
            for (i = W; i + W <= n; i += W) vm = Vector256.Max(vm, Vector256.LoadUnsafe(ref rx, i));
            for (var l = 0; l < W; l++) m = Math.Max(m, vm.GetElement(l));
        }
        for (; i < n; i++) m = Math.Max(m, Unsafe.Add(ref rx, i));
        return m;
    }

    // ---------------------------------------------------------------- transcendentals

    /// <summary>
    /// eˣ for 8 lanes (Cephes expf: x = n·ln2 + r, a degree-6 polynomial in r, 2ⁿ through the exponent bits), about
    /// 2 ulp; inputs are clamped to [−87.3, 88.3] so 2ⁿ stays a normal float.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(-87.3f)), Vector256.Create(88.3f));
        var n = Vector256.Round(x * Vector256.Create(1.44269504088896341f));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-0.693359375f), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(2.12194440e-4f), r);
        var y = Vector256.Create(1.9875691500e-4f);
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(1.3981999507e-3f));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(8.3334519073e-3f));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(4.1665795894e-2f));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(1.6666665459e-1f));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(5.0000001201e-1f));
        y = Vector256.FusedMultiplyAdd(y, r * r, r + Vector256<float>.One);
        var pow2 = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
        return y * pow2;
    }

    /// <summary><see cref="Exp(Vector256{float})"/> for 16 lanes: the same operations, the same value in every lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-87.3f)), Vector512.Create(88.3f));
        var n = Vector512.Round(x * Vector512.Create(1.44269504088896341f));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693359375f), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(2.12194440e-4f), r);
        var y = Vector512.Create(1.9875691500e-4f);
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(1.3981999507e-3f));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(8.3334519073e-3f));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(4.1665795894e-2f));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(1.6666665459e-1f));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(5.0000001201e-1f));
        y = Vector512.FusedMultiplyAdd(y, r * r, r + Vector512<float>.One);
        var pow2 = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
        return y * pow2;
    }

    /// <summary>tanh for 8 lanes through eˣ: tanh x = 1 − 2/(e^{2x} + 1), odd-symmetric, exact limits ±1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Tanh(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        // For |x| < 0.0625 the subtraction loses digits; the odd polynomial x − x³/3 + 2x⁵/15 is exact to float there.
        var x2 = x * x;
        var small = x * Vector256.FusedMultiplyAdd(x2, Vector256.FusedMultiplyAdd(x2, Vector256.Create(2f / 15f), Vector256.Create(-1f / 3f)), Vector256<float>.One);
        var e = Exp(Vector256.Create(-2f) * ax);
        var t = (Vector256<float>.One - e) / (Vector256<float>.One + e);
        var big = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), -t, t);
        return Vector256.ConditionalSelect(Vector256.LessThan(ax, Vector256.Create(0.0625f)), small, big);
    }

    /// <summary>σ(x) = 1/(1 + e^{−x}) for 8 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Sigmoid(Vector256<float> x) => Vector256<float>.One / (Vector256<float>.One + Exp(-x));

    /// <summary>σ for 16 lanes: the same operations as the 8-lane form.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Sigmoid(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Exp(-x));

    public static void Exp(ReadOnlySpan<float> x, Span<float> d) => Map<ExpOp>(x, d);
    public static void Tanh(ReadOnlySpan<float> x, Span<float> d) => Map<TanhOp>(x, d);
    public static void Sigmoid(ReadOnlySpan<float> x, Span<float> d) => Map<SigmoidOp>(x, d);

    private const float GeluC = 0.7978845608028654f; // √(2/π)
    private const float GeluK = 0.044715f;

    /// <summary>
    /// GELU (tanh form) forward: 0.5·x·(1 + tanh u), u = c·(x + k·x³), computed as x·σ(2u) = x / (1 + e^{−2u}), the
    /// same function with one exponential and one division (and no cancellation in 1 + tanh u for negative x).
    /// </summary>
    public static void Gelu(ReadOnlySpan<float> x, Span<float> d) => MapWide<GeluOp>(x, d);

    /// <summary>
    /// GELU derivative: σ(2u) + 2x·σ(2u)(1 − σ(2u))·u′, u′ = c·(1 + 3k·x²); with e = e^{−2u} and s = 1/(1 + e),
    /// 1 − s = e·s, so d = s·(1 + 2u′·x·e·s).
    /// </summary>
    public static void GeluDerivative(ReadOnlySpan<float> x, Span<float> d) => MapWide<GeluGradOp>(x, d);

    /// <summary>
    /// GELU's backward in one pass: d = g·gelu′(x), or d = fma(g, gelu′(x), d) with <paramref name="accumulate"/>;
    /// the derivative is <see cref="GeluDerivative"/>'s, value for value.
    /// </summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> d, bool accumulate)
    {
        Check(x.Length, g.Length, d.Length);
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rg = ref MemoryMarshal.GetReference(g);
        ref var rd = ref MemoryMarshal.GetReference(d);
        nuint n = (nuint)x.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 2 * W <= n; i += 2 * W)
            {
                Vector512<float> dv = GeluGradOp.V(Vector512.LoadUnsafe(ref rx, i)), gv = Vector512.LoadUnsafe(ref rg, i);
                (accumulate ? Vector512.FusedMultiplyAdd(gv, dv, Vector512.LoadUnsafe(ref rd, i)) : gv * dv).StoreUnsafe(ref rd, i);
            }
        for (; i + W <= n; i += W)
        {
            Vector256<float> dv = GeluGradOp.V(Vector256.LoadUnsafe(ref rx, i)), gv = Vector256.LoadUnsafe(ref rg, i);
            (accumulate ? Vector256.FusedMultiplyAdd(gv, dv, Vector256.LoadUnsafe(ref rd, i)) : gv * dv).StoreUnsafe(ref rd, i);
        }
        if (i < n)
        {
            int rem = (int)(n - i);
            Span<float> t = stackalloc float[W];
            Map<GeluGradOp>(x[(int)i..], t[..rem]);
            for (int j = 0; j < rem; j++)
            {
                int q = (int)i + j;
                d[q] = accumulate ? MathF.FusedMultiplyAdd(g[q], t[j], d[q]) : g[q] * t[j];
            }
        }
    }

    /// <summary>SiLU forward: x·σ(x).</summary>
    public static void Silu(ReadOnlySpan<float> x, Span<float> d) => MapWide<SiluOp>(x, d);

    /// <summary>SiLU derivative: σ(x)·(1 + x·(1 − σ(x))).</summary>
    public static void SiluDerivative(ReadOnlySpan<float> x, Span<float> d) => MapWide<SiluGradOp>(x, d);

    /// <summary>SwiGLU's product in one pass: y = silu(gate)·up (<see cref="Silu"/>'s values times up).</summary>
    public static void SwiGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        Check(gate.Length, up.Length, y.Length);
        ref var rg = ref MemoryMarshal.GetReference(gate);
        ref var ru = ref MemoryMarshal.GetReference(up);
        ref var ry = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)gate.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 2 * W <= n; i += 2 * W)
                (SiluOp.V(Vector512.LoadUnsafe(ref rg, i)) * Vector512.LoadUnsafe(ref ru, i)).StoreUnsafe(ref ry, i);
        for (; i + W <= n; i += W)
            (SiluOp.V(Vector256.LoadUnsafe(ref rg, i)) * Vector256.LoadUnsafe(ref ru, i)).StoreUnsafe(ref ry, i);
        if (i < n)
        {
            int rem = (int)(n - i);
            Span<float> t = stackalloc float[W];
            Map<SiluOp>(gate[(int)i..], t[..rem]);
            for (int j = 0; j < rem; j++) y[(int)i + j] = t[j] * up[(int)i + j];
        }
    }

    /// <summary>
    /// SwiGLU's backward in one pass over gate, up and gy: gGate (+)= (gy·up)·silu′(gate) and gUp (+)= gy·silu(gate)
    /// (accumulating by fused multiply-add); either output may be empty to skip it.
    /// </summary>
    public static void SwiGluBackward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> gy,
        Span<float> gGate, bool accGate, Span<float> gUp, bool accUp)
    {
        Check(gate.Length, up.Length, gy.Length);
        bool wantGate = !gGate.IsEmpty, wantUp = !gUp.IsEmpty;
        if (wantGate) Check(gate.Length, gate.Length, gGate.Length);
        if (wantUp) Check(gate.Length, gate.Length, gUp.Length);
        ref var rg = ref MemoryMarshal.GetReference(gate);
        ref var ru = ref MemoryMarshal.GetReference(up);
        ref var ry = ref MemoryMarshal.GetReference(gy);
        ref var rgg = ref MemoryMarshal.GetReference(gGate);
        ref var rgu = ref MemoryMarshal.GetReference(gUp);
        nuint n = (nuint)gate.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 2 * W <= n; i += 2 * W)
            {
                Vector512<float> g = Vector512.LoadUnsafe(ref rg, i), dy = Vector512.LoadUnsafe(ref ry, i);
                var sg = Sigmoid(g);
                if (wantUp)
                {
                    var v = g * sg;
                    (accUp ? Vector512.FusedMultiplyAdd(dy, v, Vector512.LoadUnsafe(ref rgu, i)) : dy * v).StoreUnsafe(ref rgu, i);
                }
                if (wantGate)
                {
                    var d = sg * Vector512.FusedMultiplyAdd(g, Vector512<float>.One - sg, Vector512<float>.One);
                    var t = dy * Vector512.LoadUnsafe(ref ru, i);
                    (accGate ? Vector512.FusedMultiplyAdd(t, d, Vector512.LoadUnsafe(ref rgg, i)) : t * d).StoreUnsafe(ref rgg, i);
                }
            }
        for (; i + W <= n; i += W)
        {
            Vector256<float> g = Vector256.LoadUnsafe(ref rg, i), dy = Vector256.LoadUnsafe(ref ry, i);
            var sg = Sigmoid(g);
            if (wantUp)
            {
                var v = g * sg;
                (accUp ? Vector256.FusedMultiplyAdd(dy, v, Vector256.LoadUnsafe(ref rgu, i)) : dy * v).StoreUnsafe(ref rgu, i);
            }
            if (wantGate)
            {
                var d = sg * Vector256.FusedMultiplyAdd(g, Vector256<float>.One - sg, Vector256<float>.One);
                var t = dy * Vector256.LoadUnsafe(ref ru, i);
                (accGate ? Vector256.FusedMultiplyAdd(t, d, Vector256.LoadUnsafe(ref rgg, i)) : t * d).StoreUnsafe(ref rgg, i);
            }
        }
        if (i < n)
        {
            int rem = (int)(n - i), o = (int)i;
            Span<float> v = stackalloc float[W], d = stackalloc float[W];
            Map<SiluOp>(gate[o..], v[..rem]);
            Map<SiluGradOp>(gate[o..], d[..rem]);
            for (int j = 0; j < rem; j++)
            {
                float dy = gy[o + j];
                if (wantUp) gUp[o + j] = accUp ? MathF.FusedMultiplyAdd(dy, v[j], gUp[o + j]) : dy * v[j];
                if (wantGate)
                {
                    float t = dy * up[o + j];
                    gGate[o + j] = accGate ? MathF.FusedMultiplyAdd(t, d[j], gGate[o + j]) : t * d[j];
                }
            }
        }
    }

    // ---------------------------------------------------------------- loop shapes

    private interface IBin
    {
        static abstract Vector256<float> V(Vector256<float> a, Vector256<float> b);
        static abstract float S(float a, float b);
    }

    private interface IMap
    {
        static abstract Vector256<float> V(Vector256<float> a);
    }

    /// <summary>A map with a 512-bit form that computes, lane by lane, exactly what its 256-bit form does.</summary>
    private interface IMapWide : IMap
    {
        static abstract Vector512<float> V(Vector512<float> a);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Check(int a, int b, int d)
    {
        if (a != b || d < a) throw new ArgumentException("Simd: span lengths differ.");
    }

    private static void Zip<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d) where TOp : IBin
    {
        Check(x.Length, y.Length, d.Length);
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        ref var rd = ref MemoryMarshal.GetReference(d);
        nuint n = (nuint)x.Length, i = 0;
        for (; i + W <= n; i += W) TOp.V(Vector256.LoadUnsafe(ref rx, i), Vector256.LoadUnsafe(ref ry, i)).StoreUnsafe(ref rd, i);
        for (; i < n; i++) Unsafe.Add(ref rd, i) = TOp.S(Unsafe.Add(ref rx, i), Unsafe.Add(ref ry, i));
    }

    private static void Zip<TOp>(ReadOnlySpan<float> x, float s, Span<float> d) where TOp : IBin
    {
        Check(x.Length, x.Length, d.Length);
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rd = ref MemoryMarshal.GetReference(d);
        var vs = Vector256.Create(s);
        nuint n = (nuint)x.Length, i = 0;
        for (; i + W <= n; i += W) TOp.V(Vector256.LoadUnsafe(ref rx, i), vs).StoreUnsafe(ref rd, i);
        for (; i < n; i++) Unsafe.Add(ref rd, i) = TOp.S(Unsafe.Add(ref rx, i), s);
    }

    /// <summary><see cref="Map{TOp}"/> 16 lanes at a time where 512-bit vectors run natively (same values).</summary>
    private static void MapWide<TOp>(ReadOnlySpan<float> x, Span<float> d) where TOp : IMapWide
    {
        if (!Vector512.IsHardwareAccelerated || x.Length < 2 * W)
        {
            Map<TOp>(x, d);
            return;
        }
        Check(x.Length, x.Length, d.Length);
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rd = ref MemoryMarshal.GetReference(d);
        nuint n = (nuint)x.Length, i = 0;
        for (; i + 2 * W <= n; i += 2 * W) TOp.V(Vector512.LoadUnsafe(ref rx, i)).StoreUnsafe(ref rd, i);
        if (i < n) Map<TOp>(x[(int)i..], d[(int)i..]);
    }

    private static void Map<TOp>(ReadOnlySpan<float> x, Span<float> d) where TOp : IMap
    {
        Check(x.Length, x.Length, d.Length);
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rd = ref MemoryMarshal.GetReference(d);
        nuint n = (nuint)x.Length, i = 0;
        for (; i + W <= n; i += W) TOp.V(Vector256.LoadUnsafe(ref rx, i)).StoreUnsafe(ref rd, i);
        if (i < n)
        {
            // Tail through a padded vector so scalar and vector lanes compute the same function.
            Span<float> tmp = stackalloc float[W];
            var rem = (int)(n - i);
            x.Slice((int)i, rem).CopyTo(tmp);
            var v = TOp.V(Vector256.Create((ReadOnlySpan<float>)tmp));
            v.CopyTo(tmp);
            tmp[..rem].CopyTo(d.Slice((int)i, rem));
        }
    }

    private readonly struct AddOp : IBin
    {
        public static Vector256<float> V(Vector256<float> a, Vector256<float> b) => a + b;
        public static float S(float a, float b) => a + b;
    }

    private readonly struct SubOp : IBin
    {
        public static Vector256<float> V(Vector256<float> a, Vector256<float> b) => a - b;
        public static float S(float a, float b) => a - b;
    }

    private readonly struct RSubOp : IBin
    {
        public static Vector256<float> V(Vector256<float> a, Vector256<float> b) => b - a;
        public static float S(float a, float b) => b - a;
    }

    private readonly struct MulOp : IBin
    {
        public static Vector256<float> V(Vector256<float> a, Vector256<float> b) => a * b;
        public static float S(float a, float b) => a * b;
    }

    private readonly struct DivOp : IBin
    {
        public static Vector256<float> V(Vector256<float> a, Vector256<float> b) => a / b;
        public static float S(float a, float b) => a / b;
    }

    private readonly struct RDivOp : IBin
    {
        public static Vector256<float> V(Vector256<float> a, Vector256<float> b) => b / a;
        public static float S(float a, float b) => b / a;
    }

    private readonly struct MaxOp : IBin
    {
        public static Vector256<float> V(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
        public static float S(float a, float b) => MathF.Max(a, b);
    }

    private readonly struct ExpOp : IMap
    {
        public static Vector256<float> V(Vector256<float> a) => Exp(a);
    }

    private readonly struct TanhOp : IMap
    {
        public static Vector256<float> V(Vector256<float> a) => Tanh(a);
    }

    private readonly struct SigmoidOp : IMap
    {
        public static Vector256<float> V(Vector256<float> a) => Sigmoid(a);
    }

    // GELU's two lane widths: the same operations in the same order, so a value does not depend on the width (or
    // the position in its span) that computed it.
    private readonly struct GeluOp : IMapWide
    {
        public static Vector256<float> V(Vector256<float> x)
        {
            var e = Exp(Vector256.Create(-2f * GeluC) * Vector256.FusedMultiplyAdd(Vector256.Create(GeluK) * x * x, x, x));
            return x / (Vector256<float>.One + e);
        }

        public static Vector512<float> V(Vector512<float> x)
        {
            var e = Exp(Vector512.Create(-2f * GeluC) * Vector512.FusedMultiplyAdd(Vector512.Create(GeluK) * x * x, x, x));
            return x / (Vector512<float>.One + e);
        }
    }

    private readonly struct GeluGradOp : IMapWide
    {
        public static Vector256<float> V(Vector256<float> x)
        {
            var x2 = x * x;
            var e = Exp(Vector256.Create(-2f * GeluC) * Vector256.FusedMultiplyAdd(Vector256.Create(GeluK) * x2, x, x));
            var s = Vector256<float>.One / (Vector256<float>.One + e);
            var du2 = Vector256.FusedMultiplyAdd(Vector256.Create(6f * GeluC * GeluK), x2, Vector256.Create(2f * GeluC));
            return s * Vector256.FusedMultiplyAdd(du2 * x, e * s, Vector256<float>.One);
        }

        public static Vector512<float> V(Vector512<float> x)
        {
            var x2 = x * x;
            var e = Exp(Vector512.Create(-2f * GeluC) * Vector512.FusedMultiplyAdd(Vector512.Create(GeluK) * x2, x, x));
            var s = Vector512<float>.One / (Vector512<float>.One + e);
            var du2 = Vector512.FusedMultiplyAdd(Vector512.Create(6f * GeluC * GeluK), x2, Vector512.Create(2f * GeluC));
            return s * Vector512.FusedMultiplyAdd(du2 * x, e * s, Vector512<float>.One);
        }
    }

    private readonly struct SiluOp : IMapWide
    {
        public static Vector256<float> V(Vector256<float> x) => x * Sigmoid(x);
        public static Vector512<float> V(Vector512<float> x) => x * Sigmoid(x);
    }

    private readonly struct SiluGradOp : IMapWide
    {
        public static Vector256<float> V(Vector256<float> x)
        {
            var s = Sigmoid(x);
            return s * Vector256.FusedMultiplyAdd(x, Vector256<float>.One - s, Vector256<float>.One);
        }

        public static Vector512<float> V(Vector512<float> x)
        {
            var s = Sigmoid(x);
            return s * Vector512.FusedMultiplyAdd(x, Vector512<float>.One - s, Vector512<float>.One);
        }
    }
}
