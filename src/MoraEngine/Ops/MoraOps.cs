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

    /// <summary>
    /// A linear layer with its MoRA update: y = x·Wᵀ + f_decomp(M·f_comp(x)) (+ bias), the same result as
    /// <see cref="Linear"/> followed by <see cref="MoraDelta(Tensor, Tensor, MoraOperator, Tensor)"/>, at the cost of
    /// the layer's own GEMMs plus one r̂ × r̂ product over the tokens.
    /// </summary>
    /// <remarks>
    /// <para>Many tokens (rows·(in + out) ≥ in·out, a training batch): the update is merged into a working copy of
    /// the weight, W' = W + ΔW, built from M in O(in·out) by <see cref="Backends.IBackend.MoraMergeWeight"/> (ΔW[:, j] =
    /// f_decomp(M·f_comp(e_j)); on the CPU one pass over W gathering ΔW from M through the operator's f_comp taps). Then y = x·W'ᵀ and gx = gy·W' are the
    /// layer's plain GEMMs, and only M's gradient needs the adapter: gM = f_decompᵀ(gy)ᵀ·f_comp(x), one read of gy
    /// (none when f_decomp is the identity) and of x and one r̂ × r̂ product. Nothing of size [tokens, out] is
    /// written beyond y and gx themselves.</para>
    /// <para>Few tokens (decoding): x̂ = f_comp(x) and ŷ = x̂·Mᵀ, and the base GEMM adds f_decomp(ŷ) to each
    /// block of y as it completes (<see cref="Backends.IBackend.MoraLinear"/>); the backward mirrors it on gx.</para>
    /// </remarks>
    internal static Tensor LinearMora(Tensor x, Tensor weight, Tensor? bias, Tensor m, MoraOperator op) =>
        LinearMora(x, weight, bias, m, op, merge: null);

    /// <summary>As <see cref="LinearMora(Tensor, Tensor, Tensor?, Tensor, MoraOperator)"/>; <paramref name="merge"/> forces a path (tests, benchmarks).</summary>
    internal static Tensor LinearMora(Tensor x, Tensor weight, Tensor? bias, Tensor m, MoraOperator op, bool? merge)
    {
        ArgumentNullException.ThrowIfNull(op);
        Tensor.SameDevice("LinearMora", x, weight);
        Tensor.SameDevice("LinearMora", weight, m);
        int r = op.RHat, inF = op.In, outF = op.Out;
        if (weight.Rank != 2 || weight.IsTransposed || weight.Dim(0) != outF || weight.Dim(1) != inF)
            throw new ArgumentException($"LinearMora: weight {weight.ShapeText} must be a plain [{outF}, {inF}] matrix for the operator ({op}).");
        if (x.Rank < 1 || x.Dim(-1) != inF)
            throw new ArgumentException($"LinearMora: input {x.ShapeText} does not match the operator ({op}): its last dimension must be in_features = {inF}.");
        if (m.Rank != 2 || m.Dim(0) != r || m.Dim(1) != r)
            throw new ArgumentException($"LinearMora: M has shape {m.ShapeText}, expected [{r}, {r}] (r̂ × r̂ for {op}).");
        if (bias != null && (bias.Rank != 1 || bias.Dim(0) != outF))
            throw new ArgumentException($"LinearMora: bias {bias.ShapeText} does not match weight {weight.ShapeText}.");
        x = Contiguous(x);
        m = Contiguous(m);
        var rows = ShapeUtil.Prod(x.Shape, 0, x.Rank - 1);
        var merged = rows > 0 && (merge ?? (long)rows * (inF + outF) >= (long)inF * outF);
        var chunks = op.ActiveChunks;
        var be = x.Device.Backend;

        var y = Tensor.Empty(x.Device, x.ShapeArray[..^1].Append(outF).ToArray());
        Tensor? xc = null, wMerged = null;
        if (merged)
        {
            // W' = W + ΔW [out, in], kept for the backward's gx = gy·W'.
            wMerged = Tensor.Empty(x.Device, [outF, inF]);
            be.MoraMergeWeight(op, weight, m, wMerged);
            be.Gemm(1, rows, outF, inF, 1f, x, false, 0, wMerged, true, 0, 0f, y, 0);
        }
        else if (rows > 0)
        {
            xc = Tensor.Empty(x.Device, [rows * chunks, r]);
            var yhat = Tensor.EmptyIn(x.Device, [rows * chunks, r], MemoryScope.Current);
            be.MoraCompress(op, x, xc, rows, chunks);
            be.Gemm(1, rows * chunks, r, r, 1f, xc, false, 0, m, true, 0, 0f, yhat, 0);
            be.MoraLinear(op, x, weight, yhat, y, rows, chunks);
        }
        if (bias != null) be.Binary(Backends.BinaryOp.Add, y, bias, y, Backends.Broadcast.Plan("LinearMora", y.Shape, bias.Shape));

        var inputs = bias == null ? new[] { x, weight, m } : new[] { x, weight, m, bias };
        if (Graph.Needs(inputs))
            Graph.Record("LinearMora", y, inputs, gy =>
            {
                if (weight.RequiresGrad)
                {
                    var (gw, acc) = Graph.GradSlot(weight);
                    be.Gemm(1, outF, inF, rows, 1f, gy, true, 0, x, false, 0, acc ? 1f : 0f, gw, 0);
                }
                if (bias is { RequiresGrad: true }) BiasGradient(bias, gy, rows, outF);
                if (m.RequiresGrad && rows == 0)
                {
                    var (gm, acc) = Graph.GradSlot(m);
                    if (!acc) be.Fill(gm, 0f);
                }
                if (rows == 0 || (!x.RequiresGrad && !m.RequiresGrad)) return;
                Tensor? gyhat = null;
                if (op.DecompressIsIdentity(chunks))
                    gyhat = gy; // [rows, chunks·r̂] is [rows·chunks, r̂]: no copy
                else if (m.RequiresGrad || !merged)
                {
                    gyhat = Tensor.EmptyIn(x.Device, [rows * chunks, r], MemoryScope.Current);
                    be.MoraDecompressBackward(op, gy, gyhat, rows, chunks);
                }
                if (m.RequiresGrad)
                {
                    // gM = Σ over tokens (and chunks) of gŷ ⊗ x̂: one GEMM with the tokens as the inner dimension, on
                    // the forward's x̂, or on x itself (the merged path keeps no x̂).
                    var (gm, acc) = Graph.GradSlot(m);
                    if (xc != null)
                        be.Gemm(1, r, r, rows * chunks, 1f, gyhat!, true, 0, xc, false, 0, acc ? 1f : 0f, gm, 0);
                    else
                        be.MoraWeightGradient(op, gyhat!, x, gm, rows, chunks, acc);
                }
                if (x.RequiresGrad)
                {
                    var (gx, acc) = Graph.GradSlot(x);
                    if (merged)
                        be.Gemm(1, rows, inF, outF, 1f, gy, false, 0, wMerged!, false, 0, acc ? 1f : 0f, gx, 0);
                    else
                    {
                        var gxc = Tensor.EmptyIn(x.Device, [rows * chunks, r], MemoryScope.Current);
                        be.Gemm(1, rows * chunks, r, r, 1f, gyhat!, false, 0, m, false, 0, 0f, gxc, 0);
                        be.MoraLinearInputGradient(op, gy, weight, gxc, gx, rows, chunks, acc);
                    }
                }
            });
        return y;
    }

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
