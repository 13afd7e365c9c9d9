using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using MoraEngine.Adapters;
using MoraEngine.IO;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;

namespace MoraEngine.Examples.Uuid;

/// <summary>What the experiment is doing, reported after every step (on the calling thread).</summary>
/// <param name="Stage"><see cref="UuidStage"/>.</param>
/// <param name="MethodIndex">Index in <see cref="UuidSettings.Methods"/> (−1 for the format stage).</param>
/// <param name="Label">"format" or the method's label.</param>
/// <param name="Step">Steps done in this stage.</param>
/// <param name="TotalSteps">Steps of this stage.</param>
/// <param name="Loss">The last training loss (NaN before the first step).</param>
/// <param name="LastEval">The latest evaluation in this stage, if any.</param>
/// <param name="Seconds">Seconds spent in this stage.</param>
/// <param name="Phase">Which part of the run: <c>seed N</c>, or <c>grid format-lr F lr L</c> while the grid runs.</param>
public sealed record UuidProgress(UuidStage Stage, int MethodIndex, string Label, int Step, int TotalSteps, float Loss, UuidEvalPoint? LastEval, double Seconds, string Phase = "");

public enum UuidStage
{
    /// <summary>Pre-training the base model on fresh pairs.</summary>
    Format,
    /// <summary>The base model came from the cache.</summary>
    FormatCached,
    FineTune,
    /// <summary>A method finished (its final evaluation is in LastEval).</summary>
    MethodDone,
}

/// <summary>
/// The MoRA paper's memory experiment at demo size: a small GPT learns the format of <c>&lt;bos&gt; key &lt;sep&gt;
/// value &lt;eos&gt;</c> rows of random UUIDs, then each method (full fine-tuning, LoRA, MoRA, ReLoRA, ReMoRA)
/// fine-tunes a copy of it on a fixed set of pairs with the same steps, batch and evaluation schedule.
/// </summary>
public static class UuidExperiment
{
    /// <summary>Bump when the format stage changes, so old cached base models are not reused.</summary>
    private const string FormatVersion = "uuid-format-v2";

    /// <summary>
    /// Runs every stage and returns the results (written nowhere; see <see cref="UuidResults.Write"/>): the grid
    /// when <see cref="UuidSettings.GridFormatLrs"/> is set, then every method for each of
    /// <see cref="UuidSettings.Seeds"/> seeds.
    /// </summary>
    public static UuidResults Run(UuidSettings s, IProgress<UuidProgress>? progress = null, CancellationToken cancel = default)
    {
        s.Validate();
        UuidGrid? grid = null;
        if (s.GridFormatLrs != null)
        {
            grid = RunGrid(s, progress, cancel);
            s = grid.Apply(s);
        }
        var bases = new List<UuidBaseInfo>();
        var runs = new List<UuidRun>();
        for (var k = 0; k < s.Seeds; k++)
        {
            var seeded = s with { Seed = s.Seed + (ulong)k };
            var (baseInfo, seedRuns) = RunSeed(seeded, $"seed {seeded.Seed}", progress, cancel);
            bases.Add(baseInfo);
            runs.AddRange(seedRuns);
        }
        return new UuidResults(s, bases[0], runs, bases, grid);
    }

    /// <summary>Every (format rate, method, rate) of the grid on the first seed; see <see cref="UuidGrid"/>.</summary>
    private static UuidGrid RunGrid(UuidSettings s, IProgress<UuidProgress>? progress, CancellationToken cancel)
    {
        var entries = new List<UuidGridEntry>();
        foreach (var f in s.GridFormatLrs!)
            foreach (var m in s.Methods)
                foreach (var lr in s.GridLrs)
                {
                    var cell = s with
                    {
                        FormatLr = f, Methods = [m], LearningRates = UuidLearningRates.ForSpecs(new Dictionary<string, float> { [m.Spec] = lr }),
                        GridFormatLrs = null,
                    };
                    var phase = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"grid format-lr {f:G3} lr {lr:G3}");
                    var (_, runs) = RunSeed(cell, phase, progress, cancel);
                    var final = runs[0].Final;
                    entries.Add(new UuidGridEntry(f, m, lr, final.CharAccuracy, final.ExactMatch, final.Loss));
                }
        return new UuidGrid(s.GridFormatLrs!, s.GridLrs, s.Seed, entries);
    }

    private static (UuidBaseInfo, List<UuidRun>) RunSeed(UuidSettings s, string phase, IProgress<UuidProgress>? progress, CancellationToken cancel)
    {
        var cfg = s.ModelConfig;
        var pairs = new UuidPairs(s.Pairs, s.Seed + 2);
        var baseInfo = BaseModel(s, phase, progress, cancel, out var baseWeights);
        var runs = new List<UuidRun>();
        UuidEvalPoint? start = null;
        for (var i = 0; i < s.Methods.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var model = new TransformerModel(cfg, s.Seed);
            foreach (var (name, p) in model.NamedParameters()) p.CopyFrom(baseWeights[name]);
            // Every method starts from the same function (adapters start at ΔW = 0), so one step-0 evaluation serves all.
            start ??= UuidEvaluation.Evaluate(model, pairs, 0);
            runs.Add(FineTune(s, phase, i, model, pairs, start, progress, cancel));
        }
        return (baseInfo, runs);
    }

    /// <summary>The cache file of the base model for these settings.</summary>
    public static string? BaseCachePath(UuidSettings s)
    {
        if (s.CacheDir == null) return null;
        var key = string.Join("|", FormatVersion, s.ModelConfig.ToJson(), s.FormatSteps.ToString(CultureInfo.InvariantCulture),
            s.FormatLr.ToString("R", CultureInfo.InvariantCulture), s.FormatWeightDecay.ToString("R", CultureInfo.InvariantCulture), s.FormatSchedule, s.Batch.ToString(CultureInfo.InvariantCulture), s.Seed.ToString(CultureInfo.InvariantCulture));
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16];
        return Path.Combine(s.CacheDir, $"base-{hash}.safetensors");
    }

    private static UuidBaseInfo BaseModel(UuidSettings s, string phase, IProgress<UuidProgress>? progress, CancellationToken cancel, out Dictionary<string, float[]> weights)
    {
        var sw = Stopwatch.StartNew();
        var model = new TransformerModel(s.ModelConfig, s.Seed);
        var path = BaseCachePath(s);
        if (path != null && File.Exists(path))
        {
            ModelIO.LoadWeights(path, model);
            weights = model.NamedParameters().ToDictionary(p => p.Name, p => p.Param.ToArray());
            progress?.Report(new UuidProgress(UuidStage.FormatCached, -1, "format", s.FormatSteps, s.FormatSteps, float.NaN, null, sw.Elapsed.TotalSeconds, phase));
            return new UuidBaseInfo(path, true, s.FormatSteps, sw.Elapsed.TotalSeconds, model.ParameterCount());
        }
        if (s.FormatSteps > 0)
        {
            model.To(UuidSettings.ResolveDevice(s.Device));
            var opt = new AdamW(model.TrainableParameters(), s.FormatLr, weightDecay: s.FormatWeightDecay);
            LrSchedule schedule = s.FormatSchedule == "constant"
                ? new ConstantLr(s.FormatLr)
                : new WarmupCosineLr(s.FormatLr, Math.Min(s.Warmup, s.FormatSteps), s.FormatSteps, s.FormatLr * 0.1f);
            var trainer = new Trainer(model, opt, schedule, new FreshUuidSource(s.Seed + 1),
                new TrainerOptions { BatchSize = s.Batch, Time = UuidVocab.Time, Seed = s.Seed });
            var loss = float.NaN;
            progress?.Report(new UuidProgress(UuidStage.Format, -1, "format", 0, s.FormatSteps, loss, null, 0, phase));
            while (trainer.Step < s.FormatSteps)
            {
                cancel.ThrowIfCancellationRequested();
                loss = trainer.TrainStep();
                progress?.Report(new UuidProgress(UuidStage.Format, -1, "format", trainer.Step, s.FormatSteps, loss, null, sw.Elapsed.TotalSeconds, phase));
            }
        }
        if (path != null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            ModelIO.SaveWeights(path, model, new Dictionary<string, string> { ["uuid_format_stage"] = FormatVersion });
        }
        weights = model.NamedParameters().ToDictionary(p => p.Name, p => p.Param.ToArray());
        return new UuidBaseInfo(path, false, s.FormatSteps, sw.Elapsed.TotalSeconds, model.ParameterCount());
    }

    private static UuidRun FineTune(UuidSettings s, string phase, int index, TransformerModel model, UuidPairs pairs, UuidEvalPoint start,
        IProgress<UuidProgress>? progress, CancellationToken cancel)
    {
        var m = s.Methods[index];
        var lr = s.LearningRates.For(m);
        var sw = Stopwatch.StartNew();
        var adapted = m.Attach(model, s.Seed + 3);
        model.To(UuidSettings.ResolveDevice(s.Device));   // adapters first, then the device, then the optimizer
        var trainable = model.TrainableParameterCount();
        // No weight decay: the task is to store the pairs, and decay would pull every method towards the base.
        var opt = new AdamW(model.TrainableParameters(), lr, weightDecay: 0f);
        var schedule = m.Schedule(lr, s.Warmup, s.Steps);
        var trainer = new Trainer(model, opt, schedule, new FixedPairsSource(pairs, s.Seed + 4),
            new TrainerOptions { BatchSize = s.Batch, Time = UuidVocab.Time, Seed = s.Seed });
        m.AddRestarts(trainer, adapted, s.RestartEvery);

        var curve = new List<UuidEvalPoint> { start };
        var loss = float.NaN;
        progress?.Report(new UuidProgress(UuidStage.FineTune, index, m.Label, 0, s.Steps, loss, start, 0, phase));
        int? divergedAt = null;
        var evalTime = TimeSpan.Zero;
        while (trainer.Step < s.Steps)
        {
            cancel.ThrowIfCancellationRequested();
            try
            {
                loss = trainer.TrainStep();
            }
            catch (TrainingDivergedException e)
            {
                // A rate too high for this method: stop it, keep its last finite weights, and say so in the results.
                divergedAt = e.Step + 1;
                if (curve[^1].Step != trainer.Step) curve.Add(UuidEvaluation.Evaluate(model, pairs, trainer.Step));
                break;
            }
            if (trainer.Step % s.EvalEvery == 0 || trainer.Step == s.Steps)
            {
                var evalStart = sw.Elapsed;
                curve.Add(UuidEvaluation.Evaluate(model, pairs, trainer.Step));
                evalTime += sw.Elapsed - evalStart;
            }
            progress?.Report(new UuidProgress(UuidStage.FineTune, index, m.Label, trainer.Step, s.Steps, loss, curve[^1], sw.Elapsed.TotalSeconds, phase));
        }
        // The curve's exact match comes from the teacher-forced pass (equivalent to greedy decoding); the final
        // model is also decoded for real, as a check anyone can read in results.json.
        var decodeStart = sw.Elapsed;
        var greedy = UuidEvaluation.GreedyExactMatch(model, pairs);
        evalTime += sw.Elapsed - decodeStart;
        var seconds = sw.Elapsed.TotalSeconds;
        progress?.Report(new UuidProgress(UuidStage.MethodDone, index, m.Label, s.Steps, s.Steps, loss, curve[^1], seconds, phase));
        return new UuidRun(m, lr, trainable, seconds, curve, greedy, s.Seed, divergedAt, evalTime.TotalSeconds);
    }
}
