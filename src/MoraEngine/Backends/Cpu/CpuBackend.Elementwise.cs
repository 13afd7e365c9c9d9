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
                case BinaryOp.Add: TensorPrimitives.Add(a, b, c); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(a, b, c); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(a, b, c); break;
                default: TensorPrimitives.Divide(a, b, c); break;
            }
        }
        else if (sa != 0)
        {
            ReadOnlySpan<float> a = A.AsSpan(ao, n);
            var s = B[bo];
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(a, s, c); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(a, s, c); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(a, s, c); break;
                default: TensorPrimitives.Divide(a, s, c); break;
            }
        }
        else if (sb != 0)
        {
            ReadOnlySpan<float> b = B.AsSpan(bo, n);
            var s = A[ao];
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(b, s, c); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(s, b, c); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(b, s, c); break;
                default: TensorPrimitives.Divide(s, b, c); break;
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
                    if (so != 0) TensorPrimitives.Multiply(g, O.AsSpan(oOff + oo, inner), t);
                    else TensorPrimitives.Multiply(g, O[oOff + oo], t);
                    g = t;
                }
                if (sd != 0)
                {
                    var d = D.AsSpan(dOff + od, inner);
                    TensorPrimitives.MultiplyAdd(g, scale, d, d);
                }
                else
                {
                    D[dOff + od] += scale * TensorPrimitives.Sum(g);
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

    private const float GeluC = 0.7978845608028654f; // √(2/π)
    private const float GeluK = 0.044715f;

    private static void UnaryChunk(UnaryOp op, ReadOnlySpan<float> x, Span<float> y, Span<float> t)
    {
        switch (op)
        {
            case UnaryOp.Exp: TensorPrimitives.Exp(x, y); break;
            case UnaryOp.Log: TensorPrimitives.Log(x, y); break;
            case UnaryOp.Tanh: TensorPrimitives.Tanh(x, y); break;
            case UnaryOp.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
            case UnaryOp.Relu: TensorPrimitives.Max(x, 0f, y); break;
            case UnaryOp.Sqrt: TensorPrimitives.Sqrt(x, y); break;
            case UnaryOp.Silu:
                TensorPrimitives.Sigmoid(x, t);
                TensorPrimitives.Multiply(x, t, y);
                break;
            case UnaryOp.Gelu:
                // 0.5·x·(1 + tanh(c·(x + k·x³)))
                TensorPrimitives.Multiply(x, x, t);
                TensorPrimitives.Multiply(t, GeluK, t);
                TensorPrimitives.Add(t, 1f, t);                  // 1 + k·x²
                TensorPrimitives.Multiply(t, x, t);             // x + k·x³
                TensorPrimitives.Multiply(t, GeluC, t);
                TensorPrimitives.Tanh(t, t);
                TensorPrimitives.Add(t, 1f, t);
                TensorPrimitives.Multiply(t, x, t);
                TensorPrimitives.Multiply(t, 0.5f, y);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(op));
        }
    }

    public void UnaryBackward(UnaryOp op, Tensor x, Tensor y, Tensor gy, Tensor gx, bool accumulate)
    {
        float[] X = x.CpuArray, Y = y.CpuArray, GY = gy.CpuArray, GX = gx.CpuArray;
        int xo = x.Offset, yo = y.Offset, gyo = gy.Offset, gxo = gx.Offset;
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
                if (accumulate) TensorPrimitives.MultiplyAdd(g, dd, outp, outp);
                else TensorPrimitives.Multiply(g, dd, outp);
            }
        });
    }

    /// <summary>d = f'(x), given y = f(x); t is scratch.</summary>
    private static void Derivative(UnaryOp op, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d, Span<float> t)
    {
        switch (op)
        {
            case UnaryOp.Exp: y.CopyTo(d); break;
            case UnaryOp.Log: TensorPrimitives.Reciprocal(x, d); break;
            case UnaryOp.Tanh:
                TensorPrimitives.Multiply(y, y, d);
                TensorPrimitives.Subtract(1f, d, d);
                break;
            case UnaryOp.Sigmoid:
                TensorPrimitives.Subtract(1f, y, d);
                TensorPrimitives.Multiply(d, y, d);
                break;
            case UnaryOp.Relu:
                for (var i = 0; i < x.Length; i++) d[i] = x[i] > 0f ? 1f : 0f;
                break;
            case UnaryOp.Sqrt:
                TensorPrimitives.Reciprocal(y, d);
                TensorPrimitives.Multiply(d, 0.5f, d);
                break;
            case UnaryOp.Silu:
                // s·(1 + x·(1 − s))
                TensorPrimitives.Sigmoid(x, t);
                TensorPrimitives.Subtract(1f, t, d);
                TensorPrimitives.MultiplyAdd(d, x, 1f, d);
                TensorPrimitives.Multiply(d, t, d);
                break;
            case UnaryOp.Gelu:
                // u = c(x + k x³), th = tanh u: 0.5(1 + th) + 0.5 x (1 − th²) c (1 + 3k x²)
                TensorPrimitives.Multiply(x, x, d);                // x²
                TensorPrimitives.Multiply(d, GeluK, t);
                TensorPrimitives.Add(t, 1f, t);                    // 1 + k x²
                TensorPrimitives.Multiply(t, x, t);
                TensorPrimitives.Multiply(t, GeluC, t);
                TensorPrimitives.Tanh(t, t);                       // th
                TensorPrimitives.Multiply(d, 3 * GeluK, d);
                TensorPrimitives.Add(d, 1f, d);                    // 1 + 3k x²
                TensorPrimitives.Multiply(d, x, d);
                TensorPrimitives.Multiply(d, 0.5f * GeluC, d);     // 0.5 c x (1 + 3k x²)
                for (var i = 0; i < d.Length; i++)
                {
                    var th = t[i];
                    d[i] = 0.5f * (1f + th) + d[i] * (1f - th * th);
                }
                break;
            default: throw new ArgumentOutOfRangeException(nameof(op));
        }
    }

    public void Scale(Tensor x, float alpha, Tensor y, bool accumulate)
    {
        float[] X = x.CpuArray, Y = y.CpuArray;
        int xo = x.Offset, yo = y.Offset;
        CpuParallel.For(x.Length, ParallelGrain, (s, e) =>
        {
            ReadOnlySpan<float> xs = X.AsSpan(xo + s, e - s);
            var ys = Y.AsSpan(yo + s, e - s);
            if (accumulate) TensorPrimitives.MultiplyAdd(xs, alpha, ys, ys);
            else TensorPrimitives.Multiply(xs, alpha, ys);
        });
    }

    public void AddScalar(Tensor y, float value)
    {
        var s = y.Span;
        TensorPrimitives.Add(s, value, s);
    }

    public void ReduceSum(Tensor x, Tensor y, int outer, int n, int inner, float scale)
    {
        var X = x.CpuArray;
        var Y = y.CpuArray;
        int xo = x.Offset, yo = y.Offset;
        CpuParallel.For(outer, Math.Max(1, ParallelGrain / Math.Max(1, n * inner)), (o0, o1) =>
        {
            for (var o = o0; o < o1; o++)
            {
                if (inner == 1)
                {
                    Y[yo + o] = scale * TensorPrimitives.Sum(X.AsSpan(xo + o * n, n));
                    continue;
                }
                var dst = Y.AsSpan(yo + o * inner, inner);
                dst.Clear();
                for (var j = 0; j < n; j++) TensorPrimitives.Add(dst, X.AsSpan(xo + (o * n + j) * inner, inner), dst);
                if (scale != 1f) TensorPrimitives.Multiply(dst, scale, dst);
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
                    if (accumulate) TensorPrimitives.MultiplyAdd(src, scale, dst, dst);
                    else TensorPrimitives.Multiply(src, scale, dst);
                }
            }
        });
    }

    public double SumSquares(Tensor x)
    {
        var s = x.Span;
        double total = 0;
        for (var i = 0; i < s.Length; i += Chunk)
            total += TensorPrimitives.SumOfSquares(s.Slice(i, Math.Min(Chunk, s.Length - i)));
        return total;
    }
}
