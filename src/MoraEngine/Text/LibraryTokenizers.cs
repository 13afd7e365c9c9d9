using System.Text;
using Microsoft.ML.Tokenizers;

namespace MoraEngine.Text;

/// <summary>A Microsoft.ML.Tokenizers tokenizer (byte-level BPE, tiktoken, SentencePiece Unigram) behind <see cref="TextTokenizer"/>.</summary>
internal sealed class MlTokenizer : TextTokenizer
{
    private readonly Tokenizer _tokenizer;
    private readonly Func<string, IReadOnlyList<int>> _encode;
    private readonly Func<int, string?>? _tokenString;

    public MlTokenizer(string kind, Tokenizer tokenizer, int vocabSize, Func<string, IReadOnlyList<int>>? encode = null, Func<int, string?>? tokenString = null)
    {
        Kind = kind;
        _tokenizer = tokenizer;
        VocabSize = vocabSize;
        _encode = encode ?? (t => tokenizer.EncodeToIds(t));
        _tokenString = tokenString;
    }

    public override string Kind { get; }

    public override int VocabSize { get; }

    /// <summary>The wrapped Microsoft.ML.Tokenizers object.</summary>
    public Tokenizer Inner => _tokenizer;

    public override int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Length == 0 ? [] : [.. _encode(text)];
    }

    public override string Decode(ReadOnlySpan<int> ids)
    {
        CheckIds(ids);
        return ids.IsEmpty ? "" : _tokenizer.Decode(ids.ToArray());
    }

    public override string? TokenString(int id) => _tokenString?.Invoke(id);
}

/// <summary>
/// SentencePiece-style BPE (LLaMA, TinyLlama, Mistral): from a tokenizer.model or from a tokenizer.json with a "▁"
/// (Metaspace) scheme. The merging itself is Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>, given the pieces and
/// merges (for a tokenizer.model: derived from the piece scores, as Hugging Face's converter does); this class adds
/// what that BPE lacks: the "▁" normalization (for a tokenizer.model, the library's SentencePiece normalizer), byte
/// fallback (a character that is no piece becomes its UTF-8 bytes' &lt;0xXX&gt; pieces), and the decoding
/// (sentencepiece's rules for a tokenizer.model: <see cref="SentencePieceModelFile.Decode"/>).
/// </summary>
/// <remarks>
/// Why not <see cref="LlamaTokenizer"/> for the encoding: in Microsoft.ML.Tokenizers 2.0.1 its BPE breaks ties between
/// equal-score pairs from the right, SentencePiece from the left, so a run of spaces ("▁▁▁") comes out as "▁","▁▁"
/// instead of SentencePiece's "▁▁","▁". Merge ranks in <see cref="BpeTokenizer"/> break ties from the left.
/// </remarks>
internal sealed class SentencePieceBpeTokenizer : TextTokenizer
{
    private readonly BpeTokenizer _bpe;
    private readonly Func<string, bool, string> _normalize;
    private readonly Func<int[], string> _decode;
    private readonly int _unkId;          // what the BPE reports for a character that is no piece
    private readonly int? _modelUnkId;    // the model's own unknown id (null: none)
    private readonly int[]? _byteIds;     // byte fallback: id of <0xXX> for each byte
    private readonly System.Text.RegularExpressions.Regex? _specials;
    private readonly Dictionary<string, int> _specialIds;
    private readonly Dictionary<int, string> _specialById = [];
    private readonly string?[] _pieces;

    /// <param name="kind">Kind name.</param>
    /// <param name="pieces">Piece of each id (null where an id has none).</param>
    /// <param name="merges">"left right" merges, best first.</param>
    /// <param name="unkId">The model's unknown-piece id, if any.</param>
    /// <param name="byteFallback">Characters that are no piece become their &lt;0xXX&gt; byte pieces.</param>
    /// <param name="fuseUnknown">Consecutive unknown characters give one unknown token (without byte fallback).</param>
    /// <param name="normalize">Text segment → "▁" text; the flag says whether the segment starts the text.</param>
    /// <param name="decode">Ids → text; null: the tokenizer.json decoding below with <paramref name="stripLeadingSpace"/>.</param>
    /// <param name="stripLeadingSpace">For the built-in decoding: drop one leading space (the dummy prefix's).</param>
    /// <param name="specialTokens">Added tokens recognised whole in the text (tokenizer.json); empty for tokenizer.model, as SentencePiece parses none.</param>
    public SentencePieceBpeTokenizer(string kind, string?[] pieces, IEnumerable<string> merges, int? unkId, bool byteFallback, bool fuseUnknown,
        Func<string, bool, string> normalize, Func<int[], string>? decode, bool stripLeadingSpace, IReadOnlyDictionary<string, int> specialTokens)
    {
        Kind = kind;
        _pieces = pieces;
        _normalize = normalize;
        _modelUnkId = unkId;
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < pieces.Length; i++)
            if (pieces[i] is { } p) vocab.TryAdd(p, i);
        VocabSize = Math.Max(pieces.Length, specialTokens.Count == 0 ? 0 : specialTokens.Values.Max() + 1);
        string unkPiece;
        if (unkId is { } u && (uint)u < (uint)pieces.Length && pieces[u] != null)
        {
            unkPiece = pieces[u]!;
            _unkId = u;
        }
        else
        {
            // The BPE needs an unknown token to report characters that are no piece; this one never leaves the class.
            unkPiece = "\uFFFF<unk>\uFFFF";
            _unkId = VocabSize;
            vocab[unkPiece] = _unkId;
        }
        if (byteFallback)
        {
            _byteIds = new int[256];
            for (var b = 0; b < 256; b++)
                if (!vocab.TryGetValue($"<0x{b:X2}>", out _byteIds[b])) { _byteIds = null; break; }
        }
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            UnknownToken = unkPiece,
            FuseUnknownTokens = fuseUnknown,
            PreTokenizer = new MetaspaceChunks(vocab.Keys),
        });
        _specialIds = new Dictionary<string, int>(specialTokens, StringComparer.Ordinal);
        foreach (var kv in _specialIds) _specialById.TryAdd(kv.Value, kv.Key);
        if (_specialIds.Count > 0)
            _specials = new System.Text.RegularExpressions.Regex(
                string.Join("|", _specialIds.Keys.Where(k => k.Length > 0).OrderByDescending(k => k.Length).Select(System.Text.RegularExpressions.Regex.Escape)));
        var stripOne = stripLeadingSpace;
        _decode = decode ?? (ids => DecodePieces(ids, stripOne));
    }

    public override string Kind { get; }

    public override int VocabSize { get; }

    public override int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        if (text.Length == 0) return [];
        var at = 0;
        if (_specials != null)
            foreach (System.Text.RegularExpressions.Match m in _specials.Matches(text))
            {
                if (m.Index > at) EncodeSegment(text[at..m.Index], at == 0, ids);
                ids.Add(_specialIds[m.Value]);
                at = m.Index + m.Length;
            }
        if (at < text.Length) EncodeSegment(text[at..], at == 0, ids);
        return [.. ids];
    }

    private void EncodeSegment(string segment, bool first, List<int> ids)
    {
        var norm = _normalize(segment, first);
        if (norm.Length == 0) return;
        foreach (var t in _bpe.EncodeToTokens(norm, out _))
        {
            if (t.Id != _unkId)
            {
                ids.Add(t.Id);
                continue;
            }
            if (_byteIds != null)
                foreach (var b in Encoding.UTF8.GetBytes(norm[t.Offset]))
                    ids.Add(_byteIds[b]);
            else if (_modelUnkId is { } u) ids.Add(u);
            else throw new ArgumentException($"{Kind} tokenizer: '{norm[t.Offset]}' is not in the vocabulary, and the model has neither byte fallback nor an unknown token.");
        }
    }

    public override string Decode(ReadOnlySpan<int> ids)
    {
        CheckIds(ids);
        return ids.IsEmpty ? "" : _decode(ids.ToArray());
    }

    public override string? TokenString(int id) =>
        _specialById.TryGetValue(id, out var s) ? s : (uint)id < (uint)_pieces.Length ? _pieces[id] : null;

    /// <summary>tokenizer.json's Replace("▁"→" ") + ByteFallback + Fuse + Strip decoders: added tokens as written.</summary>
    private string DecodePieces(int[] ids, bool stripLeadingSpace)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            var special = _specialById.GetValueOrDefault(id);
            var piece = special ?? ((uint)id < (uint)_pieces.Length ? _pieces[id] : null);
            if (piece == null) continue;
            if (special == null && _byteIds != null && IsBytePiece(piece, out var b))
            {
                bytes.Add(b);
                continue;
            }
            if (special == null) piece = piece.Replace('▁', ' ');
            bytes.AddRange(Encoding.UTF8.GetBytes(piece));
        }
        var text = Utf8.DecodeEachBadByte(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
        return stripLeadingSpace && text.StartsWith(' ') ? text[1..] : text;
    }

    private static bool IsBytePiece(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out value);
    }
}
