using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using MoraEngine.Adapters;

namespace MoraEngine.Backends.Ilgpu;

/// <summary>
/// MoRA's compression and decompression, one thread per output element, every scatter written as a gather (each
/// input position sums the compressed slots it feeds, in the CPU backend's order), so nothing needs atomics.
/// Interleave groups are computed from the closed form (the first in − r̂·⌊in/r̂⌋ groups hold one item more);
/// the RoPE tables are uploaded once per operator. An operator with generated kernels for its shape
/// (<see cref="MoraOperator.DeviceKernels"/>) runs those instead, compiled once per accelerator, whenever the compressed
/// width is the one they were written for; the generic kernels are the reference and the fallback.
/// </summary>
public sealed partial class IlgpuBackend
{
    internal struct MoraArgs
    {
        public int Type, In, Out, R, Chunks, Full, Tail, Accumulate;
    }

    private readonly ConditionalWeakTable<MoraOperator, MemoryBuffer1D<float, Stride1D.Dense>> _moraTables = new();

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MoraArgs>? _kMoraCompress;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MoraArgs>? _kMoraCompressBack;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, MoraArgs>? _kMoraDecompressAdd;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, MoraArgs>? _kMoraDecompressBack;

    /// <summary>The four generated kernels of one shape, loaded on this accelerator.</summary>
    private sealed record LoadedMoraKernels(
        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> Compress,
        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> CompressBackward,
        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> DecompressAdd,
        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> DecompressBackward);

    private readonly Dictionary<IMoraDeviceKernels, LoadedMoraKernels> _moraSpecialised = new(ReferenceEqualityComparer.Instance);

    /// <summary>Whether specialised device kernels run on this backend (false: generic only; for parity tests and benchmarks).</summary>
    public bool UseSpecialisedMoraKernels { get; set; } = true;

    /// <summary>The operator's generated kernels, loaded here, when they fit a compressed row of <paramref name="chunks"/> chunks; else null.</summary>
    private LoadedMoraKernels? Specialised(MoraOperator op, int chunks)
    {
        if (!UseSpecialisedMoraKernels || op.DeviceKernels is not { } dk || dk.Chunks != chunks) return null;
        lock (_moraSpecialised)
        {
            if (_moraSpecialised.TryGetValue(dk, out var loaded)) return loaded;
            loaded = new LoadedMoraKernels(Load(dk.Compress), Load(dk.CompressBackward), Load(dk.DecompressAdd), Load(dk.DecompressBackward));
            _moraSpecialised.Add(dk, loaded);
            return loaded;
        }

        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> Load(MoraDeviceKernel kernel)
        {
            // ILGPU compiles a static method from its IL; a delegate with a target cannot be a kernel.
            if (kernel.Target != null || !kernel.Method.IsStatic)
                throw new InvalidOperationException($"MoRA device kernel {kernel.Method.Name} of {op} must be a static method.");
            var action = kernel.Method.CreateDelegate<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>>();
            return _acc.LoadAutoGroupedStreamKernel(action);
        }
    }

    private static MoraArgs Args(MoraOperator op, int chunks, bool accumulate) => new()
    {
        Type = (int)op.Type, In = op.In, Out = op.Out, R = op.RHat, Chunks = chunks,
        Full = op.FullChunks, Tail = op.Tail, Accumulate = accumulate ? 1 : 0,
    };

    /// <summary>RoPE cos table followed by the sin table ([G, r̂/2] each), on the device; a dummy for other types.</summary>
    private ArrayView<float> MoraTables(MoraOperator op)
    {
        lock (_moraTables)
        {
            if (!_moraTables.TryGetValue(op, out var buffer))
            {
                var cos = op.RopeCosArray;
                var sin = op.RopeSinArray;
                var host = new float[Math.Max(1, cos.Length + sin.Length)];
                cos.CopyTo(host, 0);
                sin.CopyTo(host, cos.Length);
                buffer = _acc.Allocate1D<float>(host.Length);
                ToDevice(buffer.View, Stream, host);
                _moraTables.Add(op, buffer);
            }
            return buffer.View;
        }
    }

    /// <summary>Group i of n items split into r interleave groups: its first item.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int GroupStart(int i, int n, int r)
    {
        var nr = n / r;
        var big = n - r * nr;
        return i < big ? i * (nr + 1) : big * (nr + 1) + (i - big) * nr;
    }

    /// <summary>The interleave group that item k of n belongs to.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int GroupOf(int k, int n, int r)
    {
        var nr = n / r;
        var big = n - r * nr;
        var split = big * (nr + 1);
        return k < split ? k / (nr + 1) : big + (k - split) / nr;
    }

    /// <summary>Element j of RoPE chunk g rotated by sign·angle: chunk values come from x (wrap-padded) or from the gradient rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RotateAt(ArrayView<float> src, long at, int g, int j, int r, int wrapN, ArrayView<float> tables, int tableHalf, float sign)
    {
        var h = r / 2;
        var jj = j < h ? j : j - h;
        var cv = tables[g * h + jj];
        var sv = tables[tableHalf + g * h + jj] * sign;
        // wrapN > 0: index chunk positions modulo the input width (compression); 0: plain chunk layout.
        var i0 = g * r + j;
        var i1 = j < h ? g * r + j + h : g * r + j - h;
        if (wrapN > 0)
        {
            i0 %= wrapN;
            i1 %= wrapN;
        }
        var c = src[at + i0];
        var o = src[at + i1];
        return j < h ? c * cv - o * sv : c * cv + o * sv;
    }

    private static void MoraCompressKernel(Index1D index, ArrayView<float> x, ArrayView<float> xc, ArrayView<float> tables, MoraArgs a)
    {
        int idx = index;
        var w = a.Chunks * a.R;
        var row = idx / w;
        var q = idx - row * w;
        var at = (long)row * a.In;
        float v;
        if (a.Type == (int)MoraType.Truncation)
        {
            v = x[at + q];
        }
        else if (a.Type == (int)MoraType.Sharing || a.Type == (int)MoraType.SharingInterleave)
        {
            // Σ over the G = ⌈in/r̂⌉ chunks of the wrap-padded input, in chunk order.
            var chunks = a.Full + (a.Tail > 0 ? 1 : 0);
            v = 0f;
            for (var c = 0; c < chunks; c++) v += x[at + (c * a.R + q) % a.In];
        }
        else if (a.Type == (int)MoraType.Interleave || a.Type == (int)MoraType.InterleaveTile)
        {
            int s = GroupStart(q, a.In, a.R), e = GroupStart(q + 1, a.In, a.R);
            v = 0f;
            for (var k = s; k < e; k++) v += x[at + k];
        }
        else
        {
            var g = q / a.R;
            v = RotateAt(x, at, g, q - g * a.R, a.R, a.In, tables, (int)(tables.Length / 2), 1f);
        }
        xc[idx] = v;
    }

    public void MoraCompress(MoraOperator op, Tensor x, Tensor xc, int rows, int chunks)
    {
        var n = (long)rows * chunks * op.RHat;
        if (n == 0) return;
        if (Specialised(op, chunks) is { } k)
        {
            k.Compress((int)n, V(x), V(xc), MoraTables(op), 0);
            return;
        }
        (_kMoraCompress ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MoraArgs>(MoraCompressKernel))(
            (int)n, V(x), V(xc), MoraTables(op), Args(op, chunks, false));
    }

    private static void MoraCompressBackwardKernel(Index1D index, ArrayView<float> gxc, ArrayView<float> gx, ArrayView<float> tables, MoraArgs a)
    {
        int idx = index;
        var row = idx / a.In;
        var k = idx - row * a.In;
        var w = a.Chunks * a.R;
        var gat = (long)row * w;
        var v = a.Accumulate != 0 ? gx[idx] : 0f;
        if (a.Type == (int)MoraType.Truncation)
        {
            if (k < a.R) v += gxc[gat + k];
        }
        else if (a.Type == (int)MoraType.Sharing || a.Type == (int)MoraType.SharingInterleave)
        {
            v += gxc[gat + k % a.R];
            // The wrap padding: position in + k of the last chunk, for k < r̂ − tail.
            if (a.Tail > 0 && k < a.R - a.Tail) v += gxc[gat + a.Tail + k];
        }
        else if (a.Type == (int)MoraType.Interleave || a.Type == (int)MoraType.InterleaveTile)
        {
            v += gxc[gat + GroupOf(k, a.In, a.R)];
        }
        else
        {
            // The transposed rotation (by −angle) of every chunk position that reads x[k].
            var half = (int)(tables.Length / 2);
            var g = k / a.R;
            if (g < a.Chunks) v += RotateAt(gxc, gat, g, k - g * a.R, a.R, 0, tables, half, -1f);
            if (a.Chunks > a.Full && a.Tail > 0 && k < a.R - a.Tail)
                v += RotateAt(gxc, gat, a.Full, a.Tail + k, a.R, 0, tables, half, -1f);
        }
        gx[idx] = v;
    }

    public void MoraCompressBackward(MoraOperator op, Tensor gxc, Tensor gx, int rows, int chunks, bool accumulate)
    {
        var n = (long)rows * op.In;
        if (n == 0) return;
        if (Specialised(op, chunks) is { } k)
        {
            k.CompressBackward((int)n, V(gxc), V(gx), MoraTables(op), accumulate ? 1 : 0);
            return;
        }
        (_kMoraCompressBack ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MoraArgs>(MoraCompressBackwardKernel))(
            (int)n, V(gxc), V(gx), MoraTables(op), Args(op, chunks, accumulate));
    }

    private static void MoraDecompressAddKernel(Index1D index, ArrayView<float> yhat, ArrayView<float> y, MoraArgs a)
    {
        int idx = index;
        var row = idx / a.Out;
        var o = idx - row * a.Out;
        var w = a.Chunks * a.R;
        var hat = (long)row * w;
        if (a.Type == (int)MoraType.Truncation)
        {
            if (o < a.R) y[idx] += yhat[hat + o];
        }
        else if (a.Type == (int)MoraType.Interleave || a.Type == (int)MoraType.SharingInterleave)
        {
            y[idx] += yhat[hat + GroupOf(o, a.Out, a.R)];
        }
        else
        {
            y[idx] += yhat[hat + o % w];
        }
    }

    public void MoraDecompressAdd(MoraOperator op, Tensor yhat, Tensor y, int rows, int chunks)
    {
        var n = (long)rows * op.Out;
        if (n == 0) return;
        if (Specialised(op, chunks) is { } k)
        {
            k.DecompressAdd((int)n, V(yhat), V(y), MoraTables(op), 0);
            return;
        }
        (_kMoraDecompressAdd ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, MoraArgs>(MoraDecompressAddKernel))(
            (int)n, V(yhat), V(y), Args(op, chunks, false));
    }

    private static void MoraDecompressBackwardKernel(Index1D index, ArrayView<float> gy, ArrayView<float> gyhat, MoraArgs a)
    {
        int idx = index;
        var w = a.Chunks * a.R;
        var row = idx / w;
        var q = idx - row * w;
        var at = (long)row * a.Out;
        var v = 0f;
        if (a.Type == (int)MoraType.Truncation)
        {
            v = gy[at + q];
        }
        else if (a.Type == (int)MoraType.Interleave || a.Type == (int)MoraType.SharingInterleave)
        {
            int s = GroupStart(q, a.Out, a.R), e = GroupStart(q + 1, a.Out, a.R);
            for (var k = s; k < e; k++) v += gy[at + k];
        }
        else
        {
            // Transpose of tiling: the tiles in order; slots past out get zero.
            for (var s = q; s < a.Out; s += w) v += gy[at + s];
        }
        gyhat[idx] = v;
    }

    public void MoraDecompressBackward(MoraOperator op, Tensor gy, Tensor gyhat, int rows, int chunks)
    {
        var n = (long)rows * chunks * op.RHat;
        if (n == 0) return;
        if (Specialised(op, chunks) is { } k)
        {
            k.DecompressBackward((int)n, V(gy), V(gyhat), MoraTables(op), 0);
            return;
        }
        (_kMoraDecompressBack ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, MoraArgs>(MoraDecompressBackwardKernel))(
            (int)n, V(gy), V(gyhat), Args(op, chunks, false));
    }
}
