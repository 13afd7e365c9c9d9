using ILGPU;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

/// <summary>
/// Device memory of an ILGPU accelerator: a slice [<see cref="Start"/>, Start + Length) of a
/// <see cref="MemoryBuffer1D{T, TStride}"/>. A storage either owns its buffer (pooled activations, optimizer state)
/// or is a slice of a shared arena (the parameters of a module moved with <c>Module.To</c>), which the arena's
/// owner keeps alive. Disposing an owning storage frees the device memory at once instead of at finalisation.
/// </summary>
public sealed class IlgpuStorage : Storage, IDisposable
{
    private readonly bool _owner;

    internal IlgpuStorage(Device device, MemoryBuffer1D<float, Stride1D.Dense> buffer, long start, int length, bool owner)
        : base(device, length)
    {
        Buffer = buffer;
        Start = start;
        _owner = owner;
    }

    /// <summary>The device buffer behind this storage (possibly shared with other storages).</summary>
    internal MemoryBuffer1D<float, Stride1D.Dense> Buffer { get; }

    /// <summary>First element of this storage inside <see cref="Buffer"/>.</summary>
    internal long Start { get; }

    /// <summary>This storage's elements as a view.</summary>
    internal ArrayView<float> View => Buffer.View.SubView(Start, Length);

    public void Dispose()
    {
        if (_owner) Buffer.Dispose();
    }
}
