using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>Sum over one axis (removed unless <paramref name="keepDim"/>).</summary>
    public static Tensor Sum(Tensor x, int axis, bool keepDim = false) => Reduce("Sum", x, axis, keepDim, mean: false);

    /// <summary>Mean over one axis (removed unless <paramref name="keepDim"/>).</summary>
    public static Tensor Mean(Tensor x, int axis, bool keepDim = false) => Reduce("Mean", x, axis, keepDim, mean: true);

    /// <summary>Sum of all elements, as a scalar tensor.</summary>
    public static Tensor SumAll(Tensor x) => Sum(Reshape(x, x.Length), 0);

    /// <summary>Mean of all elements, as a scalar tensor.</summary>
    public static Tensor MeanAll(Tensor x) => Mean(Reshape(x, x.Length), 0);

    private static Tensor Reduce(string name, Tensor x, int axis, bool keepDim, bool mean)
    {
        if (x.Rank == 0) throw new ArgumentException($"{name}: cannot reduce a scalar over axis {axis}.");
        var ax = ShapeUtil.Axis(axis, x.Rank, name);
        x = Contiguous(x);
        var shape = x.ShapeArray;
        var outer = ShapeUtil.Prod(shape, 0, ax);
        var n = shape[ax];
        var inner = ShapeUtil.Prod(shape, ax + 1, shape.Length);
        var outShape = keepDim
            ? shape.Select((d, i) => i == ax ? 1 : d).ToArray()
            : shape.Where((_, i) => i != ax).ToArray();
        var scale = mean ? 1f / Math.Max(1, n) : 1f;
        var y = Tensor.Empty(x.Device, outShape);
        x.Device.Backend.ReduceSum(x, y, outer, n, inner, scale);
        if (Graph.Needs(x))
            Graph.Record(name, y, [x], gy =>
            {
                var (gx, acc) = Graph.GradSlot(x);
                x.Device.Backend.ExpandSum(gy, gx, outer, n, inner, scale, acc);
            });
        return y;
    }
}
