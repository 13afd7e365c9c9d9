namespace MoraEngine.Training;

/// <summary>One training batch of token ids [Batch, Time] and next-token targets (−100 = not scored).</summary>
public sealed class Batch
{
    public Batch(int batch, int time)
    {
        BatchSize = batch;
        Time = time;
        Ids = new int[batch * time];
        Targets = new int[batch * time];
    }

    public int BatchSize { get; }
    public int Time { get; }
    public int[] Ids { get; }
    public int[] Targets { get; }
}

/// <summary>Produces batches; its whole state is a seeded generator, so a checkpoint can resume it exactly.</summary>
public interface IBatchSource
{
    /// <summary>Vocabulary size the source's ids need.</summary>
    int VocabSize { get; }

    /// <summary>Fills the next batch (the same <see cref="Batch"/> object may be reused every step).</summary>
    void Next(Batch batch);

    /// <summary>Generator state for checkpoints.</summary>
    uint[] GetState();

    void SetState(uint[] state);
}

/// <summary>
/// Byte-level language modelling on a text: each row is a random window of <c>time + 1</c> bytes of the file.
/// </summary>
public sealed class TextBatchSource : IBatchSource
{
    private readonly byte[] _data;
    private readonly Rng _rng;

    /// <param name="data">The token bytes.</param>
    /// <param name="seed">Window sampling seed.</param>
    /// <param name="vocabSize">Vocabulary the bytes are drawn from (256 for text; smaller for synthetic data).</param>
    public TextBatchSource(byte[] data, ulong seed, int vocabSize = 256)
    {
        if (data.Length < 2) throw new ArgumentException("TextBatchSource: the text needs at least 2 bytes.");
        if (vocabSize is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(vocabSize), $"TextBatchSource: vocabulary must be 1..256, got {vocabSize}.");
        foreach (var b in data)
            if (b >= vocabSize) throw new ArgumentException($"TextBatchSource: byte {b} is outside the vocabulary of {vocabSize}.");
        _data = data;
        _rng = new Rng(seed);
        VocabSize = vocabSize;
    }

    /// <summary>Reads a UTF-8 (or any) file as bytes; a clear error if it is missing or too short for the context.</summary>
    public static TextBatchSource FromFile(string path, int context, ulong seed)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Training text '{path}' does not exist.", path);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < context + 1)
            throw new ArgumentException($"Training text '{path}' has {bytes.Length} bytes; it needs at least context + 1 = {context + 1}.");
        return new TextBatchSource(bytes, seed);
    }

    public int VocabSize { get; }

    public void Next(Batch batch)
    {
        var t = batch.Time;
        if (_data.Length < t + 1) throw new InvalidOperationException($"TextBatchSource: text of {_data.Length} bytes is shorter than a window of {t + 1}.");
        for (var b = 0; b < batch.BatchSize; b++)
        {
            var start = _rng.NextInt(_data.Length - t);
            for (var i = 0; i < t; i++)
            {
                batch.Ids[b * t + i] = _data[start + i];
                batch.Targets[b * t + i] = _data[start + i + 1];
            }
        }
    }

    public uint[] GetState() => _rng.GetState();

    public void SetState(uint[] state) => _rng.SetState(state);
}

/// <summary>
/// The built-in task that needs no download: copy a random string. A row is
/// <c>BOS s₁ … s_L SEP s₁ … s_L</c>; only the copy after SEP is scored. The prefix determines the copy exactly, so a
/// model that has learned to copy reaches a loss near 0, while one that has not is stuck near ln(alphabet) (it can
/// only guess each symbol).
/// </summary>
public sealed class CopyTaskSource : IBatchSource
{
    public const int Bos = 0;
    public const int Sep = 1;
    private const int FirstSymbol = 2;
    private readonly Rng _rng;
    private int[]? _row;

    /// <param name="length">Symbols to copy (rows are 2·length + 1 tokens long).</param>
    /// <param name="alphabet">Distinct symbols.</param>
    /// <param name="seed">Generator seed.</param>
    public CopyTaskSource(int length, int alphabet, ulong seed)
    {
        if (length <= 0) throw new ArgumentOutOfRangeException(nameof(length), $"CopyTaskSource: length must be positive, got {length}.");
        if (alphabet < 2) throw new ArgumentOutOfRangeException(nameof(alphabet), $"CopyTaskSource: alphabet must be at least 2, got {alphabet}.");
        Length = length;
        Alphabet = alphabet;
        _rng = new Rng(seed);
    }

    public int Length { get; }

    public int Alphabet { get; }

    /// <summary>Tokens per row (inputs): BOS, L symbols, SEP, L symbols minus the last one.</summary>
    public int Time => 2 * Length + 1;

    public int VocabSize => Alphabet + FirstSymbol;

    /// <summary>The loss of a model that guesses copied symbols uniformly: ln(alphabet).</summary>
    public double ChanceLoss => Math.Log(Alphabet);

    public void Next(Batch batch)
    {
        if (batch.Time != Time) throw new ArgumentException($"CopyTaskSource: batch time {batch.Time} must be 2·length + 1 = {Time}.");
        var row = _row ??= new int[Time + 1];
        for (var b = 0; b < batch.BatchSize; b++)
        {
            row[0] = Bos;
            for (var i = 0; i < Length; i++) row[1 + i] = FirstSymbol + _rng.NextInt(Alphabet);
            row[Length + 1] = Sep;
            for (var i = 0; i < Length; i++) row[Length + 2 + i] = row[1 + i];
            for (var i = 0; i < Time; i++)
            {
                batch.Ids[b * Time + i] = row[i];
                // Score only predictions of copied symbols (the token after SEP onwards).
                batch.Targets[b * Time + i] = i >= Length + 1 ? row[i + 1] : -100;
            }
        }
    }

    public uint[] GetState() => _rng.GetState();

    public void SetState(uint[] state) => _rng.SetState(state);
}
