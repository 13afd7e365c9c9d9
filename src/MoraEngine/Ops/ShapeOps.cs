using MoraEngine.Autograd;

namespace MoraEngine;

/// <summary>
/// Differentiable tensor operations. Each op checks shapes once (an <see cref="ArgumentException"/> naming the op
/// and the shapes), runs the device kernel and records its backward right next to its forward.
/// One partial file per op family.
/// </summary>
public static partial class Ops
{
    /// <summary>The same elements under a new shape; one dimension may be -1. A view unless the input is transposed.</summary>
    public static Tensor Reshape(Tensor x, params int[] shape)
    {
        var dims = (int[])shape.Clone();
        var infer = -1;
        long known = 1;
        for (var i = 0; i < dims.Length; i++)
        {
            if (dims[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"Reshape: only one -1 allowed in {ShapeUtil.Format(shape)}.");
                infer = i;
            }
            else if (dims[i] < 0) throw new ArgumentException($"Reshape: negative dimension in {ShapeUtil.Format(shape)}.");
            else known *= dims[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || x.Length % known != 0)
                throw new ArgumentException($"Reshape: cannot infer -1 reshaping {x.ShapeText} to {ShapeUtil.Format(shape)}.");
            dims[infer] = (int)(x.Length / known);
        }
        if (ShapeUtil.Count(dims) != x.Length)
            throw new ArgumentException($"Reshape: {x.ShapeText} ({x.Length} elements) cannot become {ShapeUtil.Format(shape)} ({ShapeUtil.Count(dims)} elements).");
        var src = x.IsTransposed ? Contiguous(x) : x;
        var y = src.ViewOf(src.Offset, dims, false);
        if (Graph.Needs(src))
            Graph.Record("reshape", y, [src], gy =>
            {
                var (gx, acc) = Graph.GradSlot(src);
                src.Device.Backend.Scale(gy, 1f, gx, acc);
            });
        return y;
    }

    /// <summary>Swaps the last two axes without copying.</summary>
    public static Tensor TransposeLast2(Tensor x)
    {
        if (x.Rank < 2) throw new ArgumentException($"Transpose: needs at least 2 dimensions, got {x.ShapeText}.");
        var shape = (int[])x.ShapeArray.Clone();
        (shape[^1], shape[^2]) = (shape[^2], shape[^1]);
        var y = x.ViewOf(x.Offset, shape, !x.IsTransposed);
        if (Graph.Needs(x))
            Graph.Record("transpose", y, [x], gy =>
            {
                // gy is contiguous in y's logical shape [.., n, m]; x's gradient is [.., m, n].
                var rows = gy.Dim(-2);
                var cols = gy.Dim(-1);
                var batch = gy.Length / Math.Max(1, rows * cols);
                var (gx, acc) = Graph.GradSlot(x);
                if (!acc)
                {
                    x.Device.Backend.Transpose(gy, gx, batch, rows, cols);
                    return;
                }
                var tmp = Tensor.EmptyIn(x.Device, x.ShapeArray, MemoryScope.Current);
                x.Device.Backend.Transpose(gy, tmp, batch, rows, cols);
                x.Device.Backend.Scale(tmp, 1f, gx, true);
            });
        return y;
    }

    /// <summary>Rows [start, start + count) of the first axis, as a view.</summary>
    public static Tensor Slice(Tensor x, int start, int count)
    {
        if (x.Rank < 1) throw new ArgumentException("Slice: cannot slice a scalar.");
        if (start < 0 || count < 0 || start + count > x.Dim(0))
            throw new ArgumentOutOfRangeException(nameof(start), $"Slice: rows [{start}, {start + count}) are outside the first axis of {x.ShapeText}.");
        var src = x.IsTransposed && x.Rank == 2 ? Contiguous(x) : x;
        var row = src.Length / Math.Max(1, src.Dim(0));
        var shape = (int[])src.ShapeArray.Clone();
        shape[0] = count;
        var y = src.ViewOf(src.Offset + start * row, shape, src.IsTransposed);
        if (Graph.Needs(src))
            Graph.Record("slice", y, [src], gy =>
            {
                var gx = Graph.GradZeroed(src);
                var part = gx.ViewOf(gx.Offset + start * row, shape, false);
                src.Device.Backend.Scale(gy, 1f, part, true);
            });
        return y;
    }

    /// <summary>The tensor itself if contiguous, else a contiguous copy (differentiable).</summary>
    public static Tensor Contiguous(Tensor x)
    {
        if (!x.IsTransposed) return x;
        var y = Tensor.Empty(x.Device, (int[])x.ShapeArray.Clone());
        // Storage holds [.., cols, rows] where the logical view is [.., rows, cols].
        var rows = x.Dim(-2);
        var cols = x.Dim(-1);
        var batch = x.Length / Math.Max(1, rows * cols);
        x.Device.Backend.Transpose(x, y, batch, cols, rows);
        if (Graph.Needs(x))
            Graph.Record("contiguous", y, [x], gy =>
            {
                var (gx, acc) = Graph.GradSlot(x);
                x.Device.Backend.Scale(gy, 1f, gx, acc);
            });
        return y;
    }

    /// <summary>A copy with its own memory (differentiable).</summary>
    public static Tensor Clone(Tensor x)
    {
        var src = Contiguous(x);
        var y = Tensor.Empty(x.Device, (int[])x.ShapeArray.Clone());
        x.Device.Backend.Copy(src, y);
        if (Graph.Needs(src))
            Graph.Record("clone", y, [src], gy =>
            {
                var (gx, acc) = Graph.GradSlot(src);
                src.Device.Backend.Scale(gy, 1f, gx, acc);
            });
        return y;
    }

    internal static void AddInPlace(Tensor y, float value) => y.Device.Backend.AddScalar(y, value);

    internal static void AddInPlace(Tensor y, Tensor x) => y.Device.Backend.Scale(x, 1f, y, true);
}
