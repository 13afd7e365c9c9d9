using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace MoraEngine.Backends.Ilgpu;

/// <summary>
/// The accelerator backend: every <see cref="IBackend"/> kernel compiled by ILGPU, for CUDA GPUs and (in tests) for
/// ILGPU's CPU accelerator with CUDA's warp size and group limits. One partial file per op family
/// (<c>IlgpuBackend.*.cs</c>), each kernel a static method next to its launcher.
/// </summary>
/// <remarks>
/// <para>Kernels are loaded on first use and cached for the backend's lifetime; all work goes to the accelerator's
/// default stream, in order, and the host only waits in <see cref="Download"/> (reading a value) or
/// <see cref="Synchronize"/>. Host index arrays (ids, targets, row weights) are copied into ring buffers on the
/// same stream, so the copy for one call never overtakes the kernels of an earlier one.</para>
/// <para>Reductions whose result feeds the loss or the gradient norm (cross-entropy, sums of squares, norm weight
/// gradients, embedding gradients) use fixed partitions and fixed summation orders, never float atomics, so a run is
/// bit-for-bit repeatable on the same device.</para>
/// </remarks>
public sealed partial class IlgpuBackend : IBackend, IDisposable
{
    private readonly Accelerator _acc;
    private readonly bool _ownsAccelerator;
    private Device? _device;

    /// <summary>Creates a backend on an accelerator (the backend disposes it when <paramref name="owns"/>).</summary>
    internal IlgpuBackend(Accelerator accelerator, string name, bool owns = true)
    {
        _acc = accelerator;
        _ownsAccelerator = owns;
        Name = name;
        IsCuda = accelerator.AcceleratorType == AcceleratorType.Cuda;
        // One warp per row on a GPU; one thread per row on the CPU accelerator, where warp shuffles and barriers
        // are emulated with OS-thread synchronisation and cost milliseconds each.
        RowLanes = IsCuda ? 32 : 1;
        SmallGemmWork = IsCuda ? 1L << 21 : 1L << 24;
    }

    public string Name { get; }

    /// <summary>The ILGPU accelerator that runs the kernels.</summary>
    internal Accelerator Accelerator => _acc;

    /// <summary>True on a CUDA GPU, false on ILGPU's CPU accelerator.</summary>
    internal bool IsCuda { get; }

    /// <summary>Threads that share one row in the row kernels (norms, softmax, cross-entropy): 32 (a warp) or 1.</summary>
    internal int RowLanes { get; set; }

    /// <summary>GEMMs with m·n·k below this use the simple one-thread-per-element kernel instead of the tiled one.</summary>
    internal long SmallGemmWork { get; set; }

    /// <summary>The device this backend belongs to (set once by <see cref="Devices"/>).</summary>
    internal Device Device
    {
        get => _device ?? throw new InvalidOperationException("IlgpuBackend: not attached to a Device.");
        set => _device = value;
    }

    private AcceleratorStream Stream => _acc.DefaultStream;

    // ---------------------------------------------------------------- memory

    public Storage Allocate(Device device, int length)
    {
        var buffer = _acc.Allocate1D<float>(Math.Max(1, length));
        return new IlgpuStorage(device, buffer, 0, length, owner: true);
    }

    /// <summary>The storages share one buffer (an arena, <see cref="AllocateArena"/>), so an optimizer can update them in one kernel.</summary>
    public Storage[] AllocateMany(Device device, IReadOnlyList<int> lengths) => [.. AllocateArena(device, lengths, out _)];

    /// <summary>One buffer sliced into consecutive storages of the given lengths (each start aligned to 64 floats).</summary>
    internal IlgpuStorage[] AllocateArena(Device device, IReadOnlyList<int> lengths, out MemoryBuffer1D<float, Stride1D.Dense> arena)
    {
        var starts = new long[lengths.Count];
        long total = 0;
        for (var i = 0; i < lengths.Count; i++)
        {
            starts[i] = total;
            total += (lengths[i] + 63L) / 64 * 64;
        }
        arena = _acc.Allocate1D<float>(Math.Max(1, total));
        var result = new IlgpuStorage[lengths.Count];
        for (var i = 0; i < lengths.Count; i++) result[i] = new IlgpuStorage(device, arena, starts[i], lengths[i], owner: false);
        return result;
    }

    private static IlgpuStorage S(Tensor t) => t.Storage as IlgpuStorage
        ?? throw new InvalidOperationException($"Tensor {t.ShapeText} lives on {t.Device.Name}, not on this ILGPU device.");

    /// <summary>The tensor's own elements.</summary>
    private static ArrayView<float> V(Tensor t)
    {
        var s = S(t);
        return s.Buffer.View.SubView(s.Start + t.Offset, Math.Max(1, t.Length));
    }

    /// <summary>From the tensor's first element to the end of its storage (GEMM operands addressed by strides).</summary>
    private static ArrayView<float> From(Tensor t)
    {
        var s = S(t);
        return s.Buffer.View.SubView(s.Start + t.Offset, Math.Max(1, s.Length - t.Offset));
    }

    public void Upload(Tensor dst, ReadOnlySpan<float> src)
    {
        if (src.Length == 0) return;
        ToDevice(V(dst), Stream, src);
    }

    public void Download(Tensor src, Span<float> dst)
    {
        if (dst.Length == 0) return;
        ToHost(V(src), Stream, dst);
        Stream.Synchronize();
    }

    // ILGPU's ref-based host copies take the host address as given ("the base address of the pinned CPU buffer"): a
    // garbage collection during the copy could move a managed array, and the copy would then read or write where it
    // used to be (seen on the CPU accelerator as a download that left the array all zeros, about once in 300 GEMM
    // read-backs after a few thousand allocations). Every host copy goes through these two, which pin first.

    /// <summary>Copies host data into the start of <paramref name="target"/>, with the host memory pinned.</summary>
    internal static unsafe void ToDevice<T>(ArrayView<T> target, AcceleratorStream stream, ReadOnlySpan<T> host) where T : unmanaged
    {
        if (host.Length == 0) return;
        fixed (T* p = host) target.SubView(0, host.Length).CopyFromCPU(stream, ref *p, host.Length);
    }

    /// <summary>Copies the start of <paramref name="source"/> into host memory, with the host memory pinned.</summary>
    internal static unsafe void ToHost<T>(ArrayView<T> source, AcceleratorStream stream, Span<T> host) where T : unmanaged
    {
        if (host.Length == 0) return;
        fixed (T* p = host) source.SubView(0, host.Length).CopyToCPU(stream, ref *p, host.Length);
    }

    /// <summary>Waits for every queued kernel (timing, benchmarks).</summary>
    public void Synchronize() => _acc.Synchronize();

    // ---------------------------------------------------------------- host data rings

    private const int RingLength = 1 << 20;
    private MemoryBuffer1D<int, Stride1D.Dense>? _intRing;
    private MemoryBuffer1D<float, Stride1D.Dense>? _floatRing;
    private int _intAt, _floatAt;

    /// <summary>
    /// Copies host ints to the device (stream-ordered) and returns their view. Consecutive calls use consecutive
    /// ring slots; wrapping around waits for the device first, so a slot is never overwritten while a queued kernel
    /// may still read it.
    /// </summary>
    private ArrayView<int> UploadInts(ReadOnlySpan<int> data)
    {
        var n = Math.Max(1, data.Length);
        if (n > RingLength)
        {
            // Larger than the ring: a dedicated buffer, freed after the device is done with it.
            Synchronize();
            _bigInts?.Dispose();
            _bigInts = _acc.Allocate1D<int>(n);
            ToDevice(_bigInts.View, Stream, data);
            return _bigInts.View;
        }
        _intRing ??= _acc.Allocate1D<int>(RingLength);
        if (_intAt + n > RingLength)
        {
            Synchronize();
            _intAt = 0;
        }
        var view = _intRing.View.SubView(_intAt, n);
        _intAt += (n + 31) / 32 * 32;
        ToDevice(view, Stream, data);
        return view;
    }

    private MemoryBuffer1D<int, Stride1D.Dense>? _bigInts;

    /// <summary>Host floats to the device, like <see cref="UploadInts"/>.</summary>
    private ArrayView<float> UploadFloats(ReadOnlySpan<float> data)
    {
        var n = Math.Max(1, data.Length);
        if (n > RingLength) throw new ArgumentException($"IlgpuBackend: {n} host floats exceed the upload ring ({RingLength}).");
        _floatRing ??= _acc.Allocate1D<float>(RingLength);
        if (_floatAt + n > RingLength)
        {
            Synchronize();
            _floatAt = 0;
        }
        var view = _floatRing.View.SubView(_floatAt, n);
        _floatAt += (n + 31) / 32 * 32;
        ToDevice(view, Stream, data);
        return view;
    }

    // ---------------------------------------------------------------- scratch

    private readonly Dictionary<string, MemoryBuffer1D<float, Stride1D.Dense>> _scratchF = new();
    private readonly Dictionary<string, MemoryBuffer1D<double, Stride1D.Dense>> _scratchD = new();

    /// <summary>
    /// A named device scratch buffer of at least <paramref name="length"/> floats, grown on demand and reused: safe
    /// because every kernel runs in stream order, so the next user of a slot starts after the last one finished.
    /// </summary>
    private ArrayView<float> Scratch(string name, long length)
    {
        if (!_scratchF.TryGetValue(name, out var b) || b.Length < length)
        {
            if (b != null)
            {
                Synchronize();
                b.Dispose();
            }
            _scratchF[name] = b = _acc.Allocate1D<float>(Math.Max(64, length));
        }
        return b.View.SubView(0, Math.Max(1, length));
    }

    private ArrayView<double> ScratchD(string name, long length)
    {
        if (!_scratchD.TryGetValue(name, out var b) || b.Length < length)
        {
            if (b != null)
            {
                Synchronize();
                b.Dispose();
            }
            _scratchD[name] = b = _acc.Allocate1D<double>(Math.Max(64, length));
        }
        return b.View.SubView(0, Math.Max(1, length));
    }

    // ---------------------------------------------------------------- launch helpers

    private static int Groups(long threads, int groupSize) => (int)((threads + groupSize - 1) / groupSize);

    private const int RowGroup = 128;

    /// <summary>Launch shape of a row kernel: <see cref="RowLanes"/> threads per row, 128 threads per group.</summary>
    private KernelConfig RowConfig(int rows) => new(Math.Max(1, Groups((long)rows * RowLanes, RowGroup)), RowGroup);

    /// <summary>Sum over the <paramref name="lanes"/> threads of a row (a warp when 32; the value itself when 1).</summary>
    private static float LaneSum(float v, int lanes)
    {
        if (lanes > 1)
            for (var o = 16; o > 0; o >>= 1) v += Warp.ShuffleXor(v, o);
        return v;
    }

    private static float LaneMax(float v, int lanes)
    {
        if (lanes > 1)
            for (var o = 16; o > 0; o >>= 1) v = XMath.Max(v, Warp.ShuffleXor(v, o));
        return v;
    }

    // ---------------------------------------------------------------- basic kernels

    private Action<Index1D, ArrayView<float>, float>? _kFill;
    private Action<Index1D, ArrayView<float>, ArrayView<float>>? _kCopy;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>? _kTranspose;

    private static void FillKernel(Index1D i, ArrayView<float> y, float value) => y[i] = value;

    private static void CopyKernel(Index1D i, ArrayView<float> x, ArrayView<float> y) => y[i] = x[i];

    /// <summary>dst[b, c, r] = src[b, r, c]; one thread per destination element (coalesced writes).</summary>
    private static void TransposeKernel(Index1D i, ArrayView<float> src, ArrayView<float> dst, int rows, int cols)
    {
        var plane = rows * cols;
        var b = i / plane;
        var rem = i - b * plane;
        var c = rem / rows;
        var r = rem - c * rows;
        dst[i] = src[b * plane + r * cols + c];
    }

    public void Fill(Tensor dst, float value)
    {
        if (dst.Length == 0) return;
        (_kFill ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(FillKernel))(dst.Length, V(dst), value);
    }

    public void Copy(Tensor src, Tensor dst)
    {
        if (src.Length == 0) return;
        (_kCopy ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(CopyKernel))(src.Length, V(src), V(dst));
    }

    public void Transpose(Tensor src, Tensor dst, int batch, int rows, int cols)
    {
        var n = (long)batch * rows * cols;
        if (n == 0) return;
        (_kTranspose ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(TransposeKernel))(
            (int)n, V(src), V(dst), rows, cols);
    }

    public void Dispose()
    {
        Synchronize();
        foreach (var b in _scratchF.Values) b.Dispose();
        foreach (var b in _scratchD.Values) b.Dispose();
        _intRing?.Dispose();
        _floatRing?.Dispose();
        _bigInts?.Dispose();
        if (_ownsAccelerator) _acc.Dispose();
    }

    /// <summary>A short description: accelerator name, memory, multiprocessors.</summary>
    public string Describe() =>
        _acc is CudaAccelerator cuda
            ? $"{cuda.Name}, {cuda.MemorySize / (1L << 30)} GiB, {cuda.NumMultiprocessors} SMs, compute {cuda.Architecture}"
            : _acc is CPUAccelerator ? $"ILGPU CPU accelerator (warp {_acc.WarpSize}, groups up to {_acc.MaxNumThreadsPerGroup} threads)" : _acc.Name;
}
