using MoraEngine.Autograd;
using MoraEngine.Nn;

namespace MoraEngine.Examples.Uuid;

/// <summary>One evaluation of a model on the fixed pairs.</summary>
/// <param name="Step">Fine-tuning steps done (0 = the base model).</param>
/// <param name="CharAccuracy">Teacher-forced argmax accuracy over the 36 value characters of every pair (&lt;eos&gt; excluded).</param>
/// <param name="ExactMatch">Fraction of pairs whose whole value greedy decoding reproduces.</param>
/// <param name="Loss">Mean cross-entropy over the scored tokens (value and &lt;eos&gt;), as in training.</param>
public sealed record UuidEvalPoint(int Step, double CharAccuracy, double ExactMatch, double Loss);

/// <summary>The demo's metrics.</summary>
public static class UuidEvaluation
{
    /// <summary>Rows per evaluation forward pass: the default training batch, so evaluations reuse the training step's buffers.</summary>
    public const int EvalBatch = 32;

    /// <summary>
    /// Character accuracy, exact match and loss on all pairs, from one teacher-forced forward pass per batch.
    /// Exact match is computed as "every value character is the argmax given the true prefix", which is exactly
    /// when greedy decoding reproduces the value (by induction over the characters: each greedy step then sees the
    /// true prefix); <see cref="GreedyExactMatch"/> checks it by actually decoding.
    /// </summary>
    public static UuidEvalPoint Evaluate(TransformerModel model, UuidPairs pairs, int step)
    {
        const int t = UuidVocab.Time;
        const int v = UuidVocab.Size;
        var wasTraining = model.Training;
        model.Eval();
        long correct = 0, exact = 0, scored = 0;
        double lossSum = 0;
        var row = new int[UuidVocab.RowLength];
        try
        {
            using var _ = Graph.NoGrad();
            for (var start = 0; start < pairs.Count; start += EvalBatch)
            {
                var b = Math.Min(EvalBatch, pairs.Count - start);
                var ids = new int[b * t];
                for (var i = 0; i < b; i++)
                {
                    UuidVocab.FillRow(pairs.KeyTokens[start + i], pairs.ValueTokens[start + i], row);
                    Array.Copy(row, 0, ids, i * t, t);
                }
                float[] logits;
                using (MemoryScope.Begin()) logits = model.Forward(ids, b, t).ToArray();
                for (var i = 0; i < b; i++)
                {
                    var value = pairs.ValueTokens[start + i];
                    var allRight = true;
                    // Input position p (SEP .. last) predicts row[p + 1]: the value's characters, then <eos>.
                    for (var p = UuidVocab.SepPosition; p < t; p++)
                    {
                        var isEos = p == t - 1;
                        var target = isEos ? UuidVocab.Eos : value[p - UuidVocab.SepPosition];
                        var o = (i * t + p) * v;
                        var best = 0;
                        var max = logits[o];
                        for (var k = 1; k < v; k++)
                            if (logits[o + k] > max)
                            {
                                max = logits[o + k];
                                best = k;
                            }
                        double sum = 0;
                        for (var k = 0; k < v; k++) sum += Math.Exp(logits[o + k] - max);
                        lossSum += Math.Log(sum) + max - logits[o + target];
                        scored++;
                        if (isEos) continue;
                        if (best == target) correct++;
                        else allRight = false;
                    }
                    if (allRight) exact++;
                }
            }
        }
        finally
        {
            if (wasTraining) model.Train();
        }
        return new UuidEvalPoint(step, (double)correct / ((long)pairs.Count * UuidVocab.UuidLength), (double)exact / pairs.Count, lossSum / scored);
    }

    /// <summary>Greedy decoding: the 36 value characters the model writes after <c>&lt;bos&gt; key &lt;sep&gt;</c>.</summary>
    public static string[] GreedyDecode(TransformerModel model, IReadOnlyList<int[]> keys) =>
        GreedyDecodeTokens(model, keys).Select(v => UuidVocab.Decode(v)).ToArray();

    /// <summary>
    /// Greedy decoding as tokens (special tokens included, should the model write them), one pair at a time with a
    /// key/value cache: the prefix runs once, then one position per character, in buffers reused for every pair.
    /// </summary>
    public static int[][] GreedyDecodeTokens(TransformerModel model, IReadOnlyList<int[]> keys)
    {
        var wasTraining = model.Training;
        var result = new int[keys.Count][];
        try
        {
            var gen = new Generation.TextGenerator(model, UuidVocab.Time);
            var prefix = new int[UuidVocab.SepPosition + 1];
            for (var p = 0; p < keys.Count; p++)
            {
                prefix[0] = UuidVocab.Bos;
                keys[p].CopyTo(prefix, 1);
                prefix[UuidVocab.SepPosition] = UuidVocab.Sep;
                var value = new int[UuidVocab.UuidLength];
                var logits = gen.Prefill(prefix);
                for (var i = 0; i < value.Length; i++)
                {
                    value[i] = Generation.Sampler.ArgMax(logits);
                    if (i + 1 < value.Length) logits = gen.Step(value[i]);
                }
                result[p] = value;
            }
        }
        finally
        {
            if (wasTraining) model.Train();
        }
        return result;
    }

    /// <summary>Fraction of pairs whose value greedy decoding reproduces exactly.</summary>
    public static double GreedyExactMatch(TransformerModel model, UuidPairs pairs)
    {
        var decoded = GreedyDecode(model, pairs.KeyTokens);
        var hits = 0;
        for (var i = 0; i < pairs.Count; i++)
            if (decoded[i] == pairs.Values[i]) hits++;
        return (double)hits / pairs.Count;
    }
}
