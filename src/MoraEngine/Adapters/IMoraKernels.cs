namespace MoraEngine.Adapters;

/// <summary>
/// The four fixed MoRA operations of one (in, out, r̂, type), on row-major spans of <c>rows</c> tokens: what the
/// generic <see cref="Backends.Cpu.CpuBackend"/> kernels do, specialised by the source generator so that every size
/// is a constant. Compressed rows are <c>chunks·r̂</c> wide (<c>chunks</c> is 1 except for <see cref="MoraType.Rope"/>;
/// see <see cref="Backends.IBackend.MoraCompress"/>). Implementations are stateless and thread-safe.
/// </summary>
public interface IMoraKernels
{
    int In { get; }
    int Out { get; }
    int RHat { get; }
    MoraType Type { get; }

    /// <summary>Whether the SIMD code these kernels need runs in hardware here (if not, the generic kernels are used).</summary>
    bool IsAccelerated { get; }

    /// <summary>The same operations as ILGPU kernels, or null when none were generated (the generic ones run then).</summary>
    IMoraDeviceKernels? Device => null;

    /// <summary>xc = f_comp(x) per row: x [rows, in] → xc [rows, chunks·r̂].</summary>
    void Compress(ReadOnlySpan<float> x, Span<float> xc, int rows, int chunks);

    /// <summary>gx (+)= f_compᵀ(gxc) per row: gxc [rows, chunks·r̂] → gx [rows, in].</summary>
    void CompressBackward(ReadOnlySpan<float> gxc, Span<float> gx, int rows, int chunks, bool accumulate);

    /// <summary>y += f_decomp(ŷ) per row: ŷ [rows, chunks·r̂], y [rows, out].</summary>
    void DecompressAdd(ReadOnlySpan<float> yhat, Span<float> y, int rows, int chunks);

    /// <summary>gŷ = f_decompᵀ(gy) per row (overwritten): gy [rows, out] → gŷ [rows, chunks·r̂].</summary>
    void DecompressBackward(ReadOnlySpan<float> gy, Span<float> gyhat, int rows, int chunks);
}
