using MoraEngine.Nn;

namespace MoraEngine.Generation;

/// <summary>
/// Keys and values of every past position, per layer, for incremental decoding at batch 1. Each layer holds
/// [kvHeads, capacity, headDim] for keys and for values (head-major, so one head's keys are one contiguous matrix
/// for the score GEMM), written once per position. Buffers are allocated once, outside any memory scope, and reused.
/// </summary>
public sealed class KvCache
{
    internal KvCache(TransformerModel model, int capacity)
    {
        var c = model.Config;
        if (capacity <= 0 || capacity > c.Context)
            throw new ArgumentOutOfRangeException(nameof(capacity), $"KvCache: capacity {capacity} must be in [1, {c.Context}] (the model's context).");
        Capacity = capacity;
        KvHeads = c.KvHeadsResolved;
        Heads = c.Heads;
        HeadDim = c.HeadDim;
        var device = model.TokEmb.Weight.Device;
        Keys = new Tensor[c.Layers];
        Values = new Tensor[c.Layers];
        for (var i = 0; i < c.Layers; i++)
        {
            Keys[i] = Tensor.EmptyIn(device, [KvHeads, capacity, HeadDim], null);
            Values[i] = Tensor.EmptyIn(device, [KvHeads, capacity, HeadDim], null);
        }
        Scores = Tensor.EmptyIn(device, [Heads * capacity], null);
        Probs = Tensor.EmptyIn(device, [Heads * capacity], null);
    }

    /// <summary>Positions the cache can hold.</summary>
    public int Capacity { get; }

    /// <summary>Positions written so far (the next token's position).</summary>
    public int Length { get; internal set; }

    internal int Heads { get; }
    internal int KvHeads { get; }
    internal int HeadDim { get; }
    internal Tensor[] Keys { get; }
    internal Tensor[] Values { get; }
    internal Tensor Scores { get; }
    internal Tensor Probs { get; }

    /// <summary>Forgets every position (the buffers stay).</summary>
    public void Clear() => Length = 0;
}
