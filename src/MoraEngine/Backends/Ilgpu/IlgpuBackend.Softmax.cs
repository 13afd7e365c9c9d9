using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

public sealed partial class IlgpuBackend
{
    // ---------------------------------------------------------------- Softmax

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, RowArgs>? _kSoftmax;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowArgs>? _kSoftmaxBack;

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
}
