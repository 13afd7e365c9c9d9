using System.Buffers;
using System.Numerics.Tensors;

namespace MoraEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    private const int ParallelGrain = 1 << 16;
    private const int Chunk = 2048;

    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor c, Broadcast plan)
    {
        float[] A = a.CpuArray, B = b.CpuArray, C = c.CpuArray;
        int aOff = a.Offset, bOff = b.Offset, cOff = c.Offset;
        var rank = plan.Dims.Length;
        var inner = plan.Dims[rank - 1];
        var sa = plan.StridesA[rank - 1];
        var sb = plan.StridesB[rank - 1];
        var rows = inner == 0 ? 0 : plan.Length / inner;
        if (rows == 1 && inner >= ParallelGrain)
        {
            // One long row (same-shape ops): split the row itself.
            CpuParallel.For(inner, ParallelGrain, (s, e) =>
                BinaryRow(op, A, aOff + s * sa, sa, B, bOff + s * sb, sb, C, cOff + s, e - s));
            return;
        }
        CpuParallel.For(rows, Math.Max(1, ParallelGrain / Math.Max(1, inner)), (r0, r1) =>
        {
            for (var r = r0; r < r1; r++)
            {
                RowOffsets(plan, r, out var oa, out var ob);
                BinaryRow(op, A, aOff + oa, sa, B, bOff + ob, sb, C, cOff + r * inner, inner);
            }
        });
    }

    /// <summary>Offsets of operand rows for output row <paramref name="row"/> (all axes but the last).</summary>
    private static void RowOffsets(Broadcast plan, int row, out int offA, out int offB)
    {
        offA = 0;
        offB = 0;
        for (var d = plan.Dims.Length - 2; d >= 0 && row > 0; d--)
        {
            var dim = plan.Dims[d];
            var idx = row % dim;
            row /= dim;
            offA += idx * plan.StridesA[d];
            offB += idx * plan.StridesB[d];
        }
    }

    private static void BinaryRow(BinaryOp op, float[] A, int ao, int sa, float[] B, int bo, int sb, float[] C, int co, int n)
    {
        var c = C.AsSpan(co, n);
        if (sa != 0 && sb != 0)
        {
            ReadOnlySpan<float> a = A.AsSpan(ao, n), b = B.AsSpan(bo, n);
            switch (op)
            {
                case BinaryOp.Add: Simd.Add(a, b, c); break;
                case BinaryOp.Sub: Simd.Subtract(a, b, c); break;
                case BinaryOp.Mul: Simd.Multiply(a, b, c); break;
                default: Simd.Divide(a, b, c); break;
            }
        }
        else if (sa != 0)
        {
            ReadOnlySpan<float> a = A.AsSpan(ao, n);
            var s = B[bo];
            switch (op)
            {
                case BinaryOp.Add: Simd.Add(a, s, c); break;
                case BinaryOp.Sub: Simd.Subtract(a, s, c); break;
                case BinaryOp.Mul: Simd.Multiply(a, s, c); break;
                default: Simd.Divide(a, s, c); break;
            }
        }
        else if (sb != 0)
        {
            ReadOnlySpan<float> b = B.AsSpan(bo, n);
            var s = A[ao];
            switch (op)
            {
                case BinaryOp.Add: Simd.Add(b, s, c); break;
                case BinaryOp.Sub: Simd.Subtract(s, b, c); break;
                case BinaryOp.Mul: Simd.Multiply(b, s, c); break;
                default: Simd.Divide(s, b, c); break;
            }
        }
        else
        {
            var x = A[ao];
            var y = B[bo];
            c.Fill(op switch { BinaryOp.Add => x + y, BinaryOp.Sub => x - y, BinaryOp.Mul => x * y, _ => x / y });
        }
    }

    public void BroadcastBackward(Tensor src, Tensor? other, Tensor dst, Broadcast plan, int which, float scale, bool accumulate)
    {
        var S = src.CpuArray;
        var O = other?.CpuArray;
        var D = dst.CpuArray;
        int sOff = src.Offset, oOff = other?.Offset ?? 0, dOff = dst.Offset;
        if (plan.IsSameShape)
        {
            // Nothing to reduce (a same-shape Mul's gradients): d = scale·(src·other) (+ d), split over the cores. The
            // same values as the row loop below, which clears d and adds.
            CpuParallel.For(plan.Length, ParallelGrain, (s, e) =>
                Simd.ScaledProductAdd(S.AsSpan(sOff + s, e - s), O == null ? default : O.AsSpan(oOff + s, e - s), scale,
                    D.AsSpan(dOff + s, e - s), accumulate));
            return;
        }
        var rank = plan.Dims.Length;
        var inner = plan.Dims[rank - 1];
        var sd = which == 0 ? plan.StridesA[rank - 1] : plan.StridesB[rank - 1];
        var so = which == 0 ? plan.StridesB[rank - 1] : plan.StridesA[rank - 1];
        if (!accumulate) dst.Span.Clear();
        var rows = inner == 0 ? 0 : plan.Length / inner;
        var scratch = ArrayPool<float>.Shared.Rent(Math.Max(1, inner));
        try
        {
            for (var r = 0; r < rows; r++)
            {
                RowOffsets(plan, r, out var oa, out var ob);
                var od = which == 0 ? oa : ob;
                var oo = which == 0 ? ob : oa;
                ReadOnlySpan<float> g = S.AsSpan(sOff + r * inner, inner);
                if (O != null)
                {
                    var t = scratch.AsSpan(0, inner);
                    if (so != 0) Simd.Multiply(g, O.AsSpan(oOff + oo, inner), t);
                    else Simd.Multiply(g, O[oOff + oo], t);
                    g = t;
                }
                if (sd != 0)
                {
                    var d = D.AsSpan(dOff + od, inner);
                    Simd.MultiplyAdd(g, scale, d, d);
                }
                else
                {
                    D[dOff + od] += scale * Simd.Sum(g);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    public void Unary(UnaryOp op, Tensor x, Tensor y)
    {
        var X = x.CpuArray;
        var Y = y.CpuArray;
        int xo = x.Offset, yo = y.Offset;
        CpuParallel.For(x.Length, ParallelGrain, (s, e) =>
        {
            Span<float> t = stackalloc float[Chunk];
            for (var i = s; i < e; i += Chunk)
            {
                var n = Math.Min(Chunk, e - i);
                ReadOnlySpan<float> xs = X.AsSpan(xo + i, n);
                var ys = Y.AsSpan(yo + i, n);
                UnaryChunk(op, xs, ys, t[..n]);
            }
        });
    }

    private static void UnaryChunk(UnaryOp op, ReadOnlySpan<float> x, Span<float> y, Span<float> t)
    {
        switch (op)
        {
            case UnaryOp.Exp: Simd.Exp(x, y); break;
            case UnaryOp.Log: TensorPrimitives.Log(x, y); break;
            case UnaryOp.Tanh: Simd.Tanh(x, y); break;
            case UnaryOp.Sigmoid: Simd.Sigmoid(x, y); break;
            case UnaryOp.Relu: Simd.Max(x, 0f, y); break;
            case UnaryOp.Sqrt: TensorPrimitives.Sqrt(x, y); break;
            case UnaryOp.Silu: Simd.Silu(x, y); break;
            case UnaryOp.Gelu: Simd.Gelu(x, y); break;
            default: throw new ArgumentOutOfRangeException(nameof(op));
        }
    }

    public void UnaryBackward(UnaryOp op, Tensor x, Tensor y, Tensor gy, Tensor gx, bool accumulate)
    {
        float[] X = x.CpuArray, Y = y.CpuArray, GY = gy.CpuArray, GX = gx.CpuArray;
        int xo = x.Offset, yo = y.Offset, gyo = gy.Offset, gxo = gx.Offset;
        if (op == UnaryOp.Gelu)
        {
            // One pass: x and gy in, gx out (the derivative never goes through a buffer).
            CpuParallel.For(x.Length, ParallelGrain, (s, e) =>
                Simd.GeluBackward(X.AsSpan(xo + s, e - s), GY.AsSpan(gyo + s, e - s), GX.AsSpan(gxo + s, e - s), accumulate));
            return;
        }
        CpuParallel.For(x.Length, ParallelGrain, (s, e) =>
        {
            Span<float> d = stackalloc float[Chunk];
            Span<float> t = stackalloc float[Chunk];
            for (var i = s; i < e; i += Chunk)
            {
                var n = Math.Min(Chunk, e - i);
                ReadOnlySpan<float> xs = X.AsSpan(xo + i, n), ys = Y.AsSpan(yo + i, n), g = GY.AsSpan(gyo + i, n);
                var dd = d[..n];
                var tt = t[..n];
                Derivative(op, xs, ys, dd, tt);
                var outp = GX.AsSpan(gxo + i, n);
                if (accumulate) Simd.MultiplyAdd(g, dd, outp, outp);
                else Simd.Multiply(g, dd, outp);
            }
        });
    }

    /// <summary>d = f'(x), given y = f(x); t is scratch.</summary>
    private static void Derivative(UnaryOp op, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d, Span<float> t)
    {
        switch (op)
        {
            case UnaryOp.Exp: y.CopyTo(d); break;
            case UnaryOp.Log: Simd.Reciprocal(x, d); break;
            case UnaryOp.Tanh:
                Simd.Multiply(y, y, d);
                Simd.Subtract(1f, d, d);
                break;
            case UnaryOp.Sigmoid:
                Simd.Subtract(1f, y, d);
                Simd.Multiply(d, y, d);
                break;
            case UnaryOp.Relu:
                for (var i = 0; i < x.Length; i++) d[i] = x[i] > 0f ? 1f : 0f;
                break;
            case UnaryOp.Sqrt:
                Simd.Reciprocal(y, d);
                Simd.Multiply(d, 0.5f, d);
                break;
            case UnaryOp.Silu: Simd.SiluDerivative(x, d); break;
            case UnaryOp.Gelu: Simd.GeluDerivative(x, d); break;
            default: throw new ArgumentOutOfRangeException(nameof(op));
        }
    }

    /// <summary>One pass over gate and up (<see cref="Simd.SwiGlu"/>).</summary>
    public void SwiGlu(Tensor gate, Tensor up, Tensor y)
    {
        float[] G = gate.CpuArray, U = up.CpuArray, Y = y.CpuArray;
        int go = gate.Offset, uo = up.Offset, yo = y.Offset;
        CpuParallel.For(gate.Length, ParallelGrain, (s, e) =>
            Simd.SwiGlu(G.AsSpan(go + s, e - s), U.AsSpan(uo + s, e - s), Y.AsSpan(yo + s, e - s)));
    }

    /// <summary>Both gradients in one pass over gate, up and gy (<see cref="Simd.SwiGluBackward"/>).</summary>
    public void SwiGluBackward(Tensor gate, Tensor up, Tensor gy, Tensor? gGate, bool accumulateGate, Tensor? gUp, bool accumulateUp)
    {
        float[] G = gate.CpuArray, U = up.CpuArray, GY = gy.CpuArray;
        float[]? GG = gGate?.CpuArray, GU = gUp?.CpuArray;
        int go = gate.Offset, uo = up.Offset, gyo = gy.Offset, ggo = gGate?.Offset ?? 0, guo = gUp?.Offset ?? 0;
        CpuParallel.For(gate.Length, ParallelGrain, (s, e) =>
            Simd.SwiGluBackward(G.AsSpan(go + s, e - s), U.AsSpan(uo + s, e - s), GY.AsSpan(gyo + s, e - s),
                GG == null ? default : GG.AsSpan(ggo + s, e - s), accumulateGate,
                GU == null ? default : GU.AsSpan(guo + s, e - s), accumulateUp));
    }

    public void Scale(Tensor x, float alpha, Tensor y, bool accumulate)
    {
        float[] X = x.CpuArray, Y = y.CpuArray;
        int xo = x.Offset, yo = y.Offset;
        CpuParallel.For(x.Length, ParallelGrain, (s, e) =>
        {
            ReadOnlySpan<float> xs = X.AsSpan(xo + s, e - s);
            var ys = Y.AsSpan(yo + s, e - s);
            if (accumulate) Simd.MultiplyAdd(xs, alpha, ys, ys);
            else Simd.Multiply(xs, alpha, ys);
        });
    }

    public void AddScalar(Tensor y, float value)
    {
        var s = y.Span;
        Simd.Add(s, value, s);
    }

    /// <summary>Rows of x one part of <see cref="ReduceSum"/>'s split over n sums (a bias gradient's tokens).</summary>
    private const int ReduceRowsPerPart = 256;

    public void ReduceSum(Tensor x, Tensor y, int outer, int n, int inner, float scale)
    {
        var X = x.CpuArray;
        var Y = y.CpuArray;
        int xo = x.Offset, yo = y.Offset;
        if (outer == 1 && inner > 1 && n >= 2 * ReduceRowsPerPart && (long)n * inner >= ParallelGrain)
        {
            // One output row over many rows of x (a bias gradient, Σ over tokens): parts of the rows sum into partials
            // on the cores, then the partials are added in part order. The parts depend on n only, so the result does
            // not depend on the core count.
            int parts = Math.Min(n / ReduceRowsPerPart, 64);
            var partials = ArrayPool<float>.Shared.Rent(parts * inner);
            try
            {
                CpuParallel.For(parts, 1, (p0, p1) =>
                {
                    for (var q = p0; q < p1; q++)
                    {
                        int j0 = (int)((long)n * q / parts), j1 = (int)((long)n * (q + 1) / parts);
                        var dst = partials.AsSpan(q * inner, inner);
                        X.AsSpan(xo + j0 * inner, inner).CopyTo(dst);
                        for (var j = j0 + 1; j < j1; j++) Simd.Add(dst, X.AsSpan(xo + j * inner, inner), dst);
                    }
                });
                ReducePartials(partials, parts, inner, y, accumulate: false);
                if (scale != 1f) Simd.Multiply(Y.AsSpan(yo, inner), scale, Y.AsSpan(yo, inner));
            }
            finally
            {
                ArrayPool<float>.Shared.Return(partials);
            }
            return;
        }
        CpuParallel.For(outer, Math.Max(1, ParallelGrain / Math.Max(1, n * inner)), (o0, o1) =>
        {
            for (var o = o0; o < o1; o++)
            {
                if (inner == 1)
                {
                    Y[yo + o] = scale * Simd.Sum(X.AsSpan(xo + o * n, n));
                    continue;
                }
                var dst = Y.AsSpan(yo + o * inner, inner);
                dst.Clear();
                for (var j = 0; j < n; j++) Simd.Add(dst, X.AsSpan(xo + (o * n + j) * inner, inner), dst);
                if (scale != 1f) Simd.Multiply(dst, scale, dst);
            }
        });
    }

    public void ExpandSum(Tensor gy, Tensor gx, int outer, int n, int inner, float scale, bool accumulate)
    {
        var G = gy.CpuArray;
        var X = gx.CpuArray;
        int go = gy.Offset, xo = gx.Offset;
        CpuParallel.For(outer, Math.Max(1, ParallelGrain / Math.Max(1, n * inner)), (o0, o1) =>
        {
            for (var o = o0; o < o1; o++)
            {
                for (var j = 0; j < n; j++)
                {
                    var dst = X.AsSpan(xo + (o * n + j) * inner, inner);
                    if (inner == 1)
                    {
                        var v = scale * G[go + o];
                        dst[0] = accumulate ? dst[0] + v : v;
                        continue;
                    }
                    ReadOnlySpan<float> src = G.AsSpan(go + o * inner, inner);
                    if (accumulate) Simd.MultiplyAdd(src, scale, dst, dst);
                    else Simd.Multiply(src, scale, dst);
                }
            }
        });
    }

    public double SumSquares(Tensor x)
    {
        var s = x.Span;
        double total = 0;
        for (var i = 0; i < s.Length; i += Chunk)
            total += Simd.SumOfSquares(s.Slice(i, Math.Min(Chunk, s.Length - i)));
        return total;
    }
}
