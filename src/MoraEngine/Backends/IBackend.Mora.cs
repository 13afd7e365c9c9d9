using MoraEngine.Adapters;

namespace MoraEngine.Backends;

/// <summary>
/// MoRA's fixed compression f_comp and decompression f_decomp (<see cref="MoraOperator"/>), fused over a batch of
/// <c>rows</c> tokens. Compressed tensors are [rows, chunks·r̂] row-major: <c>chunks</c> is 1 for every type except
/// <see cref="MoraType.Rope"/>, where it is the number of leading chunks handled — <see cref="MoraOperator.Chunks"/>
/// for the whole f_comp(x), or at least <see cref="MoraOperator.ActiveChunks"/> (the chunks that reach y) on the
/// training path. Wrap padding is index arithmetic: no padded copy of x is made. Tables (RoPE cos/sin, interleave
/// boundaries) come from the operator.
/// </summary>
public partial interface IBackend
{
    /// <summary>xc = f_comp(x) per row: x [rows, in] → xc [rows, chunks·r̂].</summary>
    void MoraCompress(MoraOperator op, Tensor x, Tensor xc, int rows, int chunks);

    /// <summary>
    /// gx (+)= f_compᵀ(gxc) per row (sharing ↔ scatter to every chunk, interleave ↔ repeat, rotation ↔ rotation by
    /// −a, truncation ↔ zero-pad): gxc [rows, chunks·r̂] → gx [rows, in]. Chunks beyond <paramref name="chunks"/>
    /// count as zero.
    /// </summary>
    void MoraCompressBackward(MoraOperator op, Tensor gxc, Tensor gx, int rows, int chunks, bool accumulate);

    /// <summary>
    /// y += f_decomp(ŷ) per row: ŷ [rows, chunks·r̂], y [rows, out] (Rope: the chunk outputs concatenated, tiled and
    /// cut to out, which needs chunks ≥ <see cref="MoraOperator.ActiveChunks"/>).
    /// </summary>
    void MoraDecompressAdd(MoraOperator op, Tensor yhat, Tensor y, int rows, int chunks);

    /// <summary>gŷ = f_decompᵀ(gy) per row (overwritten): gy [rows, out] → gŷ [rows, chunks·r̂].</summary>
    void MoraDecompressBackward(MoraOperator op, Tensor gy, Tensor gyhat, int rows, int chunks);

    /// <summary>
    /// A MoRA layer's output: y = x·Wᵀ + f_decomp(ŷ) for x [rows, in], W [out, in], ŷ [rows, chunks·r̂] and y
    /// [rows, out] (overwritten). The default runs the GEMM and then <see cref="MoraDecompressAdd"/>; a backend that
    /// fuses adds f_decomp(ŷ) to each block of y as its product completes, so y is written once.
    /// </summary>
    void MoraLinear(MoraOperator op, Tensor x, Tensor weight, Tensor yhat, Tensor y, int rows, int chunks)
    {
        Gemm(1, rows, op.Out, op.In, 1f, x, false, 0, weight, true, 0, 0f, y, 0);
        MoraDecompressAdd(op, yhat, y, rows, chunks);
    }

    /// <summary>
    /// A MoRA layer's merged weight: W' = W + ΔW [out, in] for M [r̂, r̂]. The default forms Eᵀ = B·Mᵀ
    /// [in·chunks, r̂] (chunks = <see cref="MoraOperator.ActiveChunks"/>) from the operator's f_comp
    /// basis B (<see cref="MoraOperator.CompressBasis"/>; row j of ΔWᵀ is f_decomp of row j of Eᵀ), decompresses it
    /// into a transposed copy of W and transposes back; a backend may gather ΔW from M directly
    /// (<see cref="MoraOperator.CompressTaps"/>).
    /// </summary>
    void MoraMergeWeight(MoraOperator op, Tensor weight, Tensor m, Tensor merged)
    {
        var chunks = op.ActiveChunks;
        var eT = Tensor.EmptyIn(weight.Device, [op.In * chunks, op.RHat], MemoryScope.Current);
        Gemm(1, op.In * chunks, op.RHat, op.RHat, 1f, op.CompressBasis(weight.Device), false, 0, m, true, 0, 0f, eT, 0);
        var t = Tensor.EmptyIn(weight.Device, [op.In, op.Out], MemoryScope.Current);
        Transpose(weight, t, 1, op.Out, op.In);
        MoraDecompressAdd(op, eT, t, op.In, chunks);
        Transpose(t, merged, 1, op.In, op.Out);
    }

    /// <summary>
    /// M's gradient from the layer's input: gM (+)= gŷᵀ·f_comp(x) for gŷ = f_decompᵀ(gy) [rows, chunks·r̂], x [rows,
    /// in] and gM [r̂, r̂], summed over the tokens (and chunks). The default compresses x into scratch and runs one
    /// GEMM with the tokens as its depth; a backend may read x in place.
    /// </summary>
    void MoraWeightGradient(MoraOperator op, Tensor gyhat, Tensor x, Tensor gm, int rows, int chunks, bool accumulate) =>
        MoraWeightGradientFromCopy(this, op, gyhat, x, gm, rows, chunks, accumulate);

    /// <summary><see cref="MoraWeightGradient"/> through a compressed copy x̂ = f_comp(x) in scratch, then one GEMM.</summary>
    internal static void MoraWeightGradientFromCopy(IBackend be, MoraOperator op, Tensor gyhat, Tensor x, Tensor gm, int rows, int chunks, bool accumulate)
    {
        var xc = Tensor.EmptyIn(x.Device, [rows * chunks, op.RHat], MemoryScope.Current);
        be.MoraCompress(op, x, xc, rows, chunks);
        be.Gemm(1, op.RHat, op.RHat, rows * chunks, 1f, gyhat, true, 0, xc, false, 0, accumulate ? 1f : 0f, gm, 0);
    }

    /// <summary>
    /// A MoRA layer's input gradient: gx (+)= gy·W + f_compᵀ(gx̂) for gy [rows, out], W [out, in], gx̂ [rows,
    /// chunks·r̂] and gx [rows, in]. gx̂ is scratch: a backend may overwrite it. The default runs the GEMM and then
    /// <see cref="MoraCompressBackward"/>; a backend that fuses adds f_compᵀ(gx̂) to each block of gx as its
    /// product completes.
    /// </summary>
    void MoraLinearInputGradient(MoraOperator op, Tensor gy, Tensor weight, Tensor gxhat, Tensor gx, int rows, int chunks, bool accumulate)
    {
        Gemm(1, rows, op.In, op.Out, 1f, gy, false, 0, weight, false, 0, accumulate ? 1f : 0f, gx, 0);
        MoraCompressBackward(op, gxhat, gx, rows, chunks, accumulate: true);
    }
}
