using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MoraEngine.Adapters;
using MoraEngine.Autograd;
using MoraEngine.Linalg;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;

namespace MoraEngine.Examples.Paper;

/// <summary>A held-out evaluation during training.</summary>
public sealed record CurvePoint(int Step, double ValLoss);

/// <summary>
/// The singular values of one layer's ΔW = W_end − W_start: how many exceed <see cref="PaperSettings.SpectrumThreshold"/>
/// × σ_max, and the histogram of σ/σ_max over the decades [1, 0.1), [0.1, 0.01), [0.01, 0.001), [0.001, 0.0001) and below.
/// </summary>
public sealed record LayerSpectrum(string Layer, int In, int Out, int Count, int[] Histogram);

/// <summary>Spectra of every targeted layer of a run, and their mean count.</summary>
public sealed record RunSpectra(double Threshold, double MeanCount, IReadOnlyList<LayerSpectrum> Layers)
{
    /// <summary>Lower edges of the histogram bins (σ/σ_max).</summary>
    public static double[] BinEdges { get; } = [0.1, 0.01, 0.001, 0.0001, 0];
}

/// <summary>One training run: a method at a rate on a seed, its curve and final numbers.</summary>
/// <param name="Setup"><c>pretrain</c>, <c>continual</c> or <c>task:NAME</c>.</param>
/// <param name="Phase"><c>grid</c> (choosing the rate, on the grid seed) or <c>final</c>.</param>
/// <param name="TrainableParams">Everything that trains (adapters plus embeddings, norms and head in pretraining).</param>
/// <param name="AdapterParams">The adapters' own parameters (0 for FFT): the equal budget.</param>
/// <param name="Metrics">Extra final numbers (cloze accuracy, forgetting, task accuracy, …).</param>
/// <param name="DivergedAt">The step whose loss or gradient was not finite, if any (the run stops there).</param>
public sealed record PaperRun(string Setup, string Phase, string Method, int? Rank, int? MoraType, float Lr, ulong Seed,
    long TrainableParams, long AdapterParams, IReadOnlyList<CurvePoint> Curve, double FinalValLoss,
    IReadOnlyDictionary<string, double> Metrics, RunSpectra? Spectra, double Seconds, int? DivergedAt)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public MethodSpec Spec => MethodSpec.Parse(Method);
}

/// <summary>What a run's seed gives it: training batches, the held-out loss and the final metrics.</summary>
internal sealed record SeedData(IBatchSource Train, Func<TransformerModel, double> Eval, Func<TransformerModel, IReadOnlyDictionary<string, double>>? Final = null);

/// <summary>What every run of one setup shares.</summary>
internal sealed class RunSetup
{
    /// <summary><c>pretrain</c>, <c>continual</c>, <c>task:addition</c>, …</summary>
    public required string Name { get; init; }

    /// <summary>Everything that defines a run besides its method, rate and seed (the cache key's base).</summary>
    public required string Fingerprint { get; init; }

    /// <summary>The starting model for a seed (random for pretraining, the pretrained base otherwise).</summary>
    public required Func<ulong, TransformerModel> NewModel { get; init; }

    /// <summary>Embeddings, norms and head train in every method (pretraining, as in ReLoRA and the paper).</summary>
    public required bool TrainEmbeddingsNormsHead { get; init; }

    public required Func<ulong, SeedData> Data { get; init; }

    /// <summary>Compute ΔW spectra at the end.</summary>
    public bool Spectra { get; init; }

    /// <summary>The primary metric is a loss (lower is better) used for the grid.</summary>
    public string ValName { get; init; } = "val_loss";
}

/// <summary>Progress of the suite, reported after every step on the calling thread.</summary>
/// <param name="Label">What runs: <c>base</c> or <c>setup method lr seed</c>.</param>
/// <param name="Run">1-based index of the run in the suite (0 for the base model).</param>
public sealed record PaperProgress(string Label, int Run, int Runs, int Step, int TotalSteps, float Loss, double? ValLoss, bool Cached, bool Done);

/// <summary>Trains runs and keeps each finished one in the cache, so an interrupted suite resumes where it stopped.</summary>
internal sealed class PaperRunner(PaperSettings s)
{
    /// <summary>Bump when what a run computes changes, so cached runs are not reused.</summary>
    public const string Version = "paper-v3";

    internal static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public PaperSettings Settings => s;

    public string? CachePath(RunSetup setup, MethodSpec m, float lr, ulong seed)
    {
        if (s.CacheDir == null) return null;
        var key = string.Join("|", Version, setup.Fingerprint, m.Spec, lr.ToString("R", CultureInfo.InvariantCulture), seed.ToString(CultureInfo.InvariantCulture), s.Device);
        return Path.Combine(s.CacheDir, "runs", Hash(key) + ".json");
    }

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..20];

    /// <summary>A run from the cache, or trained now (and then cached).</summary>
    public PaperRun Run(RunSetup setup, MethodSpec m, float lr, ulong seed, string phase, int index, int count, IProgress<PaperProgress>? progress, CancellationToken cancel)
    {
        var label = string.Create(CultureInfo.InvariantCulture, $"{setup.Name} {m.Spec} lr {lr:G3} seed {seed}{(phase == "grid" ? " (grid)" : "")}");
        var path = CachePath(setup, m, lr, seed);
        if (path != null && File.Exists(path))
        {
            try
            {
                var cached = JsonSerializer.Deserialize<PaperRun>(File.ReadAllText(path), Json);
                if (cached != null && cached.Method == m.Spec && cached.Seed == seed)
                {
                    progress?.Report(new PaperProgress(label, index, count, s.Steps, s.Steps, float.NaN, cached.FinalValLoss, true, true));
                    return cached with { Phase = phase };
                }
            }
            catch (JsonException)
            {
                // A damaged cache entry (a crash while writing is prevented by the rename, but a user may edit it): train again.
            }
        }
        var run = Train(setup, m, lr, seed, phase, label, index, count, progress, cancel);
        if (path != null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var tmp = $"{path}.tmp-{Environment.ProcessId}";
            File.WriteAllText(tmp, JsonSerializer.Serialize(run, Json));
            File.Move(tmp, path, overwrite: true);
        }
        return run;
    }

    private PaperRun Train(RunSetup setup, MethodSpec m, float lr, ulong seed, string phase, string label, int index, int count,
        IProgress<PaperProgress>? progress, CancellationToken cancel)
    {
        var sw = Stopwatch.StartNew();
        var model = setup.NewModel(seed);
        var data = setup.Data(seed);
        var targets = model.Linears().Where(l => !ReferenceEquals(l.Layer, model.Head) && PaperSettings.Targets.Contains(l.Name[(l.Name.LastIndexOf('.') + 1)..])).ToList();
        var start = setup.Spectra ? targets.Select(t => t.Layer.Weight.ToArray()).ToList() : null;
        var adapted = m.Attach(model, seed + 3, PaperSettings.Targets, setup.TrainEmbeddingsNormsHead);
        if (adapted != null && setup.TrainEmbeddingsNormsHead)
            foreach (var (_, module) in model.NamedModules())
                if (module is RmsNorm or LayerNorm) module.Unfreeze();
        model.To(Devices.ParseOption(s.Device));
        var adapterParams = adapted?.AdapterParameters().Sum(p => (long)p.Length) ?? 0;
        var trainable = model.TrainableParameterCount();
        var opt = new AdamW(model.TrainableParameters(), lr, weightDecay: 0f);
        var schedule = m.Schedule(lr, s.Warmup, s.Steps);
        var trainer = new Trainer(model, opt, schedule, data.Train, new TrainerOptions { BatchSize = s.Batch, Time = s.Time, Seed = seed });
        m.AddRestarts(trainer, adapted, s.RestartEvery);

        var curve = new List<CurvePoint> { new(0, data.Eval(model)) };
        progress?.Report(new PaperProgress(label, index, count, 0, s.Steps, float.NaN, curve[0].ValLoss, false, false));
        int? diverged = null;
        var loss = float.NaN;
        while (trainer.Step < s.Steps)
        {
            cancel.ThrowIfCancellationRequested();
            try
            {
                loss = trainer.TrainStep();
            }
            catch (TrainingDivergedException e)
            {
                diverged = e.Step + 1;
                break;
            }
            if (trainer.Step % s.EvalEvery == 0 || trainer.Step == s.Steps) curve.Add(new CurvePoint(trainer.Step, data.Eval(model)));
            progress?.Report(new PaperProgress(label, index, count, trainer.Step, s.Steps, loss, curve[^1].ValLoss, false, false));
        }
        // A diverged run keeps its last finite weights, but its result counts as failed (infinite loss) for the grid.
        var final = diverged == null ? curve[^1].ValLoss : double.PositiveInfinity;
        var metrics = new Dictionary<string, double>();
        if (diverged == null && data.Final != null)
            foreach (var (k, v) in data.Final(model)) metrics[k] = v;
        RunSpectra? spectra = null;
        if (start != null && diverged == null)
        {
            adapted?.Merge();
            spectra = Spectra(targets, start);
        }
        progress?.Report(new PaperProgress(label, index, count, s.Steps, s.Steps, loss, final, false, true));
        return new PaperRun(setup.Name, phase, m.Spec, m.Rank, m.MoraType is { } t ? (int)t : null, lr, seed, trainable, adapterParams,
            curve, final, metrics, spectra, Math.Round(sw.Elapsed.TotalSeconds, 2), diverged);
    }

    /// <summary>Singular values of W_end − W_start for every targeted layer (adapters merged).</summary>
    internal static RunSpectra Spectra(IReadOnlyList<(string Name, Linear Layer)> layers, IReadOnlyList<float[]> start)
    {
        var list = new List<LayerSpectrum>();
        for (var i = 0; i < layers.Count; i++)
        {
            var (name, layer) = layers[i];
            var w = layer.Weight.ToArray();
            var delta = new double[w.Length];
            for (var j = 0; j < w.Length; j++) delta[j] = (double)w[j] - start[i][j];
            var sv = Svd.SingularValues(delta, layer.OutFeatures, layer.InFeatures);
            list.Add(new LayerSpectrum(name, layer.InFeatures, layer.OutFeatures, Svd.SignificantCount(sv, PaperSettings.SpectrumThreshold), Histogram(sv)));
        }
        return new RunSpectra(PaperSettings.SpectrumThreshold, list.Count == 0 ? 0 : list.Average(l => l.Count), list);
    }

    /// <summary>Counts of σ/σ_max per decade (see <see cref="RunSpectra.BinEdges"/>); an all-zero ΔW has an empty histogram.</summary>
    internal static int[] Histogram(IReadOnlyList<double> sv)
    {
        var h = new int[RunSpectra.BinEdges.Length];
        var max = sv.Count == 0 ? 0 : sv.Max();
        if (!(max > 0)) return h;
        foreach (var v in sv)
        {
            var r = v / max;
            var bin = Array.FindIndex(RunSpectra.BinEdges, e => r >= e);
            h[bin < 0 ? h.Length - 1 : bin]++;
        }
        return h;
    }
}

/// <summary>Held-out numbers computed on a model without training it.</summary>
internal static class PaperEval
{
    /// <summary>
    /// Mean next-byte loss on <paramref name="rows"/> fixed windows of <paramref name="time"/> + 1 bytes spread evenly
    /// over <paramref name="text"/> (the same windows at every call).
    /// </summary>
    public static double TextLoss(TransformerModel model, byte[] text, int rows, int batch, int time)
    {
        if (text.Length < time + 1) throw new InvalidDataException($"The held-out text has {text.Length} bytes, fewer than a window of {time + 1}.");
        model.Eval();
        var span = text.Length - time - 1;
        var ids = new int[batch * time];
        var targets = new int[batch * time];
        double sum = 0;
        var done = 0;
        while (done < rows)
        {
            var b = Math.Min(batch, rows - done);
            for (var r = 0; r < b; r++)
            {
                var startAt = rows == 1 ? 0 : (int)((long)span * (done + r) / (rows - 1));
                for (var t = 0; t < time; t++)
                {
                    ids[r * time + t] = text[startAt + t];
                    targets[r * time + t] = text[startAt + t + 1];
                }
            }
            using (Graph.NoGrad())
            using (MemoryScope.Begin())
                sum += (double)model.Loss(b == batch ? ids : ids[..(b * time)], b == batch ? targets : targets[..(b * time)], b, time).Item() * b;
            done += b;
        }
        model.Train();
        return sum / rows;
    }

    /// <summary>
    /// Per row, the summed log-probability of its scored tokens and whether every scored token is the model's top
    /// choice (teacher-forced exact match, which equals greedy decoding up to the first miss).
    /// </summary>
    public static (double[] LogProb, bool[] Exact) Score(TransformerModel model, TokenDataset rows, int batch = 16)
    {
        model.Eval();
        var time = rows.Time;
        var vocab = model.Config.VocabSize;
        var logProb = new double[rows.Count];
        var exact = new bool[rows.Count];
        var ids = new int[batch * time];
        for (var i = 0; i < rows.Count; i += batch)
        {
            var b = Math.Min(batch, rows.Count - i);
            for (var j = 0; j < b; j++) rows.Row(i + j).Ids.CopyTo(ids, j * time);
            float[] logits;
            using (Graph.NoGrad())
            using (MemoryScope.Begin())
                logits = model.Forward(b == batch ? ids : ids[..(b * time)], b, time).ToArray();
            for (var j = 0; j < b; j++)
            {
                var targets = rows.Row(i + j).Targets;
                double lp = 0;
                var ok = true;
                for (var t = 0; t < time; t++)
                {
                    var y = targets[t];
                    if (y < 0) continue;
                    var row = logits.AsSpan((j * time + t) * vocab, vocab);
                    var max = float.NegativeInfinity;
                    var arg = 0;
                    for (var v = 0; v < vocab; v++)
                        if (row[v] > max)
                        {
                            max = row[v];
                            arg = v;
                        }
                    double z = 0;
                    for (var v = 0; v < vocab; v++) z += Math.Exp(row[v] - max);
                    lp += row[y] - max - Math.Log(z);
                    if (arg != y) ok = false;
                }
                logProb[i + j] = lp;
                exact[i + j] = ok;
            }
        }
        model.Train();
        return (logProb, exact);
    }
}
