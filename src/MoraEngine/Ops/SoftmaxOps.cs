using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// Softmax over the last axis, stabilised by subtracting each row's maximum (no overflow for large logits).
    /// The backward uses the saved output: gx = y·(gy − Σ gy·y).
    /// </summary>
    public static Tensor Softmax(Tensor x) => SoftmaxImpl("Softmax", x, log: false);

    /// <summary>
    /// Log-softmax over the last axis, x − max − log Σ exp(x − max) (finite for large logits).
    /// The backward uses the saved output: gx = gy − exp(y)·Σ gy.
    /// </summary>
    public static Tensor LogSoftmax(Tensor x) => SoftmaxImpl("LogSoftmax", x, log: true);

    private static Tensor SoftmaxImpl(string name, Tensor x, bool log)
    {
        if (x.Rank < 1 || x.Dim(-1) == 0)
            throw new ArgumentException($"{name}: input {x.ShapeText} needs a non-empty last axis.", nameof(x));
        x = Contiguous(x);
        var d = x.Dim(-1);
        var rows = x.Length / d;
        var be = x.Device.Backend;
        var y = Tensor.Empty(x.Device, (int[])x.ShapeArray.Clone());
        be.Softmax(x, y, rows, d, log);
        if (Graph.Needs(x))
            Graph.Record(name, y, [x], gy =>
            {
                var (gx, acc) = Graph.GradSlot(x);
                be.SoftmaxBackward(y, gy, gx, rows, d, log, acc);
            });
        return y;
    }
}
