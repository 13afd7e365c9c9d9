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
/// Exact-size free lists of buffers. A training loop asks for the same sizes every step, so after the first
/// step every request is served from the pool and nothing new is allocated.
/// </summary>
public sealed class BufferPool
{
    private readonly Device _device;
    private readonly Dictionary<int, Stack<Storage>> _free = new();
    private readonly object _lock = new();

    internal BufferPool(Device device) => _device = device;

    /// <summary>Buffers created since start (a pool that keeps growing across steps means a leak).</summary>
    public long Created { get; private set; }

    /// <summary>Bytes held by buffers created by this pool.</summary>
    public long BytesCreated { get; private set; }

    /// <summary>Buffers currently waiting in the free lists.</summary>
    public int FreeCount
    {
        get
        {
            lock (_lock)
            {
                var n = 0;
                foreach (var s in _free.Values) n += s.Count;
                return n;
            }
        }
    }

    /// <summary>A buffer of exactly <paramref name="length"/> floats; its contents are undefined.</summary>
    public Storage Rent(int length)
    {
        lock (_lock)
        {
            if (_free.TryGetValue(length, out var stack) && stack.Count > 0) return stack.Pop();
            Created++;
            BytesCreated += 4L * length;
        }
        return _device.Backend.Allocate(_device, length);
    }

    /// <summary>Gives a buffer back for reuse.</summary>
    public void Return(Storage storage)
    {
        lock (_lock)
        {
            if (!_free.TryGetValue(storage.Length, out var stack)) _free[storage.Length] = stack = new Stack<Storage>();
            stack.Push(storage);
        }
    }

    /// <summary>Drops every free buffer (they are collected or freed by their device).</summary>
    public void Trim()
    {
        lock (_lock)
        {
            foreach (var s in _free.Values)
                foreach (var st in s) (st as IDisposable)?.Dispose();
            _free.Clear();
        }
    }
}
