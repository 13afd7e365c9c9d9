using System.Text;
using System.Text.Json;
using MoraEngine.Autograd;
using MoraEngine.Nn;

namespace MoraEngine.Training;

/// <summary>
/// Tokenized training rows of a fixed length: packed text (documents joined by eos, cut into rows) or
/// prompt/completion pairs (one per row, loss on the completion and eos only). Files are read and tokenized
/// completely before anything trains; a malformed line is an error naming the file and the line.
/// </summary>
public sealed class TokenDataset
{
    private readonly List<int[]> _ids = new();
    private readonly List<int[]> _targets = new();

    private TokenDataset(int time, int vocab)
    {
        Time = time;
        VocabSize = vocab;
    }

    /// <summary>Tokens per row.</summary>
    public int Time { get; }

    /// <summary>Vocabulary the ids are drawn from (ids are checked against it).</summary>
    public int VocabSize { get; }

    public int Count => _ids.Count;

    /// <summary>Tokens read (before packing).</summary>
    public long Tokens { get; private set; }

    /// <summary>Prompt/completion examples cut short to fit a row.</summary>
    public int Truncated { get; private set; }

    /// <summary>Predicted (scored) positions in all rows.</summary>
    public long ScoredPositions => _targets.Sum(t => (long)t.Count(v => v >= 0));

    /// <summary>Row <paramref name="i"/>: ids and next-token targets (−100: not scored).</summary>
    public (int[] Ids, int[] Targets) Row(int i) => (_ids[i], _targets[i]);

    /// <summary>Options shared by the readers.</summary>
    /// <param name="Encode">Text → ids, without BOS or EOS.</param>
    /// <param name="Eos">Appended after every document and completion.</param>
    /// <param name="Bos">Prepended to every document and prompt when given (LLaMA-style tokenizers).</param>
    /// <param name="Time">Tokens per row (at most the model's context).</param>
    /// <param name="VocabSize">The model's vocabulary.</param>
    public sealed record Options(Func<string, int[]> Encode, int Eos, int? Bos, int Time, int VocabSize);

    /// <summary>Plain text files: each file is one document; all are tokenized, joined with eos and cut into rows.</summary>
    public static TokenDataset FromText(IEnumerable<string> paths, Options o)
    {
        var d = new TokenDataset(o.Time, o.VocabSize);
        var stream = new List<int>();
        foreach (var path in paths)
        {
            var text = ReadUtf8(path);
            d.AddDocument(stream, o, o.Encode(text), path, null);
        }
        d.Pack(stream, o, string.Join(", ", paths));
        return d;
    }

    /// <summary>
    /// JSON Lines: each non-empty line an object with <c>"text"</c> (packed like text files) or <c>"prompt"</c> and
    /// <c>"completion"</c> (one row each; only the completion and its eos are scored). Other fields are ignored.
    /// </summary>
    public static TokenDataset FromJsonl(string path, Options o)
    {
        var d = new TokenDataset(o.Time, o.VocabSize);
        var stream = new List<int>();
        var lineNo = 0;
        foreach (var line in ReadUtf8(path).Split('\n'))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement root;
            try
            {
                using var doc = JsonDocument.Parse(line);
                root = doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{lineNo}: not valid JSON ({e.Message}).", e);
            }
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}:{lineNo}: expected a JSON object, got {root.ValueKind}.");
            string? Field(string name)
            {
                if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
                return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new InvalidDataException($"{path}:{lineNo}: '{name}' must be a string, got {v.ValueKind}.");
            }
            var text = Field("text");
            var prompt = Field("prompt");
            var completion = Field("completion");
            if (text != null && (prompt != null || completion != null))
                throw new InvalidDataException($"{path}:{lineNo}: a line has either \"text\" or \"prompt\" and \"completion\", not both.");
            if (text != null) d.AddDocument(stream, o, o.Encode(text), path, lineNo);
            else if (prompt != null && completion != null) d.AddPair(o, o.Encode(prompt), o.Encode(completion), path, lineNo);
            else throw new InvalidDataException($"{path}:{lineNo}: expected \"text\", or \"prompt\" and \"completion\".");
        }
        d.Pack(stream, o, path);
        return d;
    }

    /// <summary>In-memory documents, packed like text files (each one followed by eos). <paramref name="what"/> names them in errors.</summary>
    public static TokenDataset FromDocuments(IEnumerable<string> documents, Options o, string what = "documents")
    {
        var d = new TokenDataset(o.Time, o.VocabSize);
        var stream = new List<int>();
        var i = 0;
        foreach (var text in documents) d.AddDocument(stream, o, o.Encode(text), what, ++i);
        d.Pack(stream, o, what);
        return d;
    }

    /// <summary>
    /// In-memory prompt/completion pairs, one row each, only the completion and its eos scored (an empty prompt scores
    /// the whole text). <paramref name="what"/> names them in errors, with the pair's 1-based index.
    /// </summary>
    /// <param name="pairs">Prompt and completion texts.</param>
    /// <param name="o">Tokenizer, eos/bos, row length and vocabulary.</param>
    /// <param name="what">Names the data in errors.</param>
    /// <param name="pack">
    /// Put as many whole examples in a row as fit, one after another (short examples then cost a fraction of a row
    /// each; an example still never spans two rows and only completions and their eos are scored). Later examples
    /// of a row see the earlier ones, as in packed pretraining.
    /// </param>
    public static TokenDataset FromPairs(IEnumerable<(string Prompt, string Completion)> pairs, Options o, string what = "pairs", bool pack = false)
    {
        var d = new TokenDataset(o.Time, o.VocabSize);
        var i = 0;
        var row = new List<(int Id, bool Scored)>(o.Time + 1);
        foreach (var (prompt, completion) in pairs)
        {
            ++i;
            if (!pack)
            {
                d.AddPair(o, o.Encode(prompt), o.Encode(completion), what, i);
                continue;
            }
            var p = o.Encode(prompt);
            var c = o.Encode(completion);
            d.Check(p, what, i);
            d.Check(c, what, i);
            d.Tokens += p.Length + c.Length;
            var seq = new List<(int, bool)>(p.Length + c.Length + 2);
            if (o.Bos is { } bos) seq.Add((bos, false));
            seq.AddRange(p.Select(t => (t, false)));
            seq.AddRange(c.Select(t => (t, true)));
            seq.Add((o.Eos, true));
            if (seq.Count > o.Time + 1)
                throw new InvalidDataException($"{what}:{i}: the example has {seq.Count} tokens with its eos, more than a row of {o.Time} + 1; packing never cuts an example.");
            if (row.Count + seq.Count > o.Time + 1) d.AddPackedRow(row, o);
            row.AddRange(seq);
        }
        if (row.Count > 0) d.AddPackedRow(row, o);
        if (d.Count == 0) throw new InvalidDataException($"{what}: no pairs.");
        return d;
    }

    /// <summary>One packed row: ids are the first Time tokens, padded with eos; a target is kept where the next token is scored.</summary>
    private void AddPackedRow(List<(int Id, bool Scored)> row, Options o)
    {
        var ids = new int[Time];
        var targets = new int[Time];
        for (var t = 0; t < Time; t++)
        {
            ids[t] = t < row.Count ? row[t].Id : o.Eos;
            targets[t] = t + 1 < row.Count && row[t + 1].Scored ? row[t + 1].Id : -100;
        }
        _ids.Add(ids);
        _targets.Add(targets);
        row.Clear();
    }

    /// <summary>Reads a file as strict UTF-8: invalid bytes are an error naming the file and the offset.</summary>
    private static string ReadUtf8(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Data file '{path}' does not exist.", path);
        var bytes = File.ReadAllBytes(path);
        try
        {
            var text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
            return text.Length > 0 && text[0] == '\uFEFF' ? text[1..] : text;
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"{path}: invalid UTF-8 at byte {e.Index}.", e);
        }
    }

    private void Check(int[] ids, string path, int? line)
    {
        foreach (var id in ids)
            if ((uint)id >= (uint)VocabSize)
                throw new InvalidDataException($"{path}{(line is { } l ? $":{l}" : "")}: token id {id} is outside the model's vocabulary of {VocabSize} (a tokenizer for another model?).");
    }

    private void AddDocument(List<int> stream, Options o, int[] ids, string path, int? line)
    {
        Check(ids, path, line);
        Tokens += ids.Length;
        if (o.Bos is { } bos) stream.Add(bos);
        stream.AddRange(ids);
        stream.Add(o.Eos);
    }

    private void AddPair(Options o, int[] prompt, int[] completion, string path, int line)
    {
        Check(prompt, path, line);
        Check(completion, path, line);
        Tokens += prompt.Length + completion.Length;
        var seq = new List<int>(prompt.Length + completion.Length + 2);
        if (o.Bos is { } bos) seq.Add(bos);
        seq.AddRange(prompt);
        var firstScored = seq.Count;   // the first completion token is predicted from the last prompt token
        seq.AddRange(completion);
        seq.Add(o.Eos);
        if (firstScored >= Time)
            throw new InvalidDataException($"{path}:{line}: the prompt alone has {firstScored} tokens, more than a row of {Time}; nothing of the completion would be trained.");
        if (seq.Count > Time + 1)
        {
            seq.RemoveRange(Time + 1, seq.Count - (Time + 1));
            Truncated++;
        }
        var ids = new int[Time];
        var targets = new int[Time];
        Array.Fill(targets, -100);
        for (var t = 0; t < Time; t++)
        {
            ids[t] = t < seq.Count ? seq[t] : o.Eos;
            if (t + 1 < seq.Count && t + 1 >= firstScored) targets[t] = seq[t + 1];
        }
        _ids.Add(ids);
        _targets.Add(targets);
    }

    /// <summary>Cuts the packed stream into rows of Time + 1 tokens (the last, shorter one masked at its end).</summary>
    private void Pack(List<int> stream, Options o, string what)
    {
        for (var start = 0; start + 1 < stream.Count; start += Time)
        {
            var n = Math.Min(Time + 1, stream.Count - start);
            var ids = new int[Time];
            var targets = new int[Time];
            for (var t = 0; t < Time; t++)
            {
                ids[t] = t < n ? stream[start + t] : o.Eos;
                targets[t] = t + 1 < n ? stream[start + t + 1] : -100;
            }
            _ids.Add(ids);
            _targets.Add(targets);
        }
        if (_ids.Count == 0) throw new InvalidDataException($"{what}: no training rows (the data is empty).");
    }

    /// <summary>
    /// Splits off the last rows as held-out data: <paramref name="fraction"/> of them, at least one when there are
    /// two or more rows (none otherwise).
    /// </summary>
    public (TokenDataset Train, TokenDataset? HeldOut) Split(double fraction)
    {
        if (fraction is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(fraction), $"TokenDataset.Split: fraction must be in [0, 1), got {fraction}.");
        var held = fraction == 0 || Count < 2 ? 0 : Math.Max(1, (int)Math.Round(Count * fraction));
        if (held == 0) return (this, null);
        var train = new TokenDataset(Time, VocabSize) { Tokens = Tokens, Truncated = Truncated };
        var test = new TokenDataset(Time, VocabSize);
        for (var i = 0; i < Count; i++)
        {
            var dst = i < Count - held ? train : test;
            dst._ids.Add(_ids[i]);
            dst._targets.Add(_targets[i]);
        }
        return (train, test);
    }

    /// <summary>Mean loss over every scored position of every row (evaluation mode, no gradients).</summary>
    public double Loss(TransformerModel model, int batch = 8)
    {
        model.Eval();
        double sum = 0;
        long count = 0;
        var ids = new int[batch * Time];
        var targets = new int[batch * Time];
        for (var i = 0; i < Count; i += batch)
        {
            var b = Math.Min(batch, Count - i);
            long scored = 0;
            for (var j = 0; j < b; j++)
            {
                _ids[i + j].CopyTo(ids, j * Time);
                _targets[i + j].CopyTo(targets, j * Time);
                scored += _targets[i + j].Count(v => v >= 0);
            }
            if (scored == 0) continue;
            using var noGrad = Graph.NoGrad();
            using var scope = MemoryScope.Begin();
            var loss = model.Loss(b == batch ? ids : ids[..(b * Time)], b == batch ? targets : targets[..(b * Time)], b, Time).Item();
            sum += (double)loss * scored;
            count += scored;
        }
        model.Train();
        return count == 0 ? double.NaN : sum / count;
    }

    /// <summary>A batch source drawing rows at random (seeded; its state is checkpointed).</summary>
    public IBatchSource Sampler(ulong seed) => new RowSampler(this, seed);

    private sealed class RowSampler(TokenDataset data, ulong seed) : IBatchSource
    {
        private readonly Rng _rng = new(seed);

        public int VocabSize => data.VocabSize;

        public void Next(Batch batch)
        {
            if (batch.Time != data.Time) throw new ArgumentException($"TokenDataset: batch time {batch.Time} differs from the rows' {data.Time}.");
            for (var b = 0; b < batch.BatchSize; b++)
            {
                var i = _rng.NextInt(data.Count);
                data._ids[i].CopyTo(batch.Ids, b * data.Time);
                data._targets[i].CopyTo(batch.Targets, b * data.Time);
            }
        }

        public uint[] GetState() => _rng.GetState();

        public void SetState(uint[] state) => _rng.SetState(state);
    }
}
