using MoraEngine.Autograd;
using MoraEngine.Nn;

namespace MoraEngine.Training;

/// <summary>The result of <see cref="Perplexity.Evaluate"/>: mean loss in nats per predicted token.</summary>
public sealed record PerplexityResult(long Tokens, long Predictions, double Loss)
{
    public double Perplexity => Math.Exp(Loss);
}

/// <summary>
/// Perplexity of a token stream: consecutive non-overlapping windows of <c>context</c> tokens (the last may be
/// shorter); each window predicts its own tokens 2..n from its prefix, and the loss is the mean over all
/// predictions (a window of one token predicts nothing). No BOS is inserted.
/// </summary>
public static class Perplexity
{
    /// <param name="model">The model (switched to evaluation mode).</param>
    /// <param name="tokens">The token stream.</param>
    /// <param name="context">Window length; default the model's context.</param>
    /// <param name="batch">Windows scored together.</param>
    /// <param name="progress">Called with (windows done, windows in all) after each batch.</param>
    public static PerplexityResult Evaluate(TransformerModel model, ReadOnlySpan<int> tokens, int? context = null, int batch = 8, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var n = context ?? model.Config.Context;
        if (n < 2 || n > model.Config.Context)
            throw new ArgumentOutOfRangeException(nameof(context), $"Perplexity: the window must be in [2, {model.Config.Context}] (the model's context), got {n}.");
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), $"Perplexity: batch must be positive, got {batch}.");
        foreach (var t in tokens)
            if ((uint)t >= (uint)model.Config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"Perplexity: token id {t} is outside the vocabulary [0, {model.Config.VocabSize}).");
        model.Eval();
        var full = tokens.Length / n;
        var rest = tokens.Length % n;
        var windows = full + (rest >= 2 ? 1 : 0);
        double sum = 0;
        long predictions = 0;
        var done = 0;
        var ids = new int[batch * n];
        var targets = new int[batch * n];
        for (var w = 0; w < full; w += batch)
        {
            var b = Math.Min(batch, full - w);
            for (var i = 0; i < b; i++)
                Fill(tokens.Slice((w + i) * n, n), ids.AsSpan(i * n, n), targets.AsSpan(i * n, n));
            sum += Score(model, ids.AsSpan(0, b * n), targets.AsSpan(0, b * n), b, n);
            predictions += (long)b * (n - 1);
            done += b;
            progress?.Invoke(done, windows);
        }
        if (rest >= 2)
        {
            Fill(tokens.Slice(full * n, rest), ids.AsSpan(0, rest), targets.AsSpan(0, rest));
            sum += Score(model, ids.AsSpan(0, rest), targets.AsSpan(0, rest), 1, rest);
            predictions += rest - 1;
            progress?.Invoke(++done, windows);
        }
        if (predictions == 0)
            throw new ArgumentException($"Perplexity: {tokens.Length} tokens give nothing to predict (a window needs at least 2).", nameof(tokens));
        return new PerplexityResult(tokens.Length, predictions, sum / predictions);
    }

    private static void Fill(ReadOnlySpan<int> window, Span<int> ids, Span<int> targets)
    {
        window.CopyTo(ids);
        for (var t = 0; t < window.Length; t++) targets[t] = t + 1 < window.Length ? window[t + 1] : -100;
    }

    /// <summary>The summed loss of one batch of windows.</summary>
    private static double Score(TransformerModel model, ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int b, int t)
    {
        using var noGrad = Graph.NoGrad();
        using var scope = MemoryScope.Begin();
        var loss = model.Loss(ids.ToArray(), targets.ToArray(), b, t).Item();
        return (double)loss * b * (t - 1);
    }
}
