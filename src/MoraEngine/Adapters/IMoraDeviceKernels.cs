using ILGPU;

namespace MoraEngine.Adapters;

/// <summary>
/// A MoRA device kernel: one thread per output element (<paramref name="index"/> over rows × output width), reading
/// <paramref name="source"/> and writing <paramref name="destination"/>; <paramref name="tables"/> holds the RoPE
/// cos table followed by the sin table ([chunks, r̂/2] each, as <see cref="MoraOperator.RopeCos"/> and
/// <see cref="MoraOperator.RopeSin"/>); <paramref name="flag"/> is <c>accumulate</c> (0 or 1) for the compress
/// backward and unused by the others.
/// </summary>
public delegate void MoraDeviceKernel(Index1D index, ArrayView<float> source, ArrayView<float> destination,
    ArrayView<float> tables, int flag);

/// <summary>
/// The four MoRA operations of one (in, out, r̂, type) as ILGPU kernels with every size a literal (constant trip
/// counts and divisors, the type's branch resolved at generation time), emitted by the source generator next to the
/// CPU kernels. <see cref="Backends.Ilgpu.IlgpuBackend"/> compiles each once per accelerator and uses them when the
/// compressed width matches <see cref="Chunks"/>; the generic ILGPU kernels are the reference and the fallback.
/// Element by element they compute what the generic kernels compute, in the same summation order.
/// </summary>
public interface IMoraDeviceKernels
{
    /// <summary>Chunks per compressed row the kernels are written for: the active chunks for Rope, 1 otherwise.</summary>
    int Chunks { get; }

    /// <summary>xc = f_comp(x): x [rows, in] → xc [rows, Chunks·r̂]; rows·Chunks·r̂ threads.</summary>
    MoraDeviceKernel Compress { get; }

    /// <summary>gx (+)= f_compᵀ(gxc): gxc [rows, Chunks·r̂] → gx [rows, in]; rows·in threads; flag = accumulate.</summary>
    MoraDeviceKernel CompressBackward { get; }

    /// <summary>y += f_decomp(ŷ): ŷ [rows, Chunks·r̂] → y [rows, out]; rows·out threads.</summary>
    MoraDeviceKernel DecompressAdd { get; }

    /// <summary>gŷ = f_decompᵀ(gy): gy [rows, out] → gŷ [rows, Chunks·r̂] (overwritten); rows·Chunks·r̂ threads.</summary>
    MoraDeviceKernel DecompressBackward { get; }
}
