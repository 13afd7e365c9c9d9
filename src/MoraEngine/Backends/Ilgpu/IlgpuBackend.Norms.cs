using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

/// <summary>
/// Row kernels: <see cref="RowLanes"/> threads per row (a warp on a GPU: strided loads, shuffle reductions; one
/// thread on the CPU accelerator). Weight gradients of the norms are column sums over rows done in two fixed passes
/// (row blocks, then the blocks in order), so they are deterministic without atomics.
/// </summary>
public sealed partial class IlgpuBackend
{
    /// <summary>Arguments of the row kernels.</summary>
    internal struct RowArgs
    {
        public int Rows, D, Lanes, Flags, Extra;
        public float Eps, Scale;
    }

    private const int FlagBias = 1, FlagAccX = 2, FlagWantX = 4, FlagLog = 8, FlagAcc = 16, FlagWeights = 32;

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>? _kLayerNorm;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>? _kNormBackX;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>? _kNormPartials;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, RowArgs>? _kColumnReduce;

    private static int RowOf(int lanes, out int lane)
    {
        var t = Grid.GlobalIndex.X;
        lane = t % lanes;
        return t / lanes;
    }

    // ---------------------------------------------------------------- LayerNorm / RmsNorm forward

    /// <summary>Extra = 1: RMSNorm (no mean, no bias). Mean is written only for LayerNorm.</summary>
    private static void LayerNormKernel(ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y,
        ArrayView<float> mean, ArrayView<float> rstd, RowArgs a)
    {
        var r = RowOf(a.Lanes, out var lane);
        if (r >= a.Rows) return;
        var d = a.D;
        var at = (long)r * d;
        var rms = a.Extra == 1;
        var mu = 0f;
        if (!rms)
        {
            var s = 0f;
            for (var j = lane; j < d; j += a.Lanes) s += x[at + j];
            mu = LaneSum(s, a.Lanes) / d;
        }
        var q = 0f;
        for (var j = lane; j < d; j += a.Lanes)
        {
            var c = x[at + j] - mu;
            q += c * c;
        }
        var rs = 1f / XMath.Sqrt(LaneSum(q, a.Lanes) / d + a.Eps);
        var hasBias = (a.Flags & FlagBias) != 0;
        for (var j = lane; j < d; j += a.Lanes)
        {
            var v = (x[at + j] - mu) * rs * w[j];
            if (hasBias) v += bias[j];
            y[at + j] = v;
        }
        if (lane == 0)
        {
            if (!rms) mean[r] = mu;
            rstd[r] = rs;
        }
    }

    public void LayerNorm(Tensor x, Tensor weight, Tensor? bias, Tensor y, Tensor mean, Tensor rstd, int rows, int d, float eps)
    {
        if (rows == 0) return;
        (_kLayerNorm ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>(LayerNormKernel))(
            RowConfig(rows), V(x), V(weight), bias != null ? V(bias) : V(weight), V(y), V(mean), V(rstd),
            new RowArgs { Rows = rows, D = d, Lanes = RowLanes, Flags = bias != null ? FlagBias : 0, Eps = eps });
    }

    public void RmsNorm(Tensor x, Tensor weight, Tensor y, Tensor rstd, int rows, int d, float eps)
    {
        if (rows == 0) return;
        (_kLayerNorm ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>(LayerNormKernel))(
            RowConfig(rows), V(x), V(weight), V(weight), V(y), V(rstd), V(rstd),
            new RowArgs { Rows = rows, D = d, Lanes = RowLanes, Eps = eps, Extra = 1 });
    }

    // ---------------------------------------------------------------- backward: gx per row

    /// <summary>
    /// gx = rstd·(dn − mean(dn) − x̂·mean(dn·x̂)) with dn = gy·w (LayerNorm), or rstd·(dn − x̂·mean(dn·x̂)) (RMSNorm,
    /// Extra = 1; mean is ignored).
    /// </summary>
    private static void NormBackwardXKernel(ArrayView<float> x, ArrayView<float> w, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> gy, ArrayView<float> gx, RowArgs a)
    {
        var r = RowOf(a.Lanes, out var lane);
        if (r >= a.Rows) return;
        var d = a.D;
        var at = (long)r * d;
        var rms = a.Extra == 1;
        var mu = rms ? 0f : mean[r];
        var rs = rstd[r];
        float sdn = 0f, sdx = 0f;
        for (var j = lane; j < d; j += a.Lanes)
        {
            var dn = gy[at + j] * w[j];
            sdn += dn;
            sdx += dn * ((x[at + j] - mu) * rs);
        }
        var am = rms ? 0f : LaneSum(sdn, a.Lanes) / d;
        var cm = LaneSum(sdx, a.Lanes) / d;
        var acc = (a.Flags & FlagAccX) != 0;
        for (var j = lane; j < d; j += a.Lanes)
        {
            var xh = (x[at + j] - mu) * rs;
            var v = (gy[at + j] * w[j] - xh * cm - am) * rs;
            gx[at + j] = acc ? gx[at + j] + v : v;
        }
    }

    /// <summary>Rows per block of the two-pass weight-gradient sums.</summary>
    private const int NormBlockRows = 64;

    /// <summary>
    /// Pass 1 of the weight/bias gradients: thread (block, column) sums gy·x̂ (into pw) and gy (into pb, LayerNorm
    /// with bias) over its block of rows, in row order. Extra = 1: RMSNorm.
    /// </summary>
    private static void NormPartialsKernel(Index1D index, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> gy, ArrayView<float> part, RowArgs a)
    {
        int idx = index;
        var d = a.D;
        int blk = idx / d, c = idx - blk * d;
        var r0 = blk * NormBlockRows;
        var r1 = XMath.Min(a.Rows, r0 + NormBlockRows);
        var rms = a.Extra == 1;
        float sw = 0f, sb = 0f;
        for (var r = r0; r < r1; r++)
        {
            var at = (long)r * d + c;
            var g = gy[at];
            var xh = (x[at] - (rms ? 0f : mean[r])) * rstd[r];
            sw += g * xh;
            sb += g;
        }
        var blocks = (a.Rows + NormBlockRows - 1) / NormBlockRows;
        part[(long)blk * d + c] = sw;
        if ((a.Flags & FlagBias) != 0) part[((long)blocks + blk) * d + c] = sb;
    }

    /// <summary>Pass 2: dst[c] (+)= Σ_blocks part[block·d + c] in block order.</summary>
    private static void ColumnReduceKernel(Index1D c, ArrayView<float> part, ArrayView<float> dst, RowArgs a)
    {
        var s = 0f;
        for (var b = 0; b < a.Rows; b++) s += part[(long)b * a.D + c];
        dst[c] = (a.Flags & FlagAcc) != 0 ? dst[c] + s : s;
    }

    private void NormWeightGrads(ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> gy,
        Tensor? gweight, bool accW, Tensor? gbias, bool accB, int rows, int d, bool rms)
    {
        if (gweight == null && gbias == null) return;
        var blocks = (rows + NormBlockRows - 1) / NormBlockRows;
        var part = Scratch("norm-partials", 2L * blocks * d);
        (_kNormPartials ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>(NormPartialsKernel))(
            blocks * d, x, mean, rstd, gy, part, new RowArgs { Rows = rows, D = d, Flags = gbias != null ? FlagBias : 0, Extra = rms ? 1 : 0 });
        _kColumnReduce ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, RowArgs>(ColumnReduceKernel);
        if (gweight != null) _kColumnReduce(d, part, V(gweight), new RowArgs { Rows = blocks, D = d, Flags = accW ? FlagAcc : 0 });
        if (gbias != null) _kColumnReduce(d, part.SubView((long)blocks * d, (long)blocks * d), V(gbias), new RowArgs { Rows = blocks, D = d, Flags = accB ? FlagAcc : 0 });
    }

    public void LayerNormBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor gy,
        Tensor? gx, bool accX, Tensor? gweight, bool accWeight, Tensor? gbias, bool accBias, int rows, int d)
    {
        if (rows == 0)
        {
            if (gweight != null && !accWeight) Fill(gweight, 0f);
            if (gbias != null && !accBias) Fill(gbias, 0f);
            return;
        }
        if (gx != null)
            (_kNormBackX ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>(NormBackwardXKernel))(
                RowConfig(rows), V(x), V(weight), V(mean), V(rstd), V(gy), V(gx), new RowArgs { Rows = rows, D = d, Lanes = RowLanes, Flags = accX ? FlagAccX : 0 });
        NormWeightGrads(V(x), V(mean), V(rstd), V(gy), gweight, accWeight, gbias, accBias, rows, d, rms: false);
    }

    public void RmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor gy,
        Tensor? gx, bool accX, Tensor? gweight, bool accWeight, int rows, int d)
    {
        if (rows == 0)
        {
            if (gweight != null && !accWeight) Fill(gweight, 0f);
            return;
        }
        if (gx != null)
            (_kNormBackX ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>(NormBackwardXKernel))(
                RowConfig(rows), V(x), V(weight), V(rstd), V(rstd), V(gy), V(gx), new RowArgs { Rows = rows, D = d, Lanes = RowLanes, Flags = accX ? FlagAccX : 0, Extra = 1 });
        NormWeightGrads(V(x), V(rstd), V(rstd), V(gy), gweight, accWeight, null, false, rows, d, rms: true);
    }
}
