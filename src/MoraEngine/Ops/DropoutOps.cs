using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// Inverted dropout: while training, zeroes each element with probability <paramref name="p"/> and scales the
    /// rest by 1/(1 − p); the backward multiplies by the same mask. The mask is derived from one 64-bit draw of
    /// <paramref name="rng"/>, so the same seed gives the same mask. In evaluation (or with p = 0) it returns
    /// <paramref name="x"/> itself.
    /// </summary>
    public static Tensor Dropout(Tensor x, float p, Rng rng, bool training = true)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!(p >= 0f && p < 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, $"Dropout: p must be in [0, 1), got {p} (input {x.ShapeText}).");
        if (!training || p == 0f) return x;
        x = Contiguous(x);
        var be = x.Device.Backend;
        var seed = ((ulong)rng.NextUInt() << 32) | rng.NextUInt();
        var mask = Tensor.Empty(x.Device, (int[])x.ShapeArray.Clone());
        be.DropoutMask(mask, p, seed);
        var y = Tensor.Empty(x.Device, (int[])x.ShapeArray.Clone());
        be.ApplyMask(x, mask, y, false);
        if (Graph.Needs(x))
            Graph.Record("Dropout", y, [x], gy =>
            {
                var (gx, acc) = Graph.GradSlot(x);
                be.ApplyMask(gy, mask, gx, acc);
            });
        return y;
    }
}
