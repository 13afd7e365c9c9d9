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
}
