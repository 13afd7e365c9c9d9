using MoraEngine.Training;

namespace MoraEngine.Examples.Uuid;

/// <summary>
/// The character-level vocabulary of the UUID task: the 16 hex digits (ids 0–15), '-' (16) and the begin,
/// separator and end tokens. A row is <c>&lt;bos&gt; key &lt;sep&gt; value &lt;eos&gt;</c>: 75 tokens, of which
/// the model reads the first 74 and predicts the next token at each position.
/// </summary>
public static class UuidVocab
{
    public const int Dash = 16;
    public const int Bos = 17;
    public const int Sep = 18;
    public const int Eos = 19;
    public const int Size = 20;

    /// <summary>Characters of a UUID (8-4-4-4-12 with dashes).</summary>
    public const int UuidLength = 36;

    /// <summary>Tokens of a whole row: bos, key, sep, value, eos.</summary>
    public const int RowLength = 2 * UuidLength + 3;

    /// <summary>Tokens the model reads per row (the row minus its last token).</summary>
    public const int Time = RowLength - 1;

    /// <summary>Input position of &lt;sep&gt;: the prediction made there is the value's first character.</summary>
    public const int SepPosition = UuidLength + 1;

    private const string Hex = "0123456789abcdef";

    /// <summary>The token of a character ('0'–'9', 'a'–'f', '-').</summary>
    public static int Encode(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        '-' => Dash,
        _ => throw new ArgumentException($"UuidVocab: '{c}' is not a UUID character."),
    };

    /// <summary>The character of a token ('?' for the special tokens).</summary>
    public static char Decode(int token) => token switch
    {
        >= 0 and < 16 => Hex[token],
        Dash => '-',
        _ => '?',
    };

    /// <summary>A UUID's 36 tokens.</summary>
    public static int[] Encode(string uuid)
    {
        if (uuid.Length != UuidLength) throw new ArgumentException($"UuidVocab: a UUID has {UuidLength} characters, got {uuid.Length}.");
        return uuid.Select(Encode).ToArray();
    }

    public static string Decode(ReadOnlySpan<int> tokens)
    {
        var chars = new char[tokens.Length];
        for (var i = 0; i < tokens.Length; i++) chars[i] = Decode(tokens[i]);
        return new string(chars);
    }

    /// <summary>
    /// A random version-4 UUID (RFC 9562): 122 random bits, the version nibble 4 at character 14 and the variant
    /// nibble 8, 9, a or b at character 19.
    /// </summary>
    public static string NewUuid(Rng rng)
    {
        Span<char> c = stackalloc char[UuidLength];
        var k = 0;
        for (var i = 0; i < UuidLength; i++)
        {
            if (i is 8 or 13 or 18 or 23)
            {
                c[i] = '-';
                continue;
            }
            var nibble = rng.NextInt(16);
            if (k == 12) nibble = 4;
            else if (k == 16) nibble = 8 | (nibble & 3);
            c[i] = Hex[nibble];
            k++;
        }
        return new string(c);
    }

    /// <summary>Writes the 75 tokens of a row into <paramref name="row"/>.</summary>
    public static void FillRow(ReadOnlySpan<int> key, ReadOnlySpan<int> value, Span<int> row)
    {
        row[0] = Bos;
        key.CopyTo(row[1..]);
        row[SepPosition] = Sep;
        value.CopyTo(row[(SepPosition + 1)..]);
        row[RowLength - 1] = Eos;
    }

    /// <summary>Fills one batch row: inputs are the first 74 tokens; only the value and &lt;eos&gt; are scored.</summary>
    internal static void FillBatchRow(Batch batch, int b, ReadOnlySpan<int> row)
    {
        var t = Time;
        for (var i = 0; i < t; i++)
        {
            batch.Ids[b * t + i] = row[i];
            batch.Targets[b * t + i] = i >= SepPosition ? row[i + 1] : -100;
        }
    }
}

/// <summary>A fixed set of key → value pairs of random UUIDs, as tokens.</summary>
public sealed class UuidPairs
{
    public UuidPairs(int count, ulong seed)
    {
        if (count <= 0) throw new ArgumentException($"UuidPairs: the number of pairs must be positive, got {count}.");
        var rng = new Rng(seed);
        Keys = new string[count];
        Values = new string[count];
        KeyTokens = new int[count][];
        ValueTokens = new int[count][];
        for (var i = 0; i < count; i++)
        {
            Keys[i] = UuidVocab.NewUuid(rng);
            Values[i] = UuidVocab.NewUuid(rng);
            KeyTokens[i] = UuidVocab.Encode(Keys[i]);
            ValueTokens[i] = UuidVocab.Encode(Values[i]);
        }
    }

    /// <summary>Pairs given as tokens (tests; values may hold any token).</summary>
    internal UuidPairs(int[][] keys, int[][] values)
    {
        if (keys.Length != values.Length || keys.Length == 0) throw new ArgumentException("UuidPairs: need as many values as keys, at least one.");
        KeyTokens = keys;
        ValueTokens = values;
        Keys = keys.Select(k => UuidVocab.Decode(k)).ToArray();
        Values = values.Select(v => UuidVocab.Decode(v)).ToArray();
    }

    public int Count => Keys.Length;
    public string[] Keys { get; }
    public string[] Values { get; }
    internal int[][] KeyTokens { get; }
    internal int[][] ValueTokens { get; }
}

/// <summary>
/// The format stage's data: every row is a fresh random pair, so there is nothing to memorise, only the layout
/// (<c>&lt;bos&gt; 36 chars &lt;sep&gt; 36 chars &lt;eos&gt;</c>, dashes, the version and variant nibbles).
/// </summary>
public sealed class FreshUuidSource : IBatchSource
{
    private readonly Rng _rng;
    private readonly int[] _row = new int[UuidVocab.RowLength];

    public FreshUuidSource(ulong seed) => _rng = new Rng(seed);

    public int VocabSize => UuidVocab.Size;

    public void Next(Batch batch)
    {
        if (batch.Time != UuidVocab.Time) throw new ArgumentException($"FreshUuidSource: batch time {batch.Time} must be {UuidVocab.Time}.");
        for (var b = 0; b < batch.BatchSize; b++)
        {
            var key = UuidVocab.Encode(UuidVocab.NewUuid(_rng));
            var value = UuidVocab.Encode(UuidVocab.NewUuid(_rng));
            UuidVocab.FillRow(key, value, _row);
            UuidVocab.FillBatchRow(batch, b, _row);
        }
    }

    public uint[] GetState() => _rng.GetState();

    public void SetState(uint[] state) => _rng.SetState(state);
}

/// <summary>
/// The fine-tuning data: the fixed pairs in epochs, each epoch a fresh shuffle, so every pair is seen equally often.
/// Its state is the generator's state at the start of the epoch plus the position in it.
/// </summary>
public sealed class FixedPairsSource : IBatchSource
{
    private readonly UuidPairs _pairs;
    private readonly Rng _rng;
    private readonly int[] _order;
    private readonly int[] _row = new int[UuidVocab.RowLength];
    private uint[] _epochState;
    private int _cursor;

    public FixedPairsSource(UuidPairs pairs, ulong seed)
    {
        _pairs = pairs;
        _rng = new Rng(seed);
        _order = new int[pairs.Count];
        _epochState = _rng.GetState();
        Shuffle();
    }

    public int VocabSize => UuidVocab.Size;

    private void Shuffle()
    {
        _epochState = _rng.GetState();
        for (var i = 0; i < _order.Length; i++) _order[i] = i;
        for (var i = _order.Length - 1; i > 0; i--)
        {
            var j = _rng.NextInt(i + 1);
            (_order[i], _order[j]) = (_order[j], _order[i]);
        }
        _cursor = 0;
    }

    public void Next(Batch batch)
    {
        if (batch.Time != UuidVocab.Time) throw new ArgumentException($"FixedPairsSource: batch time {batch.Time} must be {UuidVocab.Time}.");
        for (var b = 0; b < batch.BatchSize; b++)
        {
            if (_cursor == _order.Length) Shuffle();
            var p = _order[_cursor++];
            UuidVocab.FillRow(_pairs.KeyTokens[p], _pairs.ValueTokens[p], _row);
            UuidVocab.FillBatchRow(batch, b, _row);
        }
    }

    public uint[] GetState() => [.. _epochState, (uint)_cursor];

    public void SetState(uint[] state)
    {
        if (state.Length != 5) throw new ArgumentException("FixedPairsSource: state must have 5 words.");
        _rng.SetState(state[..4]);
        Shuffle();
        _cursor = (int)state[4];
    }
}
