using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// Matrix product over the last two axes: [.., m, k] · [.., k, n] → [.., m, n]. Leading (batch) axes must match,
    /// or b may be a plain matrix shared by every batch. Transposed views (<see cref="Tensor.T"/>) are read in place.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        Tensor.SameDevice("MatMul", a, b);
        if (a.Rank < 2 || b.Rank < 2)
            throw new ArgumentException($"MatMul: both operands need at least 2 dimensions, got {a.ShapeText} and {b.ShapeText}.");
        int m = a.Dim(-2), k = a.Dim(-1), n = b.Dim(-1);
        if (b.Dim(-2) != k)
            throw new ArgumentException($"MatMul: inner dimensions differ: {a.ShapeText} · {b.ShapeText} ({k} vs {b.Dim(-2)}).");
        var aBatch = a.Length / Math.Max(1, m * k);
        if (m * k == 0) aBatch = ShapeUtil.Prod(a.Shape, 0, a.Rank - 2);
        var bBatch = ShapeUtil.Prod(b.Shape, 0, b.Rank - 2);
        int[] outShape;
        if (b.Rank == 2)
        {
            outShape = a.ShapeArray[..^1].Append(n).ToArray();
        }
        else if (a.Rank == b.Rank && a.Shape[..^2].SequenceEqual(b.Shape[..^2]))
        {
            outShape = a.ShapeArray[..^1].Append(n).ToArray();
        }
        else if (a.Rank == 2)
        {
            outShape = b.ShapeArray[..^2].Append(m).Append(n).ToArray();
            aBatch = bBatch;
        }
        else
        {
            throw new ArgumentException($"MatMul: batch dimensions of {a.ShapeText} and {b.ShapeText} do not match.");
        }
        var batch = Math.Max(aBatch, bBatch);
        long sA = a.Rank == 2 ? 0 : (long)m * k;
        long sB = b.Rank == 2 ? 0 : (long)k * n;
        var c = Tensor.Empty(a.Device, outShape);
        var be = a.Device.Backend;
        GemmFlat(be, batch, m, n, k, 1f, a, a.IsTransposed, sA, b, b.IsTransposed, sB, 0f, c, (long)m * n);

        if (Graph.Needs(a, b))
            Graph.Record("MatMul", c, [a, b], gc =>
            {
                if (a.RequiresGrad)
                {
                    // dA = dC · Bᵀ, per batch; a shared A sums over the batch.
                    var (ga, acc) = Graph.GradSlot(a);
                    if (sA == 0 && batch > 1)
                    {
                        var beta = acc ? 1f : 0f;
                        for (var i = 0; i < batch; i++)
                        {
                            be.Gemm(1, m, k, n, 1f, gc.ViewOf(gc.Offset + i * m * n, [m, n], false), false, 0,
                                b.ViewOf(b.Offset + (int)(i * sB), [k, n], false), !b.IsTransposed, 0, beta, ga, 0);
                            beta = 1f;
                        }
                    }
                    else
                    {
                        GemmFlat(be, batch, m, k, n, 1f, gc, false, (long)m * n, b, !b.IsTransposed, sB, acc ? 1f : 0f, ga, sA);
                    }
                }
                if (b.RequiresGrad)
                {
                    // dB = Aᵀ · dC; a shared B sums over the batch.
                    var (gb, acc) = Graph.GradSlot(b);
                    if (sB == 0 && batch > 1)
                    {
                        if (!a.IsTransposed && sA != 0)
                        {
                            // Rows of every batch stack into one tall matrix: one GEMM with k = batch·m.
                            be.Gemm(1, k, n, batch * m, 1f, a, true, 0, gc, false, 0, acc ? 1f : 0f, gb, 0);
                        }
                        else
                        {
                            var beta = acc ? 1f : 0f;
                            for (var i = 0; i < batch; i++)
                            {
                                be.Gemm(1, k, n, m, 1f, a.ViewOf(a.Offset + (int)(i * sA), [m, k], false), !a.IsTransposed, 0,
                                    gc.ViewOf(gc.Offset + i * m * n, [m, n], false), false, 0, beta, gb, 0);
                                beta = 1f;
                            }
                        }
                    }
                    else
                    {
                        GemmFlat(be, batch, k, n, m, 1f, a, !a.IsTransposed, sA, gc, false, (long)m * n, acc ? 1f : 0f, gb, sB);
                    }
                }
            });
        return c;
    }

    /// <summary>Batched GEMM, folded into one tall GEMM when A's batches are stacked rows and B is shared.</summary>
    private static void GemmFlat(Backends.IBackend be, int batch, int m, int n, int k, float alpha,
        Tensor a, bool transA, long sA, Tensor b, bool transB, long sB, float beta, Tensor c, long sC)
    {
        if (batch > 1 && sB == 0 && !transA && sA == (long)m * k && sC == (long)m * n)
            be.Gemm(1, batch * m, n, k, alpha, a, false, 0, b, transB, 0, beta, c, 0);
        else
            be.Gemm(batch, m, n, k, alpha, a, transA, sA, b, transB, sB, beta, c, sC);
    }

    /// <summary>
    /// y = x · Wᵀ (+ bias) for x [.., in] and W [out, in] (PyTorch's layout). The weight gradient is written in
    /// W's own layout, with no transposed copy.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        Tensor.SameDevice("Linear", x, weight);
        if (weight.Rank != 2 || weight.IsTransposed)
            throw new ArgumentException($"Linear: weight must be a plain [out, in] matrix, got {weight.ShapeText}.");
        if (x.Rank < 1 || x.Dim(-1) != weight.Dim(1))
            throw new ArgumentException($"Linear: input {x.ShapeText} does not match weight {weight.ShapeText} (expects last dimension {weight.Dim(1)}).");
        if (bias != null && (bias.Rank != 1 || bias.Dim(0) != weight.Dim(0)))
            throw new ArgumentException($"Linear: bias {bias.ShapeText} does not match weight {weight.ShapeText}.");
        x = Contiguous(x);
        int inF = weight.Dim(1), outF = weight.Dim(0);
        var rows = x.Length / Math.Max(1, inF);
        if (inF == 0) rows = ShapeUtil.Prod(x.Shape, 0, x.Rank - 1);
        var outShape = x.ShapeArray[..^1].Append(outF).ToArray();
        var y = Tensor.Empty(x.Device, outShape);
        var be = x.Device.Backend;
        be.Gemm(1, rows, outF, inF, 1f, x, false, 0, weight, true, 0, 0f, y, 0);
        if (bias != null) be.Binary(Backends.BinaryOp.Add, y, bias, y, Backends.Broadcast.Plan("Linear", y.Shape, bias.Shape));

        var inputs = bias == null ? new[] { x, weight } : new[] { x, weight, bias };
        if (Graph.Needs(inputs))
            Graph.Record("Linear", y, inputs, gy =>
            {
                if (x.RequiresGrad)
                {
                    var (gx, acc) = Graph.GradSlot(x);
                    be.Gemm(1, rows, inF, outF, 1f, gy, false, 0, weight, false, 0, acc ? 1f : 0f, gx, 0);
                }
                if (weight.RequiresGrad)
                {
                    var (gw, acc) = Graph.GradSlot(weight);
                    be.Gemm(1, outF, inF, rows, 1f, gy, true, 0, x, false, 0, acc ? 1f : 0f, gw, 0);
                }
                if (bias is { RequiresGrad: true }) BiasGradient(bias, gy, rows, outF);
            });
        return y;
    }

    /// <summary>Adds Σ over rows of gy [rows, out] into the bias's gradient slot.</summary>
    private static void BiasGradient(Tensor bias, Tensor gy, int rows, int outF)
    {
        var (gb, acc) = Graph.GradSlot(bias);
        var tmp = acc ? Tensor.EmptyIn(bias.Device, bias.ShapeArray, MemoryScope.Current) : gb;
        bias.Device.Backend.ReduceSum(gy, tmp, 1, rows, outF, 1f);
        if (acc) bias.Device.Backend.Scale(tmp, 1f, gb, true);
    }
}
