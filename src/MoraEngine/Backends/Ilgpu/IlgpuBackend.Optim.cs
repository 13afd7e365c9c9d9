using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

public sealed partial class IlgpuBackend
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamStep>? _kAdamW;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, Vec4>? _kSgd;

    /// <summary>The CPU backend's fused AdamW update, element for element.</summary>
    private static void AdamWKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamStep a)
    {
        var gi = g[i];
        var mi = a.Beta1 * m[i] + a.OneMinusBeta1 * gi;
        var vi = a.Beta2 * v[i] + a.OneMinusBeta2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * a.Decay - a.StepSize * mi / (XMath.Sqrt(vi) * a.InvBc2Sqrt + a.Eps);
    }

    public void AdamW(Tensor p, Tensor g, Tensor m, Tensor v, AdamStep step)
    {
        if (p.Length == 0) return;
        (_kAdamW ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamStep>(AdamWKernel))(
            p.Length, V(p), V(g), V(m), V(v), step);
    }

    /// <summary>I0: momentum buffer present; F0: lr, F1: momentum, F2: weight decay.</summary>
    private static void SgdKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> buf, Vec4 a)
    {
        var wd = a.F2;
        var d = g[i] + wd * p[i];
        if (a.I0 != 0)
        {
            var b = a.F1 * buf[i] + d;
            buf[i] = b;
            p[i] -= a.F0 * b;
        }
        else
        {
            p[i] -= a.F0 * d;
        }
    }

    public void Sgd(Tensor p, Tensor g, Tensor? buf, float lr, float momentum, float weightDecay)
    {
        if (p.Length == 0) return;
        (_kSgd ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, Vec4>(SgdKernel))(
            p.Length, V(p), V(g), buf != null ? V(buf) : V(g),
            new Vec4 { I0 = buf != null ? 1 : 0, F2 = weightDecay, F0 = lr, F1 = momentum });
    }
}

/// <summary>
/// The parameters of one optimizer laid out for single-kernel updates: parameters in one arena (as
/// <see cref="Nn.Module.To"/> places them), gradients, first and second moments in three arenas of their own with
/// the same layout, and a device table of segments (parameter start, state start, element offset). Built by
/// <see cref="IlgpuBackend.TryCreateFusedGroup"/>; null when the parameters do not share one arena.
/// </summary>
internal sealed class FusedParameterGroup : IFusedParameterGroup
{
    internal FusedParameterGroup(IlgpuBackend backend, ArrayView<float> parameters, Tensor[] grads, Tensor[] m, Tensor[] v,
        ArrayView<float> gradArena, ArrayView<float> mArena, ArrayView<float> vArena, ArrayView<int> table, int count, int total)
    {
        Backend = backend;
        ParameterArena = parameters;
        Grads = grads;
        M = m;
        V = v;
        GradArena = gradArena;
        MArena = mArena;
        VArena = vArena;
        Table = table;
        Count = count;
        Total = total;
    }

    public IlgpuBackend Backend { get; }
    public ArrayView<float> ParameterArena { get; }
    public Tensor[] Grads { get; }
    public Tensor[] M { get; }
    public Tensor[] V { get; }
    public ArrayView<float> GradArena { get; }
    public ArrayView<float> MArena { get; }
    public ArrayView<float> VArena { get; }

    /// <summary>[count + 1 element starts | count parameter starts | count state starts].</summary>
    public ArrayView<int> Table { get; }

    public int Count { get; }

    /// <summary>Elements over all parameters.</summary>
    public int Total { get; }

    public double SumSquares(float[] valid) => Backend.FusedSumSquares(this, valid);

    public void Scale(float scale, float[] valid) => Backend.FusedScale(this, scale, valid);

    public void AdamW(AdamStep common, float[] perParam) => Backend.FusedAdamW(this, common, perParam);
}

public sealed partial class IlgpuBackend
{
    /// <summary>
    /// Lays out the optimizer state of <paramref name="parameters"/> for fused updates: gives every parameter a
    /// persistent gradient buffer (its <see cref="Tensor.Grad"/>, marked stale) in one arena and allocates the moment
    /// arenas. Null when the parameters are not all on this device in one arena (then the per-parameter kernels run).
    /// </summary>
    IFusedParameterGroup? IBackend.TryCreateFusedGroup(IReadOnlyList<Tensor> parameters) => TryCreateFusedGroup(parameters);

    /// <inheritdoc cref="IBackend.TryCreateFusedGroup"/>
    internal static FusedParameterGroup? TryCreateFusedGroup(IReadOnlyList<Tensor> parameters)
    {
        if (parameters.Count == 0 || parameters[0].Device.Backend is not IlgpuBackend be) return null;
        var first = parameters[0].Storage as IlgpuStorage;
        if (first == null) return null;
        foreach (var p in parameters)
            if (p.Storage is not IlgpuStorage s || !ReferenceEquals(s.Buffer, first.Buffer) || p.Offset != 0 || p.IsTransposed)
                return null;
        var device = parameters[0].Device;
        var lengths = parameters.Select(p => p.Length).ToArray();
        var gs = be.AllocateArena(device, lengths, out var gArena);
        var ms = be.AllocateArena(device, lengths, out var mArena);
        var vs = be.AllocateArena(device, lengths, out var vArena);
        var n = parameters.Count;
        var grads = new Tensor[n];
        var m = new Tensor[n];
        var v = new Tensor[n];
        var table = new int[3 * n + 1];
        long total = 0;
        for (var i = 0; i < n; i++)
        {
            var p = parameters[i];
            grads[i] = new Tensor(gs[i], 0, (int[])p.ShapeArray.Clone(), false, null);
            m[i] = new Tensor(ms[i], 0, (int[])p.ShapeArray.Clone(), false, null);
            v[i] = new Tensor(vs[i], 0, (int[])p.ShapeArray.Clone(), false, null);
            table[i] = (int)total;
            table[n + 1 + i] = (int)((IlgpuStorage)p.Storage).Start;
            table[2 * n + 1 + i] = (int)gs[i].Start;
            total += p.Length;
            p.Grad = grads[i];
            p.GradValid = false;
        }
        table[n] = (int)total;
        if (total > int.MaxValue || gArena.Length > int.MaxValue || first.Buffer.Length > int.MaxValue) return null;
        var tableBuffer = be._acc.Allocate1D<int>(table.Length);
        ToDevice(tableBuffer.View, be.Stream, table);
        be._fusedTables.Add(tableBuffer);
        gArena.MemSetToZero(be.Stream);
        mArena.MemSetToZero(be.Stream);
        vArena.MemSetToZero(be.Stream);
        return new FusedParameterGroup(be, first.Buffer.View, grads, m, v, gArena.View, mArena.View, vArena.View, tableBuffer.View, n, (int)total);
    }

    private readonly List<MemoryBuffer1D<int, Stride1D.Dense>> _fusedTables = new();

    /// <summary>The segment (parameter index) holding element e: binary search over the element starts.</summary>
    private static int SegmentOf(ArrayView<int> table, int count, int e)
    {
        int lo = 0, hi = count - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) >> 1;
            if (table[mid] <= e) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    /// <summary>
    /// AdamW over every parameter of the group in one launch. perParam holds, for each parameter, 4 floats:
    /// step size lr/bc1, decay 1 − lr·wd, 1/√bc2, and 1 when its gradient is valid (0 skips it); β1, β2, their
    /// complements and eps come from <paramref name="a"/>.
    /// </summary>
    private static void FusedAdamWKernel(Index1D index, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v,
        ArrayView<int> table, ArrayView<float> perParam, AdamStep a, int count)
    {
        int e = index;
        var s = SegmentOf(table, count, e);
        if (perParam[4 * s + 3] == 0f) return;
        var local = e - table[s];
        var pi = table[count + 1 + s] + local;
        var si = table[2 * count + 1 + s] + local;
        var gi = g[si];
        var mi = a.Beta1 * m[si] + a.OneMinusBeta1 * gi;
        var vi = a.Beta2 * v[si] + a.OneMinusBeta2 * gi * gi;
        m[si] = mi;
        v[si] = vi;
        p[pi] = p[pi] * perParam[4 * s + 1] - perParam[4 * s] * mi / (XMath.Sqrt(vi) * perParam[4 * s + 2] + a.Eps);
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, AdamStep, int>? _kFusedAdamW;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<double>, Vec4>? _kFusedSumSq;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, Vec4>? _kFusedScale;

    /// <param name="group">The parameters, gradients and moments.</param>
    /// <param name="common">β1, β2, their complements and eps (its per-parameter fields are unused).</param>
    /// <param name="perParam">4 floats per parameter, see <see cref="FusedAdamWKernel"/>.</param>
    internal void FusedAdamW(FusedParameterGroup group, AdamStep common, float[] perParam)
    {
        if (group.Total == 0) return;
        var pp = UploadFloats(perParam);
        (_kFusedAdamW ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, AdamStep, int>(FusedAdamWKernel))(
            group.Total, group.ParameterArena, group.GradArena, group.MArena, group.VArena, group.Table, pp, common, group.Count);
    }

    /// <summary>partial[q] = Σ g² over elements q + P·j of valid segments (fixed interleaved partition, double).</summary>
    private static void FusedSumSquaresKernel(Index1D index, ArrayView<float> g, ArrayView<int> table, ArrayView<float> valid, ArrayView<double> partial, Vec4 a)
    {
        int q = index;
        var count = a.I0;
        var s = 0.0;
        for (var e = q; e < a.I1; e += a.I2)
        {
            var seg = SegmentOf(table, count, e);
            if (valid[seg] == 0f) continue;
            double x = g[table[2 * count + 1 + seg] + e - table[seg]];
            s += x * x;
        }
        partial[q] = s;
    }

    private static void FusedScaleKernel(Index1D index, ArrayView<float> g, ArrayView<int> table, ArrayView<float> valid, Vec4 a)
    {
        int e = index;
        var count = a.I0;
        var seg = SegmentOf(table, count, e);
        if (valid[seg] == 0f) return;
        var at = table[2 * count + 1 + seg] + e - table[seg];
        g[at] = g[at] * a.F0;
    }

    /// <summary>Σ g² over the valid gradients of the group (one deterministic device reduction, one read-back).</summary>
    internal double FusedSumSquares(FusedParameterGroup group, float[] valid)
    {
        if (group.Total == 0) return 0;
        var vv = UploadFloats(valid);
        var partial = ScratchD("sumsq-partial", SumPartials);
        var mid = ScratchD("sumsq-mid", 64);
        var result = ScratchD("sumsq-result", 1);
        (_kFusedSumSq ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<double>, Vec4>(FusedSumSquaresKernel))(
            SumPartials, group.GradArena, group.Table, vv, partial, new Vec4 { I0 = group.Count, I1 = group.Total, I2 = SumPartials });
        _kSumDoubles ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, int, int>(SumDoublesKernel);
        _kSumDoubles(64, partial, mid, SumPartials / 64, SumPartials);
        _kSumDoubles(1, mid, result, 64, 64);
        var host = new double[1];
        ToHost(result, Stream, host.AsSpan(0, 1));
        Stream.Synchronize();
        return host[0];
    }

    /// <summary>Multiplies every valid gradient of the group by <paramref name="scale"/> in one launch.</summary>
    internal void FusedScale(FusedParameterGroup group, float scale, float[] valid)
    {
        if (group.Total == 0) return;
        var vv = UploadFloats(valid);
        (_kFusedScale ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, Vec4>(FusedScaleKernel))(
            group.Total, group.GradArena, group.Table, vv, new Vec4 { I0 = group.Count, F0 = scale });
    }
}
