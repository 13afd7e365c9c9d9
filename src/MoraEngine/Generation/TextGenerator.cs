using MoraEngine.Autograd;
using MoraEngine.Nn;

namespace MoraEngine.Generation;

/// <summary>Decoding settings, as in Hugging Face's <c>generate</c>.</summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens to generate at most (fewer when eos comes first or the context is full).</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>0 picks the most likely token (greedy); above 0 samples from softmax(logits / T).</summary>
    public float Temperature { get; init; }

    /// <summary>Sample only among the K most likely tokens (0: all).</summary>
    public int TopK { get; init; }

    /// <summary>Nucleus sampling: the smallest set of most likely tokens whose probability reaches P (1: all).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Sampling seed.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Stops after emitting this id (null: the model config's eos, if any).</summary>
    public int? EosTokenId { get; init; }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad field.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException($"GenerationOptions: MaxNewTokens must be ≥ 0, got {MaxNewTokens}.");
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentException($"GenerationOptions: Temperature must be ≥ 0 and finite, got {Temperature}.");
        if (TopK < 0) throw new ArgumentException($"GenerationOptions: TopK must be ≥ 0, got {TopK}.");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"GenerationOptions: TopP must be in (0, 1], got {TopP}.");
    }
}

/// <summary>
/// Incremental decoding at batch 1 with a key/value cache: the prompt is run once (full causal attention, its keys
/// and values kept), then each new token costs one position's worth of work, attending to the cache. Works with
/// adapters attached (merged or not) and on any device; buffers are reused from token to token.
/// </summary>
public sealed class TextGenerator
{
    private readonly TransformerModel _model;
    private readonly KvCache _cache;
    private readonly float[] _logits;
    private readonly int[] _position = new int[1];
    private readonly int[] _one = new int[1];

    /// <param name="model">The model (switched to evaluation mode).</param>
    /// <param name="capacity">Positions to cache; default the model's context.</param>
    public TextGenerator(TransformerModel model, int? capacity = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _cache = new KvCache(model, capacity ?? model.Config.Context);
        _logits = new float[model.Config.VocabSize];
    }

    /// <summary>The cache (its <see cref="KvCache.Length"/> is the number of positions seen).</summary>
    public KvCache Cache => _cache;

    /// <summary>Clears the cache and runs <paramref name="ids"/> as a fresh prefix; returns the logits after its last token.</summary>
    public ReadOnlySpan<float> Prefill(ReadOnlySpan<int> ids)
    {
        if (ids.Length == 0) throw new ArgumentException("TextGenerator.Prefill: the prompt is empty (give at least one token, e.g. BOS).", nameof(ids));
        if (ids.Length > _cache.Capacity)
            throw new ArgumentException($"TextGenerator.Prefill: {ids.Length} prompt tokens exceed the cache's {_cache.Capacity} positions (the model's context is {_model.Config.Context}).", nameof(ids));
        CheckIds(ids);
        _cache.Clear();
        Run(ids.ToArray());
        return _logits;
    }

    /// <summary>Appends one token at the next position; returns the logits for the position after it.</summary>
    public ReadOnlySpan<float> Step(int id)
    {
        if (_cache.Length == 0) throw new InvalidOperationException("TextGenerator.Step: call Prefill first.");
        if (_cache.Length >= _cache.Capacity)
            throw new InvalidOperationException($"TextGenerator.Step: the cache is full ({_cache.Capacity} positions).");
        _one[0] = id;
        CheckIds(_one);
        Run(_one);
        return _logits;
    }

    private void CheckIds(ReadOnlySpan<int> ids)
    {
        foreach (var id in ids)
            if ((uint)id >= (uint)_model.Config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), $"TextGenerator: token id {id} is outside the vocabulary [0, {_model.Config.VocabSize}).");
    }

    /// <summary>
    /// Generates after <paramref name="prompt"/>, yielding each new id as soon as it is chosen (the eos id included,
    /// then it stops). Stops at <see cref="GenerationOptions.MaxNewTokens"/> or when the cache is full.
    /// </summary>
    public IEnumerable<int> Generate(IReadOnlyList<int> prompt, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var eos = options.EosTokenId ?? _model.Config.EosTokenId;
        var rng = new Rng(options.Seed);
        var sampler = new Sampler(_model.Config.VocabSize);
        return Iterate();

        IEnumerable<int> Iterate()
        {
            if (options.MaxNewTokens == 0) yield break;
            var logits = Prefill(prompt.ToArray());
            for (var n = 0; n < options.MaxNewTokens; n++)
            {
                var next = sampler.Choose(logits, options, rng);
                yield return next;
                if (next == eos || n + 1 == options.MaxNewTokens || _cache.Length >= _cache.Capacity) yield break;
                logits = Step(next);
            }
        }
    }

    private void Run(int[] ids)
    {
        var m = _model;
        var c = m.Config;
        m.Eval();
        int T = ids.Length, start = _cache.Length, D = c.DModel;
        using var noGrad = Graph.NoGrad();
        using var scope = MemoryScope.Begin();
        var x = m.TokEmb.Forward(ids, 1, T);
        if (m.PosEmb != null)
        {
            var pos = T == 1 ? _position : new int[T];
            for (var t = 0; t < T; t++) pos[t] = start + t;
            x = Ops.Add(x, m.PosEmb.Forward(pos, 1, T));
        }
        for (var l = 0; l < m.Blocks.Length; l++)
        {
            var b = m.Blocks[l];
            var (q, k, v) = b.Attn.Project(b.Norm1(x), start);
            Store(l, k, v, start, T);
            Tensor att;
            if (start == 0)
            {
                // The prompt: full causal attention over itself.
                var groups = c.Heads / c.KvHeadsResolved;
                if (groups > 1)
                {
                    k = Ops.RepeatHeads(k, c.KvHeadsResolved, groups);
                    v = Ops.RepeatHeads(v, c.KvHeadsResolved, groups);
                }
                att = Ops.CausalSelfAttention(q, k, v, c.Heads);
            }
            else
            {
                if (T != 1) throw new InvalidOperationException("TextGenerator: after the prompt, tokens are added one at a time.");
                att = Attend(l, q, start + 1);
            }
            x = Ops.Add(x, b.Attn.O.Forward(att));
            x = Ops.Add(x, b.Mlp.Forward(b.Norm2(x)));
        }
        var last = T == 1 ? Ops.Reshape(x, 1, D) : Ops.Slice(Ops.Reshape(x, T, D), T - 1, 1);
        var logits = m.Logits(last);
        logits.Device.Backend.Download(Ops.Contiguous(logits), _logits);
        _cache.Length = start + T;
    }

    /// <summary>Writes positions [start, start + T) of k and v [1, T, kvHeads·hd] into the layer's cache.</summary>
    private void Store(int layer, Tensor k, Tensor v, int start, int T)
    {
        int hd = _cache.HeadDim, kvh = _cache.KvHeads, cap = _cache.Capacity, width = kvh * hd;
        StoreOne(Ops.Contiguous(k), _cache.Keys[layer], start, T, hd, kvh, cap, width);
        StoreOne(Ops.Contiguous(v), _cache.Values[layer], start, T, hd, kvh, cap, width);
    }

    private static void StoreOne(Tensor src, Tensor cache, int start, int T, int hd, int kvh, int cap, int width)
    {
        var be = src.Device.Backend;
        if (T == 1)
        {
            // One position: every head's row lands at the same offset within its head block.
            var dst = cache.ViewOf(cache.Offset + start * hd, [cache.Length - start * hd], false);
            be.CopyColumns(src, 0, hd, dst, 0, cap * hd, kvh, hd, false);
        }
        else
            for (var h = 0; h < kvh; h++)
            {
                var dst = cache.ViewOf(cache.Offset + (h * cap + start) * hd, [cache.Length - (h * cap + start) * hd], false);
                be.CopyColumns(src, h * hd, width, dst, 0, hd, T, hd, false);
            }
    }

    /// <summary>One query position [1, 1, heads·hd] against the first <paramref name="length"/> cached positions.</summary>
    private Tensor Attend(int layer, Tensor q, int length)
    {
        int H = _cache.Heads, kvh = _cache.KvHeads, hd = _cache.HeadDim, cap = _cache.Capacity, g = H / kvh;
        q = Ops.Contiguous(q);
        var be = q.Device.Backend;
        var scores = _cache.Scores.ViewOf(_cache.Scores.Offset, [H, length], false);
        var probs = _cache.Probs.ViewOf(_cache.Probs.Offset, [H, length], false);
        var scale = 1f / MathF.Sqrt(hd);
        // Per key/value head j: its g query heads (contiguous in q) against its keys [length, hd].
        be.Gemm(kvh, g, length, hd, scale, q, false, (long)g * hd, _cache.Keys[layer], true, (long)cap * hd, 0f, scores, (long)g * length);
        be.Softmax(scores, probs, H, length, log: false);
        var output = Tensor.Empty(q.Device, [1, 1, H * hd]);
        be.Gemm(kvh, g, hd, length, 1f, probs, false, (long)g * length, _cache.Values[layer], false, (long)cap * hd, 0f, output, (long)g * hd);
        return output;
    }
}
