using MoraEngine.Adapters;
using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// The MoRA update added to a frozen layer's output: baseOutput + ΔW·x = baseOutput + f_decomp(M · f_comp(x)),
    /// for x [.., in], M [r̂, r̂] (ŷ = M·x̂ per token, and per chunk for <see cref="MoraType.Rope"/>) and
    /// baseOutput [.., out] (same leading axes as x). Returns a new tensor; gradients flow to x, M and baseOutput.
    /// </summary>
    /// <remarks>
    /// Forward: one compression pass over the tokens, ŷ = x̂·Mᵀ as a single GEMM over all tokens (and chunks), and a
    /// decompression pass adding into a copy of baseOutput. x̂ is kept for the backward: gŷ = f_decompᵀ(gy),
    /// gM = gŷᵀ·x̂, gx = f_compᵀ(gŷ·M), gBase = gy. For Rope only the chunks that reach the output
    /// (<see cref="MoraOperator.ActiveChunks"/>) are computed; the others cannot affect y or any gradient.
    /// </remarks>
    public static Tensor MoraDelta(Tensor x, Tensor m, MoraOperator op, Tensor baseOutput) => MoraDelta(x, m, op, baseOutput, ownsBase: false);

    // ownsBase: The caller hands over baseOutput, which nothing else reads: the update
    // is added into its buffer and the gradient passes through without copies.
    internal static Tensor MoraDelta(Tensor x, Tensor m, MoraOperator op, Tensor baseOutput, bool ownsBase)
    {
        ArgumentNullException.ThrowIfNull(op);
        Tensor.SameDevice("MoraDelta", x, m);
        Tensor.SameDevice("MoraDelta", x, baseOutput);
        int r = op.RHat, inF = op.In, outF = op.Out;
        if (x.Rank < 1 || x.Dim(-1) != inF)
            throw new ArgumentException($"MoraDelta: input {x.ShapeText} does not match the operator ({op}): its last dimension must be in_features = {inF}.", nameof(x));
        if (m.Rank != 2 || m.Dim(0) != r || m.Dim(1) != r)
            throw new ArgumentException($"MoraDelta: M has shape {m.ShapeText}, expected [{r}, {r}] (r̂ × r̂ for {op}).", nameof(m));
        var outShape = x.ShapeArray[..^1].Append(outF).ToArray();
        if (!ShapeUtil.Equal(baseOutput.Shape, outShape))
            throw new ArgumentException($"MoraDelta: base output {baseOutput.ShapeText} does not match input {x.ShapeText} (expects {ShapeUtil.Format(outShape)} for {op}).", nameof(baseOutput));

        x = Contiguous(x);
        m = Contiguous(m);
        baseOutput = Contiguous(baseOutput);
        var rows = ShapeUtil.Prod(x.Shape, 0, x.Rank - 1);
        var chunks = op.ActiveChunks;
        var be = x.Device.Backend;

        var xc = Tensor.Empty(x.Device, [rows * chunks, r]);
        var yhat = Tensor.Empty(x.Device, [rows * chunks, r]);
        Tensor y;
        if (ownsBase)
            y = baseOutput.ViewOf(baseOutput.Offset, outShape, false);
        else
        {
            y = Tensor.Empty(x.Device, outShape);
            be.Copy(baseOutput, y);
        }
        if (rows > 0)
        {
            be.MoraCompress(op, x, xc, rows, chunks);
            // ŷ = x̂·Mᵀ: every token (and chunk) is one row of a single tall GEMM.
            be.Gemm(1, rows * chunks, r, r, 1f, xc, false, 0, m, true, 0, 0f, yhat, 0);
            be.MoraDecompressAdd(op, yhat, y, rows, chunks);
        }

        if (Graph.Needs([x, m, baseOutput]))
            Graph.Record("MoraDelta", y, [x, m, baseOutput], gy =>
            {
                if (baseOutput.RequiresGrad) Graph.PassGradient(baseOutput, gy, alias: ownsBase);
                if (!x.RequiresGrad && !m.RequiresGrad) return;
                var gyhat = Tensor.Empty(x.Device, [rows * chunks, r]);
                if (rows > 0) be.MoraDecompressBackward(op, gy, gyhat, rows, chunks);
                if (m.RequiresGrad)
                {
                    // gM = Σ_tokens,chunks gŷ ⊗ x̂, one GEMM with the tokens as the inner dimension.
                    var (gm, acc) = Graph.GradSlot(m);
                    if (rows > 0) be.Gemm(1, r, r, rows * chunks, 1f, gyhat, true, 0, xc, false, 0, acc ? 1f : 0f, gm, 0);
                    else if (!acc) be.Fill(gm, 0f);
                }
                if (x.RequiresGrad)
                {
                    var (gx, acc) = Graph.GradSlot(x);
                    if (rows > 0)
                    {
                        var gxc = Tensor.Empty(x.Device, [rows * chunks, r]);
                        be.Gemm(1, rows * chunks, r, r, 1f, gyhat, false, 0, m, false, 0, 0f, gxc, 0);
                        be.MoraCompressBackward(op, gxc, gx, rows, chunks, acc);
                    }
                }
            });
        return y;
    }
}
