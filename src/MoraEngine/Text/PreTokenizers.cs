using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace MoraEngine.Text;

/// <summary>
/// Hugging Face pre-tokenization for Microsoft.ML.Tokenizers' BPE: special (added) tokens are cut out whole first,
/// then each step splits every remaining piece further (tokenizer.json's <c>Split</c>, <c>Digits</c> and the
/// <c>ByteLevel</c> regex, alone or in a <c>Sequence</c>).
/// </summary>
internal sealed class HfPreTokenizer : PreTokenizer
{
    /// <summary>GPT-2's pre-tokenization regex (encoder.py; the ByteLevel pre-tokenizer's use_regex).</summary>
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>One split step: how a regex's matches cut a piece.</summary>
    internal enum Behavior
    {
        /// <summary>Matches and the text between them are all pieces.</summary>
        Isolated,

        /// <summary>Matches are dropped; the text between them is kept.</summary>
        Removed,
    }

    internal readonly record struct Step(Regex Pattern, Behavior Behavior);

    private readonly Regex? _specials;
    private readonly Step[] _steps;

    public HfPreTokenizer(IEnumerable<Step> steps, IEnumerable<string>? specialTokens)
    {
        _steps = steps.ToArray();
        var specials = specialTokens?.Where(s => s.Length > 0).Distinct().OrderByDescending(s => s.Length).ToArray() ?? [];
        if (specials.Length > 0) _specials = new Regex(string.Join("|", specials.Select(Regex.Escape)), RegexOptions.CultureInvariant);
    }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => PreTokenize(text.ToString());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text)
    {
        var result = new List<(int, int)>();
        if (string.IsNullOrEmpty(text)) return result;
        var at = 0;
        if (_specials != null)
            foreach (Match m in _specials.Matches(text))
            {
                Split(text, at, m.Index - at, 0, result);
                result.Add((m.Index, m.Length));
                at = m.Index + m.Length;
            }
        Split(text, at, text.Length - at, 0, result);
        return result;
    }

    private void Split(string text, int offset, int length, int step, List<(int, int)> into)
    {
        if (length == 0) return;
        if (step == _steps.Length)
        {
            into.Add((offset, length));
            return;
        }
        var (regex, behavior) = _steps[step];
        var at = offset;
        var end = offset + length;
        foreach (var m in regex.EnumerateMatches(text.AsSpan(offset, length)))
        {
            if (m.Length == 0) continue;
            var start = offset + m.Index;
            Split(text, at, start - at, step + 1, into);
            if (behavior == Behavior.Isolated) Split(text, start, m.Length, step + 1, into);
            at = start + m.Length;
        }
        Split(text, at, end - at, step + 1, into);
    }
}

/// <summary>
/// The whole text as one piece, as SentencePiece's BPE sees it, except that it is cut before each run of "▁" that
/// follows another character when no vocabulary piece holds "▁" after another character: then no merge can join
/// the two sides, the cut changes nothing, and long texts stay fast.
/// </summary>
internal sealed class MetaspaceChunks : PreTokenizer
{
    private readonly bool _cut;

    public MetaspaceChunks(IEnumerable<string> pieces)
    {
        _cut = !pieces.Any(p =>
        {
            for (var i = 1; i < p.Length; i++)
                if (p[i] == '▁' && p[i - 1] != '▁') return true;
            return false;
        });
    }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => PreTokenize(text.AsSpan());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text)
    {
        var result = new List<(int, int)>();
        if (text.IsEmpty) return result;
        var start = 0;
        if (_cut)
            for (var i = 1; i < text.Length; i++)
                if (text[i] == '▁' && text[i - 1] != '▁')
                {
                    result.Add((start, i - start));
                    start = i;
                }
        result.Add((start, text.Length - start));
        return result;
    }
}

/// <summary>A chain of tokenizer.json normalizer steps (and the ByteLevel pre-tokenizer's add_prefix_space).</summary>
internal sealed class HfNormalizer : Normalizer
{
    private readonly Func<string, string>[] _steps;

    public HfNormalizer(IEnumerable<Func<string, string>> steps) => _steps = steps.ToArray();

    public bool IsEmpty => _steps.Length == 0;

    public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());

    public override string Normalize(string original)
    {
        var s = original;
        foreach (var f in _steps) s = f(s);
        return s;
    }

    internal static Func<string, string> Unicode(NormalizationForm form) => s => s.IsNormalized(form) ? s : s.Normalize(form);
}

/// <summary>GPT-2's reversible byte ↔ printable-character table (encoder.py's bytes_to_unicode).</summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = Build();

    private static char[] Build()
    {
        var map = new char[256];
        var n = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    /// <summary>The readable text of a byte-level vocabulary string (e.g. "Ġthe" → " the"); null if it is not one.</summary>
    public static string? ToText(string piece)
    {
        var bytes = new byte[piece.Length];
        for (var i = 0; i < piece.Length; i++)
        {
            var idx = Array.IndexOf(ByteToChar, piece[i]);
            if (idx < 0) return null;
            bytes[i] = (byte)idx;
        }
        return Encoding.UTF8.GetString(bytes);
    }
}
