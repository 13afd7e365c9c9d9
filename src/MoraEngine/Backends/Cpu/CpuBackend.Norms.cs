using System.Buffers;
using System.Numerics.Tensors;

namespace MoraEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <summary>Elements of work per parallel piece for the row kernels.</summary>
    private const int RowGrain = 1 << 15;

    /// <summary>Upper bound on per-partition partial sums kept for weight gradients (bounds scratch memory).</summary>
    private const int MaxPartials = 64;

    /// <summary>Rows handed to one parallel piece so each piece has about <see cref="RowGrain"/> elements.</summary>
    private static int RowsPerPiece(int d) => Math.Max(1, RowGrain / Math.Max(1, d));

    /// <summary>
    /// Number of row partitions whose weight-gradient partial sums are added up at the end. It depends on the
    /// problem size only (not on the core count), so the summation order, and the result, is the same everywhere.
    /// </summary>
    private static int Partitions(int rows, int d)
    {
        var p = (long)rows * d / RowGrain;
        return (int)Math.Clamp(p, 1, Math.Max(1, Math.Min(MaxPartials, rows)));
    }

    /// <summary>Adds the <paramref name="parts"/> partial rows of <paramref name="part"/> in order, then writes or adds them into dst.</summary>
    private static void ReducePartials(float[] part, int parts, int d, Tensor dst, bool accumulate)
    {
        var D = dst.CpuArray;
        var dOff = dst.Offset;
        CpuParallel.For(d, Math.Max(16, RowGrain / Math.Max(1, parts)), (c0, c1) =>
        {
            var n = c1 - c0;
            var total = part.AsSpan(c0, n);
            for (var p = 1; p < parts; p++) Simd.Add(total, part.AsSpan(p * d + c0, n), total);
            var o = D.AsSpan(dOff + c0, n);
            if (accumulate) Simd.Add(o, total, o);
            else total.CopyTo(o);
        });
    }

    // ---------------------------------------------------------------- LayerNorm

    public void LayerNorm(Tensor x, Tensor weight, Tensor? bias, Tensor y, Tensor mean, Tensor rstd, int rows, int d, float eps)
    {
        float[] X = x.CpuArray, W = weight.CpuArray, Y = y.CpuArray, M = mean.CpuArray, R = rstd.CpuArray;
        var B = bias?.CpuArray;
        int xo = x.Offset, wo = weight.Offset, bo = bias?.Offset ?? 0, yo = y.Offset, mo = mean.Offset, ro = rstd.Offset;
        CpuParallel.For(rows, RowsPerPiece(d), (r0, r1) =>
        {
            ReadOnlySpan<float> w = W.AsSpan(wo, d);
            ReadOnlySpan<float> b = B == null ? default : B.AsSpan(bo, d);
            for (var r = r0; r < r1; r++)
            {
                ReadOnlySpan<float> xr = X.AsSpan(xo + r * d, d);
                var yr = Y.AsSpan(yo + r * d, d);
                // Two passes (mean, then squared deviations) keep the variance accurate when |mean| ≫ std.
                var mu = Simd.Sum(xr) / d;
                Simd.Subtract(xr, mu, yr);
                var rs = 1f / MathF.Sqrt(Simd.SumOfSquares(yr) / d + eps);
                Simd.Multiply(yr, rs, yr);
                if (B != null) Simd.FusedMultiplyAdd(yr, w, b, yr);
                else Simd.Multiply(yr, w, yr);
                M[mo + r] = mu;
                R[ro + r] = rs;
            }
        });
    }

    public void LayerNormBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor gy,
        Tensor? gx, bool accX, Tensor? gweight, bool accWeight, Tensor? gbias, bool accBias, int rows, int d)
    {
        float[] X = x.CpuArray, W = weight.CpuArray, M = mean.CpuArray, R = rstd.CpuArray, G = gy.CpuArray;
        var GX = gx?.CpuArray;
        int xo = x.Offset, wo = weight.Offset, mo = mean.Offset, ro = rstd.Offset, go = gy.Offset, gxo = gx?.Offset ?? 0;
        var parts = Partitions(rows, d);
        var partW = gweight != null ? ArrayPool<float>.Shared.Rent(parts * d) : null;
        var partB = gbias != null ? ArrayPool<float>.Shared.Rent(parts * d) : null;
        try
        {
            CpuParallel.For(parts, 1, (p0, p1) =>
            {
                var scratch = ArrayPool<float>.Shared.Rent(2 * d);
                try
                {
                    var xhat = scratch.AsSpan(0, d);
                    var dn = scratch.AsSpan(d, d);
                    ReadOnlySpan<float> w = W.AsSpan(wo, d);
                    for (var p = p0; p < p1; p++)
                    {
                        var pw = partW == null ? default : partW.AsSpan(p * d, d);
                        var pb = partB == null ? default : partB.AsSpan(p * d, d);
                        pw.Clear();
                        pb.Clear();
                        int r0 = (int)((long)rows * p / parts), r1 = (int)((long)rows * (p + 1) / parts);
                        for (var r = r0; r < r1; r++)
                        {
                            ReadOnlySpan<float> g = G.AsSpan(go + r * d, d);
                            var rs = R[ro + r];
                            Simd.Subtract(X.AsSpan(xo + r * d, d), M[mo + r], xhat);
                            Simd.Multiply(xhat, rs, xhat);
                            if (partW != null) Simd.MultiplyAdd(g, xhat, pw, pw);
                            if (partB != null) Simd.Add(pb, g, pb);
                            if (GX == null) continue;
                            // dx = rstd·(dn − mean(dn) − x̂·mean(dn·x̂)) with dn = gy·w.
                            Simd.Multiply(g, w, dn);
                            var a = Simd.Sum(dn) / d;
                            var c = Simd.Dot(dn, xhat) / d;
                            Simd.MultiplyAdd(xhat, -c, dn, dn);
                            Simd.Subtract(dn, a, dn);
                            var o = GX.AsSpan(gxo + r * d, d);
                            if (accX) Simd.MultiplyAdd(dn, rs, o, o);
                            else Simd.Multiply(dn, rs, o);
                        }
                    }
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(scratch);
                }
            });
            if (partW != null) ReducePartials(partW, parts, d, gweight!, accWeight);
            if (partB != null) ReducePartials(partB, parts, d, gbias!, accBias);
        }
        finally
        {
            if (partW != null) ArrayPool<float>.Shared.Return(partW);
            if (partB != null) ArrayPool<float>.Shared.Return(partB);
        }
    }

    // ---------------------------------------------------------------- RmsNorm

    public void RmsNorm(Tensor x, Tensor weight, Tensor y, Tensor rstd, int rows, int d, float eps)
    {
        float[] X = x.CpuArray, W = weight.CpuArray, Y = y.CpuArray, R = rstd.CpuArray;
        int xo = x.Offset, wo = weight.Offset, yo = y.Offset, ro = rstd.Offset;
        CpuParallel.For(rows, RowsPerPiece(d), (r0, r1) =>
        {
            ReadOnlySpan<float> w = W.AsSpan(wo, d);
            for (var r = r0; r < r1; r++)
            {
                ReadOnlySpan<float> xr = X.AsSpan(xo + r * d, d);
                var yr = Y.AsSpan(yo + r * d, d);
                var rs = 1f / MathF.Sqrt(Simd.SumOfSquares(xr) / d + eps);
                Simd.Multiply(xr, rs, yr);
                Simd.Multiply(yr, w, yr);
                R[ro + r] = rs;
            }
        });
    }

    public void RmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor gy,
        Tensor? gx, bool accX, Tensor? gweight, bool accWeight, int rows, int d)
    {
        float[] X = x.CpuArray, W = weight.CpuArray, R = rstd.CpuArray, G = gy.CpuArray;
        var GX = gx?.CpuArray;
        int xo = x.Offset, wo = weight.Offset, ro = rstd.Offset, go = gy.Offset, gxo = gx?.Offset ?? 0;
        var parts = Partitions(rows, d);
        var partW = gweight != null ? ArrayPool<float>.Shared.Rent(parts * d) : null;
        try
        {
            CpuParallel.For(parts, 1, (p0, p1) =>
            {
                var scratch = ArrayPool<float>.Shared.Rent(2 * d);
                try
                {
                    var xhat = scratch.AsSpan(0, d);
                    var dn = scratch.AsSpan(d, d);
                    ReadOnlySpan<float> w = W.AsSpan(wo, d);
                    for (var p = p0; p < p1; p++)
                    {
                        var pw = partW == null ? default : partW.AsSpan(p * d, d);
                        pw.Clear();
                        int r0 = (int)((long)rows * p / parts), r1 = (int)((long)rows * (p + 1) / parts);
                        for (var r = r0; r < r1; r++)
                        {
                            ReadOnlySpan<float> g = G.AsSpan(go + r * d, d);
                            var rs = R[ro + r];
                            Simd.Multiply(X.AsSpan(xo + r * d, d), rs, xhat);
                            if (partW != null) Simd.MultiplyAdd(g, xhat, pw, pw);
                            if (GX == null) continue;
                            // dx = rstd·(dn − x̂·mean(dn·x̂)) with dn = gy·w.
                            Simd.Multiply(g, w, dn);
                            var c = Simd.Dot(dn, xhat) / d;
                            Simd.MultiplyAdd(xhat, -c, dn, dn);
                            var o = GX.AsSpan(gxo + r * d, d);
                            if (accX) Simd.MultiplyAdd(dn, rs, o, o);
                            else Simd.Multiply(dn, rs, o);
                        }
                    }
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(scratch);
                }
            });
            if (partW != null) ReducePartials(partW, parts, d, gweight!, accWeight);
        }
        finally
        {
            if (partW != null) ArrayPool<float>.Shared.Return(partW);
        }
    }

    // ---------------------------------------------------------------- Softmax

    public void Softmax(Tensor x, Tensor y, int rows, int d, bool log)
    {
        float[] X = x.CpuArray, Y = y.CpuArray;
        int xo = x.Offset, yo = y.Offset;
        CpuParallel.For(rows, RowsPerPiece(d), (r0, r1) =>
        {
            for (var r = r0; r < r1; r++)
            {
                ReadOnlySpan<float> xr = X.AsSpan(xo + r * d, d);
                var yr = Y.AsSpan(yo + r * d, d);
                var max = Simd.Max(xr);
                Simd.Subtract(xr, max, yr);
                Simd.Exp(yr, yr);
                var sum = Simd.Sum(yr);
                if (log)
                {
                    // x − max − log Σ exp(x − max): exact for the largest entries, no log of a tiny probability.
                    Simd.Subtract(xr, max + MathF.Log(sum), yr);
                }
                else
                {
                    Simd.Multiply(yr, 1f / sum, yr);
                }
            }
        });
    }

    public void SoftmaxBackward(Tensor y, Tensor gy, Tensor gx, int rows, int d, bool log, bool accumulate)
    {
        float[] Y = y.CpuArray, G = gy.CpuArray, GX = gx.CpuArray;
        int yo = y.Offset, go = gy.Offset, gxo = gx.Offset;
        CpuParallel.For(rows, RowsPerPiece(d), (r0, r1) =>
        {
            var scratch = accumulate ? ArrayPool<float>.Shared.Rent(d) : null;
            try
            {
                for (var r = r0; r < r1; r++)
                {
                    ReadOnlySpan<float> yr = Y.AsSpan(yo + r * d, d);
                    ReadOnlySpan<float> g = G.AsSpan(go + r * d, d);
                    var o = GX.AsSpan(gxo + r * d, d);
                    var t = scratch == null ? o : scratch.AsSpan(0, d);
                    if (log)
                    {
                        // gy − softmax·Σ gy
                        var s = Simd.Sum(g);
                        Simd.Exp(yr, t);
                        Simd.MultiplyAdd(t, -s, g, t);
                    }
                    else
                    {
                        // y·(gy − Σ gy·y)
                        var dot = Simd.Dot(g, yr);
                        Simd.Subtract(g, dot, t);
                        Simd.Multiply(t, yr, t);
                    }
                    if (scratch != null) Simd.Add(o, t, o);
                }
            }
            finally
            {
                if (scratch != null) ArrayPool<float>.Shared.Return(scratch);
            }
        });
    }

    // ---------------------------------------------------------------- CrossEntropy

    private static float RowWeight(int[] targets, float[]? rowWeights, int ignoreIndex, int r) =>
        rowWeights != null ? rowWeights[r] : targets[r] == ignoreIndex ? 0f : 1f;

    public void CrossEntropy(Tensor logits, int[] targets, float[]? rowWeights, int ignoreIndex, float scale,
        Tensor lse, Tensor loss, int rows, int v)
    {
        float[] L = logits.CpuArray, S = lse.CpuArray;
        int lo = logits.Offset, so = lse.Offset;
        CpuParallel.For(rows, RowsPerPiece(v), (r0, r1) =>
        {
            var scratch = ArrayPool<float>.Shared.Rent(v);
            try
            {
                var e = scratch.AsSpan(0, v);
                for (var r = r0; r < r1; r++)
                {
                    if (RowWeight(targets, rowWeights, ignoreIndex, r) == 0f)
                    {
                        S[so + r] = 0f;
                        continue;
                    }
                    ReadOnlySpan<float> xr = L.AsSpan(lo + r * v, v);
                    var max = Simd.Max(xr);
                    Simd.Subtract(xr, max, e);
                    Simd.Exp(e, e);
                    S[so + r] = max + MathF.Log(Simd.Sum(e));
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scratch);
            }
        });
        // One value per row: summed sequentially in row order (cheap, and deterministic).
        double total = 0;
        for (var r = 0; r < rows; r++)
        {
            var w = RowWeight(targets, rowWeights, ignoreIndex, r);
            if (w == 0f) continue;
            total += (double)w * (S[so + r] - L[lo + r * v + targets[r]]);
        }
        loss.Span[0] = (float)(total * scale);
    }

    public void CrossEntropyBackward(Tensor logits, int[] targets, float[]? rowWeights, int ignoreIndex, float scale,
        Tensor lse, Tensor gy, Tensor glogits, bool accumulate, int rows, int v)
    {
        float[] L = logits.CpuArray, S = lse.CpuArray, GL = glogits.CpuArray;
        int lo = logits.Offset, so = lse.Offset, glo = glogits.Offset;
        var g0 = gy.Span[0] * scale;
        CpuParallel.For(rows, RowsPerPiece(v), (r0, r1) =>
        {
            var scratch = accumulate ? ArrayPool<float>.Shared.Rent(v) : null;
            try
            {
                for (var r = r0; r < r1; r++)
                {
                    var o = GL.AsSpan(glo + r * v, v);
                    var c = RowWeight(targets, rowWeights, ignoreIndex, r) * g0;
                    if (c == 0f)
                    {
                        if (!accumulate) o.Clear();
                        continue;
                    }
                    var t = scratch == null ? o : scratch.AsSpan(0, v);
                    // (softmax − onehot)·c, softmax recomputed from the saved log-sum-exp.
                    Simd.Subtract(L.AsSpan(lo + r * v, v), S[so + r], t);
                    Simd.Exp(t, t);
                    Simd.Multiply(t, c, t);
                    t[targets[r]] -= c;
                    if (scratch != null) Simd.Add(o, t, o);
                }
            }
            finally
            {
                if (scratch != null) ArrayPool<float>.Shared.Return(scratch);
            }
        });
    }

    // ---------------------------------------------------------------- Embedding

    public void Embedding(Tensor weight, int[] ids, Tensor y, int d)
    {
        float[] W = weight.CpuArray, Y = y.CpuArray;
        int wo = weight.Offset, yo = y.Offset;
        CpuParallel.For(ids.Length, RowsPerPiece(d), (i0, i1) =>
        {
            for (var i = i0; i < i1; i++)
                W.AsSpan(wo + ids[i] * d, d).CopyTo(Y.AsSpan(yo + i * d, d));
        });
    }

    public void EmbeddingBackward(Tensor gy, int[] ids, Tensor gweight, int d)
    {
        float[] G = gy.CpuArray, GW = gweight.CpuArray;
        int go = gy.Offset, gwo = gweight.Offset;
        var n = ids.Length;
        // Split the columns, not the ids: a repeated id is then added to by one thread, in index order.
        CpuParallel.For(d, Math.Max(16, RowGrain / Math.Max(1, n)), (c0, c1) =>
        {
            var w = c1 - c0;
            for (var i = 0; i < n; i++)
            {
                var dst = GW.AsSpan(gwo + ids[i] * d + c0, w);
                Simd.Add(dst, G.AsSpan(go + i * d + c0, w), dst);
            }
        });
    }

    // ---------------------------------------------------------------- Dropout

    public void DropoutMask(Tensor mask, float p, ulong seed)
    {
        var M = mask.CpuArray;
        var mo = mask.Offset;
        var keep = 1f / (1f - p);
        CpuParallel.For(mask.Length, 1 << 16, (s, e) =>
        {
            for (var i = s; i < e; i++)
                M[mo + i] = DropoutUniform(seed, i) >= p ? keep : 0f;
        });
    }

    /// <summary>
    /// A uniform [0, 1) number for element <paramref name="i"/> (splitmix64 of seed and index): counter-based, so
    /// any thread or device can produce any element independently.
    /// </summary>
    internal static float DropoutUniform(ulong seed, long i)
    {
        var z = seed + (ulong)(i + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 40) * (1f / (1 << 24));
    }

    public void ApplyMask(Tensor x, Tensor mask, Tensor y, bool accumulate)
    {
        float[] X = x.CpuArray, M = mask.CpuArray, Y = y.CpuArray;
        int xo = x.Offset, mo = mask.Offset, yo = y.Offset;
        CpuParallel.For(x.Length, 1 << 16, (s, e) =>
        {
            var n = e - s;
            ReadOnlySpan<float> xs = X.AsSpan(xo + s, n), ms = M.AsSpan(mo + s, n);
            var ys = Y.AsSpan(yo + s, n);
            if (accumulate) Simd.MultiplyAdd(xs, ms, ys, ys);
            else Simd.Multiply(xs, ms, ys);
        });
    }
}
