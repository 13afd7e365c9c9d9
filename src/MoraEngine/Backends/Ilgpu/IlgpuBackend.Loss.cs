using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

public sealed partial class IlgpuBackend
{
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
}
