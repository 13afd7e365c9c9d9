namespace MoraEngine.Generation;

/// <summary>Picks the next token from logits: greedy, or temperature / top-k / top-p sampling. Reuses its buffers (nothing allocated per token).</summary>
internal sealed class Sampler(int vocab)
{
    private readonly double[] _probs = new double[vocab];
    private readonly int[] _order = new int[vocab];
    private readonly float[] _keys = new float[vocab];
    private Comparer<int>? _byLogit;

    public int Choose(ReadOnlySpan<float> logits, GenerationOptions o, Rng rng)
    {
        if (o.Temperature == 0) return ArgMax(logits);
        var n = logits.Length;
        for (var i = 0; i < n; i++) _order[i] = i;
        // Most likely first (ties: lower id first, so the order is deterministic).
        var keys = _keys;
        logits.CopyTo(keys);
        _byLogit ??= Comparer<int>.Create((a, b) => keys[b].CompareTo(keys[a]) is var c && c != 0 ? c : a.CompareTo(b));
        Array.Sort(_order, 0, n, _byLogit);
        var keep = o.TopK > 0 ? Math.Min(o.TopK, n) : n;
        double max = keys[_order[0]], sum = 0;
        for (var i = 0; i < keep; i++)
        {
            var p = Math.Exp((keys[_order[i]] - max) / o.Temperature);
            _probs[i] = p;
            sum += p;
        }
        if (o.TopP < 1)
        {
            // The smallest prefix whose probability reaches P (at least one token).
            double cum = 0;
            var cut = keep;
            for (var i = 0; i < keep; i++)
            {
                cum += _probs[i] / sum;
                if (cum >= o.TopP) { cut = i + 1; break; }
            }
            keep = cut;
            sum = 0;
            for (var i = 0; i < keep; i++) sum += _probs[i];
        }
        var u = rng.NextDouble() * sum;
        for (var i = 0; i < keep; i++)
        {
            u -= _probs[i];
            if (u < 0) return _order[i];
        }
        return _order[keep - 1];
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
}
