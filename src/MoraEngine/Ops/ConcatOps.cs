using System.Text;
using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// Joins tensors along the last axis: [.., w₀], [.., w₁], … → [.., Σwᵢ]. All other dimensions must be equal.
    /// </summary>
    public static Tensor Concat(params Tensor[] xs)
    {
        ArgumentNullException.ThrowIfNull(xs);
        if (xs.Length == 0) throw new ArgumentException("Concat: needs at least one tensor.", nameof(xs));
        var first = xs[0];
        if (first.Rank < 1)
            throw new ArgumentException($"Concat: cannot join scalars along the last axis (shapes {ShapesText(xs)}).", nameof(xs));
        var total = 0;
        foreach (var x in xs)
        {
            Tensor.SameDevice("Concat", first, x);
            if (x.Rank != first.Rank || !ShapeUtil.Equal(x.Shape[..^1], first.Shape[..^1]))
                throw new ArgumentException($"Concat: all dimensions but the last must match, got {ShapesText(xs)}.", nameof(xs));
            total += x.Dim(-1);
        }
        var src = new Tensor[xs.Length];
        for (var i = 0; i < xs.Length; i++) src[i] = Contiguous(xs[i]);
        var shape = (int[])first.ShapeArray.Clone();
        shape[^1] = total;
        var y = Tensor.Empty(first.Device, shape);
        var rows = ShapeUtil.Prod(shape, 0, shape.Length - 1);
        var be = first.Device.Backend;
        var col = 0;
        foreach (var x in src)
        {
            var w = x.Dim(-1);
            be.CopyColumns(x, 0, w, y, col, total, rows, w, false);
            col += w;
        }
        if (Graph.Needs(src))
            Graph.Record("Concat", y, src, gy =>
            {
                var c = 0;
                foreach (var x in src)
                {
                    var w = x.Dim(-1);
                    if (x.RequiresGrad)
                    {
                        var (gx, acc) = Graph.GradSlot(x);
                        be.CopyColumns(gy, c, total, gx, 0, w, rows, w, acc);
                    }
                    c += w;
                }
            });
        return y;
    }

    /// <summary>
    /// Cuts x along the last axis into pieces of the given widths (which must sum to the last dimension); the inverse
    /// of <see cref="Concat"/>. Each piece is a new contiguous tensor.
    /// </summary>
    public static Tensor[] Split(Tensor x, params int[] sizes)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        if (x.Rank < 1)
            throw new ArgumentException($"Split: cannot split a scalar (shape {x.ShapeText}).", nameof(x));
        var total = x.Dim(-1);
        long sum = 0;
        foreach (var s in sizes)
        {
            if (s < 0) throw new ArgumentException($"Split: negative size in [{string.Join(", ", sizes)}] for {x.ShapeText}.", nameof(sizes));
            sum += s;
        }
        if (sum != total)
            throw new ArgumentException($"Split: sizes [{string.Join(", ", sizes)}] sum to {sum}, not the last dimension {total} of {x.ShapeText}.", nameof(sizes));
        x = Contiguous(x);
        var rows = ShapeUtil.Prod(x.Shape, 0, x.Rank - 1);
        var be = x.Device.Backend;
        var outs = new Tensor[sizes.Length];
        var col = 0;
        for (var i = 0; i < sizes.Length; i++)
        {
            var w = sizes[i];
            var shape = (int[])x.ShapeArray.Clone();
            shape[^1] = w;
            var y = Tensor.Empty(x.Device, shape);
            be.CopyColumns(x, col, total, y, 0, w, rows, w, false);
            if (Graph.Needs(x))
            {
                var start = col;
                // Pieces may be unused, so x's gradient starts zeroed and every piece adds its columns.
                Graph.Record("Split", y, [x], gy =>
                    be.CopyColumns(gy, 0, w, Graph.GradZeroed(x), start, total, rows, w, true));
            }
            outs[i] = y;
            col += w;
        }
        return outs;
    }

    private static string ShapesText(Tensor[] xs)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < xs.Length; i++) sb.Append(i == 0 ? "" : ", ").Append(xs[i].ShapeText);
        return sb.ToString();
    }
}
