using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// Looks up rows of <paramref name="weight"/> [V, d]: the result has shape [..idsShape, d]
    /// (idsShape defaults to [ids.Length]). The backward scatter-adds into the weight gradient in index order, so
    /// repeated ids add up and the result is deterministic. <paramref name="ids"/> is copied when a backward is recorded.
    /// </summary>
    public static Tensor Embedding(Tensor weight, int[] ids, params int[] idsShape)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (weight.Rank != 2)
            throw new ArgumentException($"Embedding: weight must be a [V, d] matrix, got {weight.ShapeText}.", nameof(weight));
        var shape = idsShape is { Length: > 0 } ? (int[])idsShape.Clone() : [ids.Length];
        ShapeUtil.Validate(shape, "Embedding");
        if (ShapeUtil.Count(shape) != ids.Length)
            throw new ArgumentException($"Embedding: {ids.Length} ids do not fill ids shape {ShapeUtil.Format(shape)}.", nameof(idsShape));
        int vocab = weight.Dim(0), d = weight.Dim(1);
        for (var i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)vocab)
                throw new ArgumentException($"Embedding: id {ids[i]} at position {i} is outside [0, {vocab}) for weight {weight.ShapeText}.", nameof(ids));
        weight = Contiguous(weight);
        var be = weight.Device.Backend;
        var y = Tensor.Empty(weight.Device, [.. shape, d]);
        be.Embedding(weight, ids, y, d);
        if (Graph.Needs(weight))
        {
            var saved = (int[])ids.Clone();
            Graph.Record("Embedding", y, [weight], gy =>
            {
                var gw = Graph.GradZeroed(weight);
                be.EmbeddingBackward(gy, saved, gw, d);
            });
        }
        return y;
    }
}
