using System.Diagnostics;
using System.Globalization;
using MoraEngine.IO;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;

namespace MoraEngine.Examples.Paper;

/// <summary>The grid's outcome for one method of one setup.</summary>
public sealed record GridChoice(string Setup, string Method, float[] Lrs, double[] FinalValLoss, float Chosen);

/// <summary>The pretrained base of the continual and task experiments (<c>Seconds</c>: its training time, also when loaded from the cache).</summary>
public sealed record BaseInfo(string? CachePath, bool Cached, int Steps, float Lr, double GeneralValLoss, double Seconds);

/// <summary>One claim, its verdict and the numbers behind it.</summary>
public sealed record ClaimResult(string Id, string Claim, Verdict Verdict, string Evidence, string Rule);

/// <summary>Everything an experiment produced (files are written by <see cref="PaperReport"/>).</summary>
public sealed record PaperResults(PaperSettings Settings, CorpusInfo Corpus, BaseInfo? Base, IReadOnlyList<string> Setups,
    IReadOnlyList<GridChoice> Grid, IReadOnlyList<PaperRun> Runs, IReadOnlyList<ClaimResult> Claims, double Seconds)
{
    /// <summary>Final runs of a setup and method, in seed order.</summary>
    public IReadOnlyList<PaperRun> Final(string setup, string methodName) =>
        Runs.Where(r => r.Phase == "final" && r.Setup == setup && r.Spec.Name == methodName).OrderBy(r => r.Seed).ToList();
}

/// <summary>
/// Runs one experiment of the suite: for every setup and method, the learning-rate grid on the grid seed (the rate
/// with the lowest final held-out loss wins; ties go to the first listed), then the winner on every seed; then the
/// claim's verdict from the per-seed numbers (<see cref="Verdicts"/>).
/// </summary>
public static class PaperSuite
{
    public static PaperResults Run(PaperSettings s, IProgress<PaperProgress>? progress = null, CancellationToken cancel = default)
    {
        s.Validate();
        var sw = Stopwatch.StartNew();
        var corpus = GeneralCorpus.Load(s.TextFile, s.CorpusDir);
        var runner = new PaperRunner(s);
        BaseInfo? baseInfo = null;
        List<RunSetup> setups;
        if (s.Experiment is PaperExperiment.Pretrain or PaperExperiment.Spectra)
            setups = [PretrainSetup(s, corpus)];
        else
        {
            var (weights, info) = BaseModel(s, corpus, progress, cancel);
            baseInfo = info;
            setups = s.Experiment == PaperExperiment.Continual
                ? [ContinualSetup(s, corpus, weights, info)]
                : PaperTasks.Names.Select(n => TaskSetup(s, weights, n)).ToList();
        }

        var total = setups.Count * s.Methods.Count * (s.GridLrs.Length + s.Seeds);
        var index = 0;
        var runs = new List<PaperRun>();
        var grid = new List<GridChoice>();
        foreach (var setup in setups)
        {
            var chosen = new Dictionary<string, float>();
            foreach (var m in s.Methods)
            {
                var losses = new double[s.GridLrs.Length];
                for (var i = 0; i < s.GridLrs.Length; i++)
                {
                    var run = runner.Run(setup, m, s.GridLrs[i], s.GridSeed, "grid", ++index, total, progress, cancel);
                    runs.Add(run);
                    losses[i] = run.FinalValLoss;
                }
                var best = 0;
                for (var i = 1; i < losses.Length; i++)
                    if (losses[i] < losses[best]) best = i;
                chosen[m.Spec] = s.GridLrs[best];
                grid.Add(new GridChoice(setup.Name, m.Spec, s.GridLrs, losses, s.GridLrs[best]));
            }
            for (var k = 0; k < s.Seeds; k++)
                foreach (var m in s.Methods)
                    runs.Add(runner.Run(setup, m, chosen[m.Spec], s.Seed + (ulong)k, "final", ++index, total, progress, cancel));
        }
        var partial = new PaperResults(s, corpus.Info, baseInfo, setups.Select(x => x.Name).ToList(), grid, runs, [], 0);
        return partial with { Claims = PaperClaims.Evaluate(partial), Seconds = Math.Round(sw.Elapsed.TotalSeconds, 1) };
    }

    private static string CommonFingerprint(PaperSettings s, CorpusInfo corpus) => string.Join("|",
        s.ModelConfig.ToJson(), corpus.Sha256, s.Steps, s.Batch, s.Time, s.Warmup, s.RestartEvery, s.EvalEvery, s.EvalRows, string.Join(",", PaperSettings.Targets));

    /// <summary>Claims 1 and 4: a random base, frozen for the adapters; embeddings, norms and head train in every method.</summary>
    private static RunSetup PretrainSetup(PaperSettings s, GeneralCorpus corpus) => new()
    {
        Name = "pretrain",
        Fingerprint = "pretrain|" + CommonFingerprint(s, corpus.Info),
        NewModel = seed => new TransformerModel(s.ModelConfig, seed),
        TrainEmbeddingsNormsHead = true,
        Spectra = true,
        Data = seed => new SeedData(new TextBatchSource(corpus.Train, seed + 11), m => PaperEval.TextLoss(m, corpus.Validation, s.EvalRows, s.Batch, s.Time)),
    };

    /// <summary>Claim 2: the pretrained base learns the synthetic domain; held-out sentences, cloze and forgetting.</summary>
    private static RunSetup ContinualSetup(PaperSettings s, GeneralCorpus corpus, Dictionary<string, float[]> weights, BaseInfo info)
    {
        var o = Options(s);
        return new RunSetup
        {
            Name = "continual",
            Fingerprint = string.Join("|", "continual", CommonFingerprint(s, corpus.Info), BaseKey(s, corpus), s.DomainEntities),
            NewModel = seed => FromWeights(s, weights, seed),
            TrainEmbeddingsNormsHead = false,
            Data = seed =>
            {
                var domain = SyntheticDomain.Create(seed, s.DomainEntities);
                var train = TokenDataset.FromDocuments(domain.TrainingSentences, o, "domain training sentences");
                var heldOut = TokenDataset.FromPairs(domain.HeldOutSentences.Select(x => ("", x)), o, "domain held-out sentences");
                var cloze = TokenDataset.FromPairs(domain.Cloze.SelectMany(c => c.Options).Select(x => ("", x)), o, "domain cloze options");
                return new SeedData(train.Sampler(seed + 11), m => heldOut.Loss(m, s.Batch), m =>
                {
                    var (lp, _) = PaperEval.Score(m, cloze, s.Batch);
                    var correct = 0;
                    var at = 0;
                    foreach (var item in domain.Cloze)
                    {
                        var best = 0;
                        for (var k = 1; k < item.Options.Count; k++)
                            if (lp[at + k] > lp[at + best]) best = k;
                        if (best == item.Correct) correct++;
                        at += item.Options.Count;
                    }
                    var general = PaperEval.TextLoss(m, corpus.Validation, s.EvalRows, s.Batch, s.Time);
                    return new Dictionary<string, double>
                    {
                        ["cloze_accuracy"] = (double)correct / domain.Cloze.Count,
                        ["cloze_chance"] = domain.Cloze.Average(c => 1.0 / c.Options.Count),
                        ["general_val_loss"] = general,
                        ["forgetting"] = general - info.GeneralValLoss,
                    };
                });
            },
        };
    }

    /// <summary>Claim 3: the pretrained base learns a task from prompt/completion pairs; exact-match accuracy on held-out problems.</summary>
    private static RunSetup TaskSetup(PaperSettings s, Dictionary<string, float[]> weights, string task)
    {
        var o = Options(s);
        return new RunSetup
        {
            Name = "task:" + task,
            Fingerprint = string.Join("|", "task", task, s.ModelConfig.ToJson(), s.Steps, s.Batch, s.Time, s.Warmup, s.RestartEvery, s.EvalEvery,
                string.Join(",", PaperSettings.Targets), WeightsKey(weights), s.TaskTrain, s.TaskTest, s.AdditionDigits, "packed"),
            NewModel = seed => FromWeights(s, weights, seed),
            TrainEmbeddingsNormsHead = false,
            Data = seed =>
            {
                var t = PaperTasks.Create(task, seed, s.TaskTrain, s.TaskTest, s.AdditionDigits);
                // Training rows hold as many whole examples as fit; each test example has a row of its own.
                var train = TokenDataset.FromPairs(t.Train.Select(e => (e.Prompt, e.Completion)), o, $"{task} training examples", pack: true);
                var test = TokenDataset.FromPairs(t.Test.Select(e => (e.Prompt, e.Completion)), o, $"{task} test examples");
                return new SeedData(train.Sampler(seed + 11), m => test.Loss(m, s.Batch), m =>
                {
                    var (_, exact) = PaperEval.Score(m, test, s.Batch);
                    return new Dictionary<string, double> { ["accuracy"] = exact.Count(x => x) / (double)exact.Length };
                });
            },
        };
    }

    /// <summary>Bytes in, '\n' as the end of every document and completion.</summary>
    private static TokenDataset.Options Options(PaperSettings s) =>
        new(text => Text.ByteTokenizer.Instance.Encode(text), '\n', null, s.Time, 256);

    private static TransformerModel FromWeights(PaperSettings s, Dictionary<string, float[]> weights, ulong seed)
    {
        var model = new TransformerModel(s.ModelConfig, seed);
        foreach (var (name, p) in model.NamedParameters()) p.CopyFrom(weights[name]);
        return model;
    }

    private static string BaseKey(PaperSettings s, GeneralCorpus corpus) => string.Join("|", PaperRunner.Version, "base", s.ModelConfig.ToJson(), corpus.Info.Sha256,
        s.BaseSteps, s.BaseLr.ToString("R", CultureInfo.InvariantCulture), s.Batch, s.Time, s.Warmup, s.EvalRows, s.Seed, s.Device);

    private static string WeightsKey(Dictionary<string, float[]> weights)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var (name, w) in weights.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(name));
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.AsSpan()));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..20];
    }

    /// <summary>
    /// The base of the continual and task experiments: every parameter pretrained on the general corpus
    /// (<see cref="PaperSettings.BaseSteps"/> steps, AdamW with weight decay 0.1, warm-up then cosine), cached.
    /// </summary>
    private static (Dictionary<string, float[]> Weights, BaseInfo Info) BaseModel(PaperSettings s, GeneralCorpus corpus, IProgress<PaperProgress>? progress, CancellationToken cancel)
    {
        var sw = Stopwatch.StartNew();
        var model = new TransformerModel(s.ModelConfig, s.Seed);
        var path = s.CacheDir == null ? null : Path.Combine(s.CacheDir, $"base-{PaperRunner.Hash(BaseKey(s, corpus))}.safetensors");
        var cached = path != null && File.Exists(path);
        double trainSeconds = 0;
        if (cached)
        {
            ModelIO.LoadWeights(path!, model);
            using (var reader = Safetensors.Open(path!))
                if (reader.Metadata.TryGetValue("train_seconds", out var t)) double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out trainSeconds);
            progress?.Report(new PaperProgress("base", 0, 0, s.BaseSteps, s.BaseSteps, float.NaN, null, true, true));
        }
        else
        {
            model.To(Devices.ParseOption(s.Device));
            var opt = new AdamW(model.TrainableParameters(), s.BaseLr, weightDecay: 0.1f);
            var schedule = new WarmupCosineLr(s.BaseLr, Math.Min(s.Warmup, s.BaseSteps), s.BaseSteps, s.BaseLr * 0.1f);
            var trainer = new Trainer(model, opt, schedule, new TextBatchSource(corpus.Train, s.Seed + 5), new TrainerOptions { BatchSize = s.Batch, Time = s.Time, Seed = s.Seed });
            while (trainer.Step < s.BaseSteps)
            {
                cancel.ThrowIfCancellationRequested();
                var loss = trainer.TrainStep();
                progress?.Report(new PaperProgress("base", 0, 0, trainer.Step, s.BaseSteps, loss, null, false, trainer.Step == s.BaseSteps));
            }
            trainSeconds = Math.Round(sw.Elapsed.TotalSeconds, 1);
            if (path != null)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                ModelIO.SaveWeights(path, model, new Dictionary<string, string>
                {
                    ["paper_base"] = PaperRunner.Version,
                    ["train_seconds"] = trainSeconds.ToString("R", CultureInfo.InvariantCulture),
                });
            }
        }
        var val = PaperEval.TextLoss(model, corpus.Validation, s.EvalRows, s.Batch, s.Time);
        var weights = model.NamedParameters().ToDictionary(p => p.Name, p => p.Param.ToArray());
        return (weights, new BaseInfo(path, cached, s.BaseSteps, s.BaseLr, val, trainSeconds));
    }
}
