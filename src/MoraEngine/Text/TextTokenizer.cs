namespace MoraEngine.Text;

/// <summary>
/// Text ↔ token ids for a model. <see cref="Encode"/> never adds BOS or EOS: a caller that wants them prepends
/// <see cref="BosId"/> or appends <see cref="EosId"/> itself.
/// </summary>
/// <remarks>
/// Implementations: <see cref="ByteTokenizer"/> (the engine's own byte-level scheme) and the Hugging Face model
/// directory tokenizers that <see cref="HfTokenizer.FromDirectory"/> builds on Microsoft.ML.Tokenizers.
/// </remarks>
public abstract class TextTokenizer
{
    /// <summary>What this is, e.g. <c>byte</c>, <c>bpe-bytelevel</c>, <c>sentencepiece-bpe</c>, <c>tiktoken</c>.</summary>
    public abstract string Kind { get; }

    /// <summary>Number of ids the model must embed: every id this tokenizer produces or decodes is below it.</summary>
    public abstract int VocabSize { get; }

    /// <summary>Beginning-of-sequence id, when the model has one.</summary>
    public int? BosId { get; internal set; }

    /// <summary>End-of-sequence id, when the model has one (the first, where the model lists several).</summary>
    public int? EosId { get; internal set; }

    /// <summary>The token ids of <paramref name="text"/>, without BOS or EOS.</summary>
    public abstract int[] Encode(string text);

    /// <summary>The text of <paramref name="ids"/>; an id outside 0..VocabSize−1 throws.</summary>
    public abstract string Decode(ReadOnlySpan<int> ids);

    /// <summary>The vocabulary's own string for one id (e.g. <c>Ġthe</c>, <c>▁the</c>, <c>&lt;0x0A&gt;</c>), or null where the tokenizer keeps none.</summary>
    public virtual string? TokenString(int id) => null;

    /// <summary>A streaming decoder for generation: feed ids one at a time, get the text each one completes.</summary>
    public TokenTextStream CreateStream() => new(this);

    /// <summary>Throws for an id outside the vocabulary, naming it.</summary>
    protected void CheckIds(ReadOnlySpan<int> ids)
    {
        var n = VocabSize;
        foreach (var id in ids)
            if ((uint)id >= (uint)n)
                throw new ArgumentOutOfRangeException(nameof(ids), $"{Kind} tokenizer: id {id} is outside the vocabulary of {n}.");
    }
}
