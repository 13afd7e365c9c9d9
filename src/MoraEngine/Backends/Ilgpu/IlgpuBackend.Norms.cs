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
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, RowArgs>? _kSoftmax;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>? _kSoftmaxBack;

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

    // ---------------------------------------------------------------- Softmax

    /// <summary>
    /// Softmax or log-softmax per row. Extra = 1: causal attention rows — row r of each T×T block (T = D) is
    /// normalised over its first (r mod T) + 1 entries and the rest set to 0.
    /// </summary>
    private static void SoftmaxKernel(ArrayView<float> x, ArrayView<float> y, RowArgs a)
    {
        var r = RowOf(a.Lanes, out var lane);
        if (r >= a.Rows) return;
        var d = a.D;
        var at = (long)r * d;
        var n = a.Extra == 1 ? r % d + 1 : d;
        var max = float.NegativeInfinity;
        for (var j = lane; j < n; j += a.Lanes) max = XMath.Max(max, x[at + j]);
        max = LaneMax(max, a.Lanes);
        var s = 0f;
        for (var j = lane; j < n; j += a.Lanes) s += XMath.Exp(x[at + j] - max);
        s = LaneSum(s, a.Lanes);
        if ((a.Flags & FlagLog) != 0)
        {
            var shift = max + XMath.Log(s);
            for (var j = lane; j < n; j += a.Lanes) y[at + j] = x[at + j] - shift;
        }
        else
        {
            var inv = 1f / s;
            for (var j = lane; j < n; j += a.Lanes) y[at + j] = XMath.Exp(x[at + j] - max) * inv;
        }
        for (var j = n + lane; j < d; j += a.Lanes) y[at + j] = 0f;
    }

    /// <summary>gx (+)= y·(gy − Σ gy·y), or gy − exp(y)·Σ gy for log-softmax; Extra = 1: causal rows (zeros above).</summary>
    private static void SoftmaxBackwardKernel(ArrayView<float> y, ArrayView<float> gy, ArrayView<float> gx, RowArgs a)
    {
        var r = RowOf(a.Lanes, out var lane);
        if (r >= a.Rows) return;
        var d = a.D;
        var at = (long)r * d;
        var n = a.Extra == 1 ? r % d + 1 : d;
        var log = (a.Flags & FlagLog) != 0;
        var acc = (a.Flags & FlagAcc) != 0;
        var s = 0f;
        for (var j = lane; j < n; j += a.Lanes) s += log ? gy[at + j] : gy[at + j] * y[at + j];
        s = LaneSum(s, a.Lanes);
        for (var j = lane; j < n; j += a.Lanes)
        {
            var v = log ? gy[at + j] - XMath.Exp(y[at + j]) * s : (gy[at + j] - s) * y[at + j];
            gx[at + j] = acc ? gx[at + j] + v : v;
        }
        for (var j = n + lane; j < d; j += a.Lanes)
            if (!acc) gx[at + j] = 0f;
    }

    private void LaunchSoftmax(ArrayView<float> x, ArrayView<float> y, int rows, int d, bool log, bool causal)
    {
        if (rows == 0) return;
        (_kSoftmax ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, RowArgs>(SoftmaxKernel))(
            RowConfig(rows), x, y, new RowArgs { Rows = rows, D = d, Lanes = RowLanes, Flags = log ? FlagLog : 0, Extra = causal ? 1 : 0 });
    }

    private void LaunchSoftmaxBackward(ArrayView<float> y, ArrayView<float> gy, ArrayView<float> gx, int rows, int d, bool log, bool accumulate, bool causal)
    {
        if (rows == 0) return;
        (_kSoftmaxBack ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>(SoftmaxBackwardKernel))(
            RowConfig(rows), y, gy, gx, new RowArgs { Rows = rows, D = d, Lanes = RowLanes, Flags = (log ? FlagLog : 0) | (accumulate ? FlagAcc : 0), Extra = causal ? 1 : 0 });
    }

    public void Softmax(Tensor x, Tensor y, int rows, int d, bool log) => LaunchSoftmax(V(x), V(y), rows, d, log, causal: false);

    public void SoftmaxBackward(Tensor y, Tensor gy, Tensor gx, int rows, int d, bool log, bool accumulate) =>
        LaunchSoftmaxBackward(V(y), V(gy), V(gx), rows, d, log, accumulate, causal: false);

    // ---------------------------------------------------------------- CrossEntropy

    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<double>, RowArgs>? _kCrossEntropy;
    private Action<Index1D, ArrayView<double>, ArrayView<double>, int, int>? _kSumRowsPartial;
    private Action<Index1D, ArrayView<double>, ArrayView<float>, float>? _kStoreLoss;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>? _kCrossEntropyBack;

    /// <summary>Row weight: the given weight, or 0 for the ignore index and 1 otherwise.</summary>
    private static float CeWeight(ArrayView<int> targets, ArrayView<float> weights, RowArgs a, int r) =>
        (a.Flags & FlagWeights) != 0 ? weights[r] : targets[r] == a.Extra ? 0f : 1f;

    /// <summary>Per row: lse = log Σ exp (stabilised) and the row's weighted loss w·(lse − logit[target]) in double.</summary>
    private static void CrossEntropyKernel(ArrayView<float> logits, ArrayView<int> targets, ArrayView<float> weights,
        ArrayView<float> lse, ArrayView<double> rowLoss, RowArgs a)
    {
        var r = RowOf(a.Lanes, out var lane);
        if (r >= a.Rows) return;
        var w = CeWeight(targets, weights, a, r);
        if (w == 0f)
        {
            if (lane == 0)
            {
                lse[r] = 0f;
                rowLoss[r] = 0.0;
            }
            return;
        }
        var v = a.D;
        var at = (long)r * v;
        var max = float.NegativeInfinity;
        for (var j = lane; j < v; j += a.Lanes) max = XMath.Max(max, logits[at + j]);
        max = LaneMax(max, a.Lanes);
        var s = 0f;
        for (var j = lane; j < v; j += a.Lanes) s += XMath.Exp(logits[at + j] - max);
        s = LaneSum(s, a.Lanes);
        if (lane == 0)
        {
            var l = max + XMath.Log(s);
            lse[r] = l;
            rowLoss[r] = (double)w * (l - logits[at + targets[r]]);
        }
    }

    /// <summary>dst[p] = Σ src[p + parts·q] over q (interleaved, fixed order).</summary>
    private static void SumRowsPartialKernel(Index1D p, ArrayView<double> src, ArrayView<double> dst, int n, int parts)
    {
        var s = 0.0;
        for (var i = p; i < n; i += parts) s += src[i];
        dst[p] = s;
    }

    private static void StoreLossKernel(Index1D i, ArrayView<double> total, ArrayView<float> loss, float scale) =>
        loss[0] = (float)(total[0] * scale);

    public void CrossEntropy(Tensor logits, int[] targets, float[]? rowWeights, int ignoreIndex, float scale,
        Tensor lse, Tensor loss, int rows, int v)
    {
        if (rows == 0)
        {
            Fill(loss, 0f);
            return;
        }
        var t = UploadInts(targets.AsSpan(0, rows));
        var w = rowWeights != null ? UploadFloats(rowWeights.AsSpan(0, rows)) : V(lse);
        var rowLoss = ScratchD("ce-rows", rows);
        var a = new RowArgs { Rows = rows, D = v, Lanes = RowLanes, Flags = rowWeights != null ? FlagWeights : 0, Extra = ignoreIndex };
        (_kCrossEntropy ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<double>, RowArgs>(CrossEntropyKernel))(
            RowConfig(rows), V(logits), t, w, V(lse), rowLoss, a);
        // Σ over rows in a fixed shape: 256 interleaved partials, then 64 → 1 in order.
        const int parts = 256;
        var partial = ScratchD("ce-partial", parts);
        var mid = ScratchD("ce-mid", 4);
        var total = ScratchD("ce-total", 1);
        (_kSumRowsPartial ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, int, int>(SumRowsPartialKernel))(
            parts, rowLoss, partial, rows, parts);
        _kSumDoubles ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, int, int>(SumDoublesKernel);
        _kSumDoubles(4, partial, mid, parts / 4, parts);
        _kSumDoubles(1, mid, total, 4, 4);
        (_kStoreLoss ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<float>, float>(StoreLossKernel))(1, total, V(loss), scale);
    }

    /// <summary>glogits (+)= (exp(logit − lse) − onehot)·w·scale·gy[0] per row.</summary>
    private static void CrossEntropyBackwardKernel(ArrayView<float> logits, ArrayView<int> targets, ArrayView<float> weights,
        ArrayView<float> lse, ArrayView<float> gy, ArrayView<float> glogits, RowArgs a)
    {
        var r = RowOf(a.Lanes, out var lane);
        if (r >= a.Rows) return;
        var v = a.D;
        var at = (long)r * v;
        var acc = (a.Flags & FlagAcc) != 0;
        var c = CeWeight(targets, weights, a, r) * (gy[0] * a.Scale);
        if (c == 0f)
        {
            if (!acc)
                for (var j = lane; j < v; j += a.Lanes) glogits[at + j] = 0f;
            return;
        }
        var l = lse[r];
        var target = targets[r];
        for (var j = lane; j < v; j += a.Lanes)
        {
            var g = XMath.Exp(logits[at + j] - l) * c;
            if (j == target) g -= c;
            glogits[at + j] = acc ? glogits[at + j] + g : g;
        }
    }

    public void CrossEntropyBackward(Tensor logits, int[] targets, float[]? rowWeights, int ignoreIndex, float scale,
        Tensor lse, Tensor gy, Tensor glogits, bool accumulate, int rows, int v)
    {
        if (rows == 0) return;
        var t = UploadInts(targets.AsSpan(0, rows));
        var w = rowWeights != null ? UploadFloats(rowWeights.AsSpan(0, rows)) : V(lse);
        var a = new RowArgs
        {
            Rows = rows, D = v, Lanes = RowLanes, Extra = ignoreIndex, Scale = scale,
            Flags = (rowWeights != null ? FlagWeights : 0) | (accumulate ? FlagAcc : 0),
        };
        (_kCrossEntropyBack ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>(CrossEntropyBackwardKernel))(
            RowConfig(rows), V(logits), t, w, V(lse), V(gy), V(glogits), a);
    }

    // ---------------------------------------------------------------- Embedding

    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>? _kEmbedding;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>? _kEmbeddingBack;

    private static void EmbeddingKernel(Index1D index, ArrayView<float> w, ArrayView<int> ids, ArrayView<float> y, int d)
    {
        int idx = index;
        var i = idx / d;
        var c = idx - i * d;
        y[idx] = w[(long)ids[i] * d + c];
    }

    public void Embedding(Tensor weight, int[] ids, Tensor y, int d)
    {
        if (ids.Length == 0 || d == 0) return;
        (_kEmbedding ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(EmbeddingKernel))(
            ids.Length * d, V(weight), UploadInts(ids), V(y), d);
    }

    /// <summary>
    /// The scatter-add as a gather: the host sorts positions by id (stably, so each id keeps index order) into
    /// table = [ids of the used rows (u), row starts (u + 1), positions]; thread (used row, column) adds its
    /// positions' gradients in index order — the same order as the CPU backend, no atomics.
    /// </summary>
    private static void EmbeddingBackwardKernel(Index1D index, ArrayView<float> gy, ArrayView<int> table, ArrayView<float> gw, int d)
    {
        int idx = index;
        var used = table[0];
        var u = idx / d;
        var c = idx - u * d;
        var row = table[1 + u];
        int start = table[1 + used + u], end = table[2 + used + u];
        var at = (long)row * d + c;
        var s = gw[at];
        for (var k = start; k < end; k++) s += gy[(long)table[2 + 2 * used + k] * d + c];
        gw[at] = s;
    }

    public void EmbeddingBackward(Tensor gy, int[] ids, Tensor gweight, int d)
    {
        if (ids.Length == 0 || d == 0) return;
        // Counting sort of positions by id.
        var vocab = gweight.Length / d;
        var count = new int[vocab + 1];
        foreach (var id in ids) count[id + 1]++;
        var used = 0;
        for (var v = 0; v < vocab; v++)
            if (count[v + 1] > 0) used++;
        var table = new int[2 + 2 * used + ids.Length];
        table[0] = used;
        var next = new int[vocab];
        int u = 0, at = 0;
        for (var v = 0; v < vocab; v++)
        {
            if (count[v + 1] == 0) continue;
            table[1 + u] = v;
            table[1 + used + u] = at;
            next[v] = at;
            at += count[v + 1];
            u++;
        }
        table[1 + used + used] = at;
        for (var i = 0; i < ids.Length; i++) table[2 + 2 * used + next[ids[i]]++] = i;
        (_kEmbeddingBack ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(EmbeddingBackwardKernel))(
            used * d, V(gy), UploadInts(table), V(gweight), d);
    }

    // ---------------------------------------------------------------- Dropout

    private Action<Index1D, ArrayView<float>, float, ulong>? _kDropoutMask;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? _kApplyMask;

    /// <summary>The CPU backend's counter-based uniform (splitmix64 of seed and index), bit for bit.</summary>
    private static void DropoutMaskKernel(Index1D i, ArrayView<float> mask, float p, ulong seed)
    {
        var z = seed + (ulong)((long)(int)i + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        var u = (int)(z >> 40) * (1f / (1 << 24));
        mask[i] = u >= p ? 1f / (1f - p) : 0f;
    }

    public void DropoutMask(Tensor mask, float p, ulong seed)
    {
        if (mask.Length == 0) return;
        (_kDropoutMask ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float, ulong>(DropoutMaskKernel))(mask.Length, V(mask), p, seed);
    }

    private static void ApplyMaskKernel(Index1D i, ArrayView<float> x, ArrayView<float> mask, ArrayView<float> y, int accumulate)
    {
        var v = x[i] * mask[i];
        y[i] = accumulate != 0 ? y[i] + v : v;
    }

    public void ApplyMask(Tensor x, Tensor mask, Tensor y, bool accumulate)
    {
        if (x.Length == 0) return;
        (_kApplyMask ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ApplyMaskKernel))(
            x.Length, V(x), V(mask), V(y), accumulate ? 1 : 0);
    }
}
