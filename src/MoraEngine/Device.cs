using MoraEngine.Backends;
using MoraEngine.Backends.Cpu;

namespace MoraEngine;

/// <summary>
/// A place tensors live: a backend that runs kernels there and a pool that recycles its buffers.
/// </summary>
public sealed class Device
{
    /// <summary>The managed CPU device (SIMD kernels, all cores).</summary>
    public static Device Cpu { get; } = new("cpu", new CpuBackend());

    private Device(string name, IBackend backend)
    {
        Name = name;
        Backend = backend;
        Pool = new BufferPool(this);
    }

    /// <summary>Creates a device around a backend (used by accelerator backends).</summary>
    public static Device Create(string name, IBackend backend) => new(name, backend);

    /// <summary>Short name such as <c>cpu</c> or <c>cuda:0</c>.</summary>
    public string Name { get; }

    /// <summary>The kernels of this device.</summary>
    public IBackend Backend { get; }

    /// <summary>Recycled buffers of this device.</summary>
    public BufferPool Pool { get; }

    public override string ToString() => Name;
}

/// <summary>Raw float32 memory owned by a device.</summary>
public abstract class Storage
{
    protected Storage(Device device, int length)
    {
        Device = device;
        Length = length;
    }

    public Device Device { get; }

    public int Length { get; }
}

/// <summary>CPU memory: a managed float array.</summary>
public sealed class CpuStorage : Storage
{
    public CpuStorage(Device device, float[] data) : base(device, data.Length) => Data = data;

    public float[] Data { get; }
}

/// <summary>
/// Free lists of buffers by size class. A training loop asks for the same sizes every step, so after the first step
/// every request is served from the pool and nothing new is allocated. Requests are rounded up to a size class
/// (four classes per power of two, at most 25% larger), so work whose sizes drift (decoding one more token each time,
/// evaluation batches of other lengths) reuses buffers too. The free lists hold at most the largest working set seen
/// (<see cref="PeakInUseBytes"/>; at least <see cref="MinFreeBytes"/>): beyond that the least recently used class is
/// released, so the pool's memory stays within about twice the peak working set.
/// </summary>
public sealed class BufferPool
{
    private sealed class FreeList
    {
        public readonly Stack<Storage> Buffers = new();
        public long LastUse;
    }

    private readonly Device _device;
    private readonly Dictionary<int, FreeList> _free = new();
    private readonly object _lock = new();
    private long _tick;

    internal BufferPool(Device device) => _device = device;

    /// <summary>Free bytes the pool may always keep, whatever the working set.</summary>
    public long MinFreeBytes { get; set; } = 64L << 20;

    /// <summary>Buffers created since start (a pool that keeps growing across steps means a leak).</summary>
    public long Created { get; private set; }

    /// <summary>Bytes held by buffers created by this pool.</summary>
    public long BytesCreated { get; private set; }

    /// <summary>Bytes of pooled buffers currently rented out.</summary>
    public long InUseBytes { get; private set; }

    /// <summary>The largest <see cref="InUseBytes"/> seen.</summary>
    public long PeakInUseBytes { get; private set; }

    /// <summary>Bytes waiting in the free lists.</summary>
    public long FreeBytes { get; private set; }

    /// <summary>Buffers released because the free lists were over their bound.</summary>
    public long Released { get; private set; }

    /// <summary>Buffers currently waiting in the free lists.</summary>
    public int FreeCount
    {
        get
        {
            lock (_lock)
            {
                var n = 0;
                foreach (var s in _free.Values) n += s.Buffers.Count;
                return n;
            }
        }
    }

    /// <summary>The size class of a request: at least 16 floats, then four classes per power of two.</summary>
    public static int SizeClass(int length)
    {
        if (length <= 16) return 16;
        var top = 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)length));   // largest power of two ≤ length
        var step = top / 4;
        var rounded = (long)(length + step - 1) / step * step;
        return rounded > Array.MaxLength ? length : (int)rounded;
    }

    /// <summary>A buffer of at least <paramref name="length"/> floats (its size class); its contents are undefined.</summary>
    public Storage Rent(int length)
    {
        var size = SizeClass(length);
        lock (_lock)
        {
            InUseBytes += 4L * size;
            if (InUseBytes > PeakInUseBytes) PeakInUseBytes = InUseBytes;
            if (_free.TryGetValue(size, out var list) && list.Buffers.Count > 0)
            {
                list.LastUse = ++_tick;
                FreeBytes -= 4L * size;
                return list.Buffers.Pop();
            }
            Created++;
            BytesCreated += 4L * size;
        }
        return _device.Backend.Allocate(_device, size);
    }

    /// <summary>Gives a buffer back for reuse (or releases it, least recently used class first, beyond the bound).</summary>
    public void Return(Storage storage)
    {
        var bytes = 4L * storage.Length;
        List<Storage>? release = null;
        lock (_lock)
        {
            InUseBytes = Math.Max(0, InUseBytes - bytes);
            if (!_free.TryGetValue(storage.Length, out var list)) _free[storage.Length] = list = new FreeList();
            list.Buffers.Push(storage);
            list.LastUse = ++_tick;
            FreeBytes += bytes;
            var bound = Math.Max(MinFreeBytes, PeakInUseBytes);
            while (FreeBytes > bound)
            {
                FreeList? oldest = null;
                foreach (var l in _free.Values)
                    if (l.Buffers.Count > 0 && l != list && (oldest == null || l.LastUse < oldest.LastUse)) oldest = l;
                oldest ??= list;
                var victim = oldest.Buffers.Pop();
                FreeBytes -= 4L * victim.Length;
                Released++;
                (release ??= new List<Storage>()).Add(victim);
                if (oldest == list && list.Buffers.Count == 0) break;
            }
        }
        if (release != null)
            foreach (var r in release) (r as IDisposable)?.Dispose();
    }

    /// <summary>Drops every free buffer (they are collected or freed by their device).</summary>
    public void Trim()
    {
        lock (_lock)
        {
            foreach (var s in _free.Values)
                foreach (var st in s.Buffers) (st as IDisposable)?.Dispose();
            _free.Clear();
            FreeBytes = 0;
        }
    }
}
