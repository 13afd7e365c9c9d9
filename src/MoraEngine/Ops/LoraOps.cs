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
                if (b.RequiresGrad)
                {
                    var (gb, acc) = Graph.GradSlot(b);
                    be.Gemm(1, outF, r, rows, scale, gy, true, 0, h, false, 0, acc ? 1f : 0f, gb, 0);
                }
                if (!a.RequiresGrad && !x.RequiresGrad) return;
                // gh = scale·gy·B  [rows, r]
                var gh = Tensor.EmptyIn(x.Device, [rows, r], MemoryScope.Current);
                // With Bᵀ [r, out] stored row by row this is r dot products per token: one pass over gy.
                var bT = Tensor.EmptyIn(x.Device, [r, outF], MemoryScope.Current);
                be.Transpose(b, bT, 1, outF, r);
                be.Gemm(1, rows, r, outF, scale, gy, false, 0, bT, true, 0, 0f, gh, 0);
                if (a.RequiresGrad)
                {
                    var (ga, acc) = Graph.GradSlot(a);
                    be.Gemm(1, r, inF, rows, 1f, gh, true, 0, x, false, 0, acc ? 1f : 0f, ga, 0);
                }
                if (x.RequiresGrad)
                {
                    var (gx, acc) = Graph.GradSlot(x);
                    be.Gemm(1, rows, inF, r, 1f, gh, false, 0, a, false, 0, acc ? 1f : 0f, gx, 0);
                }
            });
        return y;
    }
}
