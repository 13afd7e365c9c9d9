namespace MoraEngine.Text;

/// <summary>
/// Streaming decode for generation: <see cref="Append"/> one id at a time and get the text it completes.
/// The concatenation of every <see cref="Append"/> result and a final <see cref="Flush"/> equals
/// <see cref="TextTokenizer.Decode"/> of all the ids.
/// </summary>
/// <remarks>
/// It decodes a short window of ids (from the token before the last emitted text to the newest) and emits what the
/// newest ids added. Text that ends in an incomplete UTF-8 character (a byte-level or byte-fallback token that split
/// it: the decode ends in U+FFFD) is held back until the character completes. The window starts one token back, so a
/// SentencePiece tokenizer's leading-space rule (the first token's "▁" is dropped) applies alike to both decodes and
/// the space before each later word comes out.
/// </remarks>
public sealed class TokenTextStream
{
    private readonly TextTokenizer _tokenizer;
    private readonly List<int> _ids = [];
    private int _prefix;   // window start: the text of ids[_prefix.._read) has been emitted
    private int _read;

    public TokenTextStream(TextTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
    }

    /// <summary>Every id appended so far.</summary>
    public IReadOnlyList<int> Ids => _ids;

    /// <summary>Adds one id; returns the newly completed text (often empty, never an incomplete character).</summary>
    public string Append(int id)
    {
        _ids.Add(id);
        var ids = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        string done, now;
        try
        {
            done = _tokenizer.Decode(ids[_prefix.._read]);
            now = _tokenizer.Decode(ids[_prefix..]);
        }
        catch
        {
            _ids.RemoveAt(_ids.Count - 1);   // a bad id leaves the stream as it was
            throw;
        }
        if (now.Length <= done.Length || now[^1] == '\uFFFD') return "";
        _prefix = _read;
        _read = _ids.Count;
        return now[done.Length..];
    }

    /// <summary>End of the stream: returns whatever is held back (an incomplete character comes out as U+FFFD).</summary>
    public string Flush()
    {
        var ids = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        var done = _tokenizer.Decode(ids[_prefix.._read]);
        var now = _tokenizer.Decode(ids[_prefix..]);
        if (now.Length <= done.Length) return "";
        _prefix = _read;
        _read = _ids.Count;
        return now[done.Length..];
    }
}
