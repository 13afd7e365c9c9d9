using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// LoRA's update added to a layer's output: baseOutput + scale·(x·Aᵀ)·Bᵀ for x [.., in], A [r, in], B [out, r],
    /// as two GEMMs over all tokens (the second accumulates straight into the output) with a fused backward.
    /// </summary>
    public static Tensor LoraDelta(Tensor x, Tensor a, Tensor b, float scale, Tensor baseOutput) =>
        LoraDelta(x, a, b, scale, baseOutput, ownsBase: false);

    /// <summary>
    /// A linear layer with its LoRA update as one product: y = [x | s·x·Aᵀ]·[W | B]ᵀ (+ bias), and in the backward
    /// gx = [gy | s·gy·B]·[W; A]. The update joins the layer's GEMM along K, so y and gx are each written once, with
    /// no separate pass over [tokens, out] or [tokens, in]. Same result as <see cref="Linear"/> followed by
    /// <see cref="LoraDelta(Tensor, Tensor, Tensor, float, Tensor)"/> (no dropout on the adapter's input).
    /// </summary>
    internal static Tensor LinearLora(Tensor x, Tensor weight, Tensor? bias, Tensor a, Tensor b, float scale)
    {
        Tensor.SameDevice("LinearLora", x, weight);
        Tensor.SameDevice("LinearLora", weight, a);
        Tensor.SameDevice("LinearLora", a, b);
        if (weight.Rank != 2 || weight.IsTransposed)
            throw new ArgumentException($"LinearLora: weight must be a plain [out, in] matrix, got {weight.ShapeText}.");
        int inF = weight.Dim(1), outF = weight.Dim(0);
        if (a.Rank != 2 || b.Rank != 2 || a.IsTransposed || b.IsTransposed || b.Dim(1) != a.Dim(0) || a.Dim(1) != inF || b.Dim(0) != outF)
            throw new ArgumentException($"LinearLora: A {a.ShapeText} and B {b.ShapeText} must be [r, {inF}] and [{outF}, r].");
        if (x.Rank < 1 || x.Dim(-1) != inF)
            throw new ArgumentException($"LinearLora: input {x.ShapeText} does not match weight {weight.ShapeText} (expects last dimension {inF}).");
        if (bias != null && (bias.Rank != 1 || bias.Dim(0) != outF))
            throw new ArgumentException($"LinearLora: bias {bias.ShapeText} does not match weight {weight.ShapeText}.");
        x = Contiguous(x);
        int r = a.Dim(0);
        var rows = x.Length / Math.Max(1, inF);
        var be = x.Device.Backend;
        // hs = s·x·Aᵀ [rows, r]: kept for B's gradient (gyᵀ·hs = s·gyᵀ·h).
        var hs = Tensor.Empty(x.Device, [rows, r]);
        be.Gemm(1, rows, r, inF, scale, x, false, 0, a, true, 0, 0f, hs, 0);
        var y = Tensor.Empty(x.Device, x.ShapeArray[..^1].Append(outF).ToArray());
        be.GemmConcat(rows, outF, inF, 1f, x, false, weight, true, r, hs, b, 0f, y);
        if (bias != null) be.Binary(Backends.BinaryOp.Add, y, bias, y, Backends.Broadcast.Plan("LinearLora", y.Shape, bias.Shape));

        var inputs = bias == null ? new[] { x, weight, a, b } : new[] { x, weight, a, b, bias };
        if (Graph.Needs(inputs))
            Graph.Record("LinearLora", y, inputs, gy =>
            {
                if (weight.RequiresGrad)
                {
                    var (gw, acc) = Graph.GradSlot(weight);
                    be.Gemm(1, outF, inF, rows, 1f, gy, true, 0, x, false, 0, acc ? 1f : 0f, gw, 0);
                }
                if (bias is { RequiresGrad: true }) BiasGradient(bias, gy, rows, outF);
                var gh = AdapterGradients(x, a, b, gy, hs, 1f, scale, rows);
                if (x.RequiresGrad)
                {
                    var (gx, acc) = Graph.GradSlot(x);
                    be.GemmConcat(rows, inF, outF, 1f, gy, false, weight, false, r, gh!, a, acc ? 1f : 0f, gx);
                }
            });
        return y;
    }

    // ownsBase: The caller hands over baseOutput, which nothing else reads (a
    // layer's fresh output): the update is added into its buffer and the gradient passes through without copies.
    internal static Tensor LoraDelta(Tensor x, Tensor a, Tensor b, float scale, Tensor baseOutput, bool ownsBase)
    {
        Tensor.SameDevice("LoraDelta", x, a);
        Tensor.SameDevice("LoraDelta", a, b);
        if (a.Rank != 2 || b.Rank != 2 || a.IsTransposed || b.IsTransposed || b.Dim(1) != a.Dim(0))
            throw new ArgumentException($"LoraDelta: A {a.ShapeText} and B {b.ShapeText} must be [r, in] and [out, r].");
        int r = a.Dim(0), inF = a.Dim(1), outF = b.Dim(0);
        if (x.Rank < 1 || x.Dim(-1) != inF)
            throw new ArgumentException($"LoraDelta: input {x.ShapeText} does not match A {a.ShapeText} (expects last dimension {inF}).");
        if (baseOutput.Rank != x.Rank || baseOutput.Dim(-1) != outF || baseOutput.Length / Math.Max(1, outF) != x.Length / Math.Max(1, inF))
            throw new ArgumentException($"LoraDelta: base output {baseOutput.ShapeText} does not match input {x.ShapeText} and B {b.ShapeText}.");
        x = Contiguous(x);
        baseOutput = Contiguous(baseOutput);
        var rows = x.Length / Math.Max(1, inF);
        var be = x.Device.Backend;
        var h = Tensor.Empty(x.Device, [rows, r]);
        be.Gemm(1, rows, r, inF, 1f, x, false, 0, a, true, 0, 0f, h, 0);
        Tensor y;
        if (ownsBase)
            y = baseOutput.ViewOf(baseOutput.Offset, (int[])baseOutput.ShapeArray.Clone(), false);
        else
        {
            y = Tensor.Empty(x.Device, (int[])baseOutput.ShapeArray.Clone());
            be.Copy(baseOutput, y);
        }
        be.Gemm(1, rows, outF, r, scale, h, false, 0, b, true, 0, 1f, y, 0);
        if (Graph.Needs([x, a, b, baseOutput]))
            Graph.Record("LoraDelta", y, [x, a, b, baseOutput], gy =>
            {
                if (baseOutput.RequiresGrad) Graph.PassGradient(baseOutput, gy, alias: ownsBase);
                var gh = AdapterGradients(x, a, b, gy, h, scale, scale, rows);
                if (x.RequiresGrad)
                {
                    var (gx, acc) = Graph.GradSlot(x);
                    be.Gemm(1, rows, inF, r, 1f, gh!, false, 0, a, false, 0, acc ? 1f : 0f, gx, 0);
                }
            });
        return y;
    }

    /// <summary>
    /// B's gradient hScale·gyᵀ·h, gh = s·gy·B [rows, r] and A's gradient ghᵀ·x, each where something needs it, through
    /// <see cref="Backends.IBackend.LoraGradients"/> (one pass over gy's rows on the CPU). Returns gh (scoped) for the
    /// input's gradient, or null when neither A nor x needs it.
    /// </summary>
    private static Tensor? AdapterGradients(Tensor x, Tensor a, Tensor b, Tensor gy, Tensor h, float hScale, float scale, int rows)
    {
        bool needGh = a.RequiresGrad || x.RequiresGrad;
        if (!needGh && !b.RequiresGrad) return null;
        var gh = needGh ? Tensor.EmptyIn(x.Device, [rows, a.Dim(0)], MemoryScope.Current) : null;
        Tensor? gb = null, ga = null;
        bool accB = false, accA = false;
        if (b.RequiresGrad) (gb, accB) = Graph.GradSlot(b);
        if (a.RequiresGrad) (ga, accA) = Graph.GradSlot(a);
        x.Device.Backend.LoraGradients(rows, gy, x, h, hScale, b, scale, gh, gb, accB, ga, accA);
        return gh;
    }
}
