using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using MoraEngine.Adapters;
using MoraEngine.IO;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;
using Spectre.Console;

namespace MoraEngine.Cli.Commands;

internal static class TrainCommand
{
    public static Command Create()
    {
        var text = new Option<string?>("--text") { Description = "UTF-8 text file to learn (byte-level tokens for engine models; the model's tokenizer for Hugging Face models). Without it or --jsonl: the built-in copy task." };
        var jsonl = new Option<string?>("--jsonl") { Description = "JSON Lines to learn: {\"text\": …} (packed) or {\"prompt\": …, \"completion\": …} (loss on the completion and eos only). Needs a Hugging Face --init model." };
        var target = new Option<string?>("--target") { Description = "Adapter target layers, comma-separated (e.g. q_proj,v_proj or c_attn). Default: every linear layer but the head." };
        var valFraction = new Option<double>("--val-fraction") { Description = "Share of the rows held out to report a held-out loss (text and JSONL data of HF models).", DefaultValueFactory = _ => 0.05 };
        var seqLen = new Option<int>("--seq-len") { Description = "Tokens per row for text and JSONL data of Hugging Face models (at most the model's context).", DefaultValueFactory = _ => 256 };
        var evalEvery = new Option<int>("--eval-every") { Description = "Steps between held-out losses (0: only at the end).", DefaultValueFactory = _ => 50 };
        var config = new Option<string?>("--config") { Description = "Model preset (tiny, small-cpu, small-llama, small-gpu) or JSON file. Default: tiny for the copy task, small-cpu for text." };
        var steps = new Option<int>("--steps") { Description = "Total training steps.", DefaultValueFactory = _ => 600 };
        var batch = new Option<int>("--batch") { Description = "Rows per step.", DefaultValueFactory = _ => 16 };
        var lr = new Option<float>("--lr") { Description = "Peak learning rate (AdamW, warm-up then cosine).", DefaultValueFactory = _ => 3e-3f };
        var warmup = new Option<int>("--warmup") { Description = "Warm-up steps.", DefaultValueFactory = _ => 50 };
        var seed = new Option<ulong>("--seed") { Description = "Seed for weights and data.", DefaultValueFactory = _ => 1UL };
        var outDir = new Option<string>("--out") { Description = "Run directory (checkpoint.safetensors, model.safetensors, config.json).", DefaultValueFactory = _ => Path.Combine("runs", "train") };
        var every = new Option<int>("--checkpoint-every") { Description = "Steps between checkpoints (0: only at the end).", DefaultValueFactory = _ => 100 };
        var resume = new Option<bool>("--resume") { Description = "Continue from OUT/checkpoint.safetensors exactly where it stopped." };
        var copyLength = new Option<int>("--copy-length") { Description = "Copy task: symbols per string.", DefaultValueFactory = _ => 8 };
        var logEvery = new Option<int>("--log-every") { Description = "Steps between log lines when the output is not a terminal.", DefaultValueFactory = _ => 50 };
        var init = new Option<string?>("--init") { Description = "Start from these weights (fine-tuning) instead of a fresh model: engine weights or a Hugging Face model directory." };
        var method = new Option<string>("--method") { Description = "fft (all parameters), lora or mora (adapters; the base stays frozen).", DefaultValueFactory = _ => "fft" };
        var rank = new Option<int>("--rank") { Description = "Adapter rank r (MoRA matches LoRA's parameter budget at this r).", DefaultValueFactory = _ => 8 };
        var moraType = new Option<int>("--mora-type") { Description = "MoRA operator type: 0, 1, 2, 3, 4 or 6.", DefaultValueFactory = _ => 1 };
        var restartEvery = new Option<int>("--restart-every") { Description = "ReLoRA/ReMoRA: merge and restart the adapters every N steps (0: never).", DefaultValueFactory = _ => 0 };
        var extend = new Option<bool>("--extend") { Description = "With --resume: allow a larger --steps than the run was planned with (the cosine schedule is stretched to end there)." };
        var device = CliDevice.Option();
        var cmd = new Command("train", "Train a model from scratch or resume a checkpoint, on a text file or the built-in copy task.")
        {
            text, jsonl, config, steps, batch, lr, warmup, seed, outDir, every, resume, extend, copyLength, logEvery, init, method, rank, moraType, restartEvery, target, valFraction, evalEvery, seqLen, device,
        };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            // Which options the user typed (a resumed run takes the others from its plan).
            var given = new HashSet<string>(cmd.Options.Where(o => r.GetResult(o) is { Implicit: false }).Select(o => o.Name));
            return Run(new TrainArgs(
                r.GetValue(text), r.GetValue(config), r.GetValue(steps), r.GetValue(batch), r.GetValue(lr), r.GetValue(warmup),
                r.GetValue(seed), r.GetValue(outDir)!, r.GetValue(every), r.GetValue(resume), r.GetValue(copyLength), r.GetValue(logEvery),
                r.GetValue(init), r.GetValue(method)!, r.GetValue(rank), r.GetValue(moraType), r.GetValue(restartEvery), r.GetValue(device)!,
                r.GetValue(jsonl), r.GetValue(target), r.GetValue(valFraction), r.GetValue(evalEvery), r.GetValue(seqLen))
            {
                Given = given,
                Extend = r.GetValue(extend),
            });
        }));
        return cmd;
    }

    /// <summary>What a run was started with, stored in its checkpoints so that --resume continues the same run.</summary>
    private sealed record TrainPlan(string? Text, string? Jsonl, string? Config, int Steps, int Batch, float Lr, int Warmup, ulong Seed,
        int CopyLength, string? Init, string Method, int Rank, int MoraType, int RestartEvery, string? Target, double ValFraction, int SeqLen,
        long? DataBytes, string? DataSha256)
    {
        public static TrainPlan Of(TrainArgs a)
        {
            var data = a.Text ?? a.Jsonl;
            return new TrainPlan(Full(a.Text), Full(a.Jsonl), a.Config, a.Steps, a.Batch, a.Lr, a.Warmup, a.Seed, a.CopyLength, Full(a.Init), a.Method,
                a.Rank, a.MoraType, a.RestartEvery, a.Target, a.ValFraction, a.SeqLen,
                data != null && File.Exists(data) ? new FileInfo(data).Length : null, data != null && File.Exists(data) ? Sha256(data) : null);
        }

        private static string? Full(string? path) => path == null ? null : Path.GetFullPath(path);

        public static string Sha256(string path)
        {
            using var f = File.OpenRead(path);
            return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f));
        }
    }

    /// <summary>
    /// A resumed run takes every setting from its plan; an option given on the command line must agree with it (a
    /// larger --steps only with --extend), and the data file must be the one the run started on.
    /// </summary>
    private static TrainArgs ApplyPlan(TrainArgs a, TrainPlan plan, string ckptPath)
    {
        bool Given(string name) => a.Given.Contains(name);
        void Same<T>(string name, T given, T planned)
        {
            if (Given(name) && !EqualityComparer<T>.Default.Equals(given, planned))
                throw new ArgumentException($"--resume: {name} {given} differs from the run's plan ({(planned is null ? "not set" : planned)}, in {ckptPath}); leave it out to continue the run, or start a new one in another --out.");
        }
        string? Full(string? p) => p == null ? null : Path.GetFullPath(p);
        Same("--text", Full(a.Text), plan.Text);
        Same("--jsonl", Full(a.Jsonl), plan.Jsonl);
        Same("--config", a.Config, plan.Config);
        Same("--batch", a.Batch, plan.Batch);
        Same("--lr", a.Lr, plan.Lr);
        Same("--warmup", a.Warmup, plan.Warmup);
        Same("--seed", a.Seed, plan.Seed);
        Same("--copy-length", a.CopyLength, plan.CopyLength);
        Same("--init", Full(a.Init), plan.Init);
        Same("--method", a.Method, plan.Method);
        Same("--rank", a.Rank, plan.Rank);
        Same("--mora-type", a.MoraType, plan.MoraType);
        Same("--restart-every", a.RestartEvery, plan.RestartEvery);
        Same("--target", a.Target, plan.Target);
        Same("--val-fraction", a.ValFraction, plan.ValFraction);
        Same("--seq-len", a.SeqLen, plan.SeqLen);
        var steps = plan.Steps;
        if (Given("--steps") && a.Steps != plan.Steps)
        {
            if (!a.Extend || a.Steps < plan.Steps)
                throw new ArgumentException($"--resume: --steps {a.Steps} differs from the run's plan ({plan.Steps}); to train longer, add --extend (the cosine schedule is then stretched to end at the new step count).");
            steps = a.Steps;
            AnsiConsole.MarkupLine($"[yellow]Extending the run from {plan.Steps} to {steps} steps[/]: the learning rate continues on a cosine that now ends at step {steps}.");
        }
        var data = plan.Text ?? plan.Jsonl;
        if (data != null)
        {
            if (!File.Exists(data)) throw new FileNotFoundException($"--resume: the run's data file '{data}' no longer exists.", data);
            if (new FileInfo(data).Length != plan.DataBytes || TrainPlan.Sha256(data) != plan.DataSha256)
                throw new ArgumentException($"--resume: the run's data file '{data}' has changed since the run started (size or SHA-256 differ); resuming would train on other data.");
        }
        return a with
        {
            Text = plan.Text, Jsonl = plan.Jsonl, Config = plan.Config, Steps = steps, Batch = plan.Batch, Lr = plan.Lr, Warmup = plan.Warmup,
            Seed = plan.Seed, CopyLength = plan.CopyLength, Init = plan.Init, Method = plan.Method, Rank = plan.Rank, MoraType = plan.MoraType,
            RestartEvery = plan.RestartEvery, Target = plan.Target, ValFraction = plan.ValFraction, SeqLen = plan.SeqLen,
        };
    }

    private sealed record TrainArgs(string? Text, string? Config, int Steps, int Batch, float Lr, int Warmup, ulong Seed,
        string Out, int CheckpointEvery, bool Resume, int CopyLength, int LogEvery,
        string? Init, string Method, int Rank, int MoraType, int RestartEvery, string Device,
        string? Jsonl = null, string? Target = null, double ValFraction = 0.05, int EvalEvery = 50, int SeqLen = 256)
    {
        /// <summary>Options typed on the command line (by name, e.g. "--steps").</summary>
        public IReadOnlySet<string> Given { get; init; } = new HashSet<string>();

        public bool Extend { get; init; }
    }

    /// <summary>A plain line: above the live progress bar on a terminal, on standard output otherwise.</summary>
    private static void Say(string line)
    {
        if (AnsiConsole.Profile.Capabilities.Interactive) AnsiConsole.MarkupLine(Markup.Escape(line));
        else Console.WriteLine(line);
    }

    private static int Run(TrainArgs a)
    {
        var planPath = Path.Combine(a.Out, "checkpoint.safetensors");
        if (a.Resume && File.Exists(planPath) && Checkpoint.ReadMetadata(planPath).TryGetValue("plan", out var planJson))
        {
            TrainPlan plan;
            try
            {
                plan = System.Text.Json.JsonSerializer.Deserialize<TrainPlan>(planJson) ?? throw new InvalidDataException("null");
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidDataException or NotSupportedException)
            {
                throw new InvalidDataException($"{planPath}: metadata 'plan' is not valid ({e.Message}).", e);
            }
            a = ApplyPlan(a, plan, planPath);
        }
        if (a.Steps <= 0) throw new ArgumentException($"--steps must be positive, got {a.Steps}.");
        if (!(a.Lr > 0) || !float.IsFinite(a.Lr)) throw new ArgumentException($"--lr must be a positive finite number, got {a.Lr}.");
        var device = CliDevice.Resolve(a.Device);
        Directory.CreateDirectory(a.Out);
        var ckptPath = Path.Combine(a.Out, "checkpoint.safetensors");

        if (a.Text != null && a.Jsonl != null) throw new ArgumentException("Give --text or --jsonl, not both.");
        if (a.CheckpointEvery < 0) throw new ArgumentException($"--checkpoint-every must be ≥ 0, got {a.CheckpointEvery}.");
        if (a.EvalEvery < 0) throw new ArgumentException($"--eval-every must be ≥ 0, got {a.EvalEvery}.");
        if (!(a.ValFraction >= 0 && a.ValFraction < 1)) throw new ArgumentException($"--val-fraction must be in [0, 1), got {a.ValFraction}.");
        if (a.Batch <= 0) throw new ArgumentException($"--batch must be positive, got {a.Batch}.");
        if (a.Warmup < 0) throw new ArgumentException($"--warmup must be ≥ 0, got {a.Warmup}.");
        IBatchSource data;
        ModelConfig cfg;
        int time;
        string task;
        TransformerModel? initModel = null;
        TokenDataset? heldOut = null;
        // A Hugging Face base model brings its tokenizer: text and JSONL are tokenized with it (on resume, the
        // checkpoint remembers where the base came from).
        IReadOnlyDictionary<string, string>? earlyMeta = a.Resume && File.Exists(ckptPath) ? Checkpoint.ReadMetadata(ckptPath) : null;
        var hfSource = a.Init ?? (earlyMeta != null && earlyMeta.TryGetValue("init", out var initPath) ? initPath : null);
        if (a.Init != null && !a.Resume)
        {
            initModel = AdapterCommands.LoadModel(a.Init, a.Config);
            if (initModel.Config.Layout != ModelLayout.HuggingFace) hfSource = null;
        }
        else if (hfSource != null && Checkpoint.ReadConfig(ckptPath).Layout != ModelLayout.HuggingFace)
            hfSource = null;
        if (a.Jsonl != null && hfSource == null) throw new ArgumentException("--jsonl needs a Hugging Face model (--init DIR) and its tokenizer.");
        if (hfSource != null && (a.Text != null || a.Jsonl != null))
        {
            cfg = initModel?.Config ?? Checkpoint.ReadConfig(ckptPath);
            var tok = Text.HfTokenizer.FromDirectory(Directory.Exists(hfSource) ? hfSource : Path.GetDirectoryName(Path.GetFullPath(hfSource))!);
            var eos = tok.EosId ?? cfg.EosTokenId ?? throw new ArgumentException($"{hfSource}: the model has no eos token to separate documents.");
            int? bos = tok.BosId is { } b && b != eos ? b : null;
            if (a.SeqLen < 2) throw new ArgumentException($"--seq-len must be at least 2, got {a.SeqLen}.");
            var rowTime = Math.Min(cfg.Context, a.SeqLen);
            var options = new TokenDataset.Options(tok.Encode, eos, bos, rowTime, cfg.VocabSize);
            var all = a.Jsonl != null ? TokenDataset.FromJsonl(a.Jsonl, options) : TokenDataset.FromText([a.Text!], options);
            var (train, held) = all.Split(a.ValFraction);
            heldOut = held;
            data = train.Sampler(a.Seed + 1);
            time = rowTime;
            task = string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(a.Jsonl ?? a.Text)} ({all.Tokens:N0} tokens, {train.Count:N0} rows of {rowTime}{(held != null ? $", {held.Count:N0} held out" : "")}{(all.Truncated > 0 ? $", {all.Truncated} examples truncated" : "")})");
        }
        else if (a.Text != null)
        {
            cfg = CliConfig.LoadModelConfig(a.Config ?? "small-cpu");
            data = TextBatchSource.FromFile(a.Text, cfg.Context, a.Seed + 1);
            time = cfg.Context;
            task = $"text {Path.GetFileName(a.Text)}";
        }
        else
        {
            var copy = new CopyTaskSource(a.CopyLength, 16, a.Seed + 1);
            cfg = CliConfig.LoadModelConfig(a.Config ?? "tiny");
            if (cfg.Context < copy.Time) cfg = cfg with { Context = copy.Time };
            data = copy;
            time = copy.Time;
            task = $"copy task (strings of {a.CopyLength} symbols; chance loss {copy.ChanceLoss:F2})";
        }
        if (a.Method is not ("fft" or "lora" or "mora")) throw new ArgumentException($"--method '{a.Method}' is not known (fft, lora, mora).");
        if (a.RestartEvery < 0) throw new ArgumentException($"--restart-every must be ≥ 0, got {a.RestartEvery}.");
        IReadOnlyDictionary<string, string>? resumeMeta = null;
        TransformerModel model;
        if (a.Resume)
        {
            if (!File.Exists(ckptPath)) throw new FileNotFoundException($"--resume: no checkpoint at '{ckptPath}'.", ckptPath);
            resumeMeta = Checkpoint.ReadMetadata(ckptPath);
            cfg = Checkpoint.ReadConfig(ckptPath);
            model = new TransformerModel(cfg, a.Seed);
        }
        else if (a.Init != null)
        {
            model = initModel!;
            cfg = model.Config;
            if (data.VocabSize > cfg.VocabSize) throw new ArgumentException($"--init model has a vocabulary of {cfg.VocabSize}; the data needs {data.VocabSize}.");
            if (cfg.Context < time) throw new ArgumentException($"--init model's context {cfg.Context} is shorter than the rows ({time} tokens).");
        }
        else model = new TransformerModel(cfg, a.Seed);

        AdaptedModel? adapted = null;
        var adapterJson = resumeMeta != null && resumeMeta.TryGetValue("adapter_config", out var aj) ? aj : null;
        if (adapterJson != null)
        {
            adapted = AdaptedModel.Wrap(model, AdapterConfig.FromPeftJson(adapterJson, ckptPath));
            adapted.Restarts = int.Parse(resumeMeta!["adapter_restarts"], CultureInfo.InvariantCulture);
        }
        else if (!a.Resume && a.Method != "fft")
            adapted = AdaptedModel.Wrap(model, new AdapterConfig
            {
                Method = a.Method == "lora" ? AdapterMethod.Lora : AdapterMethod.Mora,
                Rank = a.Rank,
                MoraType = (MoraType)a.MoraType,
                Seed = a.Seed + 17,
                TargetModules = a.Target != null
                    ? a.Target.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    : AdapterConfig.DefaultTargets(model.Config),
            });
        // Adapters first, then the move to the device, then the optimizer (its state lives on the device too).
        model.To(device);
        var opt = new AdamW(model.TrainableParameters(), a.Lr, weightDecay: adapted == null ? 0.1f : 0f);
        var schedule = new WarmupCosineLr(a.Lr, Math.Min(a.Warmup, a.Steps), a.Steps, a.Lr * 0.1f, restartWarmup: Math.Min(50, Math.Max(1, a.RestartEvery / 4)));
        var trainer = new Trainer(model, opt, schedule, data, new TrainerOptions { BatchSize = a.Batch, Time = time, Seed = a.Seed });
        if (adapted != null && a.RestartEvery > 0) trainer.Callbacks.Add(new AdapterRestarts(adapted, a.RestartEvery));
        if (a.Resume)
        {
            Checkpoint.Restore(ckptPath, trainer);
            AnsiConsole.MarkupLine($"Resumed [bold]{Markup.Escape(ckptPath)}[/] at step {trainer.Step}.");
            if (trainer.Step >= a.Steps)
            {
                AnsiConsole.MarkupLine($"The run is already complete ({trainer.Step} of {a.Steps} steps); nothing to do. Train longer with --steps N --extend.");
                return 0;
            }
        }
        var planText = System.Text.Json.JsonSerializer.Serialize(TrainPlan.Of(a));
        if (adapted != null)
            AnsiConsole.MarkupLine($"Adapters: {adapted.Config.Method} r={adapted.Config.Rank}{(adapted.Config.Method == AdapterMethod.Mora ? $" type {(int)adapted.Config.MoraType}" : "")} on {adapted.Layers.Count} layers; {adapted.TrainableParameterCount():N0} trainable of {adapted.TotalParameterCount():N0}.");
        File.WriteAllText(Path.Combine(a.Out, "config.json"), cfg.ToJson());
        AnsiConsole.MarkupLine($"Training {cfg.Architecture} d={cfg.DModel} L={cfg.Layers} H={cfg.Heads} ({model.ParameterCount():N0} parameters) on {Markup.Escape(task)} on {Markup.Escape(device.Name)}, batch {a.Batch}×{time}, {a.Steps} steps.");

        var stop = false;
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;   // finish the current step, save, then exit
            stop = true;
        };
        Console.CancelKeyPress += onCancel;
        // SIGTERM (a scheduler's or container's stop) behaves like Ctrl+C: finish the step, save, exit 130.
        using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            stop = true;
        });
        var losses = new List<(int Step, float Loss)>();
        TrainingDivergedException? diverged = null;
        try
        {
            var sw = Stopwatch.StartNew();
            var startStep = trainer.Step;
            void Save()
            {
                var extra = adapted == null ? new Dictionary<string, string>() : new Dictionary<string, string>
                {
                    ["adapter_config"] = adapted.Config.ToPeftJson(),
                    ["adapter_restarts"] = adapted.Restarts.ToString(CultureInfo.InvariantCulture),
                };
                if (hfSource != null) extra["init"] = Path.GetFullPath(hfSource);
                extra["plan"] = planText;
                trainer.SaveCheckpoint(ckptPath, extra);
            }
            void OneStep(Action<float>? report)
            {
                float loss;
                try
                {
                    loss = trainer.TrainStep();
                }
                catch (TrainingDivergedException e)
                {
                    diverged = e;
                    stop = true;
                    return;
                }
                losses.Add((trainer.Step, loss));
                report?.Invoke(loss);
                if (heldOut != null && a.EvalEvery > 0 && trainer.Step % a.EvalEvery == 0 && trainer.Step < a.Steps)
                    Say(string.Create(CultureInfo.InvariantCulture, $"step {trainer.Step}: held-out loss {heldOut.Loss(model, a.Batch):F4}"));
                if (a.CheckpointEvery > 0 && trainer.Step % a.CheckpointEvery == 0) Save();
            }
            string Status(float loss)
            {
                var done = trainer.Step - startStep;
                var tokPerSec = done * (double)trainer.TokensPerStep / Math.Max(1e-9, sw.Elapsed.TotalSeconds);
                var eta = TimeSpan.FromSeconds((a.Steps - trainer.Step) * sw.Elapsed.TotalSeconds / Math.Max(1, done));
                return string.Create(CultureInfo.InvariantCulture, $"step {trainer.Step}/{a.Steps}  loss {loss:F4}  {tokPerSec:N0} tok/s  ETA {(eta.TotalHours >= 1 ? eta.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : eta.ToString(@"mm\:ss", CultureInfo.InvariantCulture))}");
            }

            if (AnsiConsole.Profile.Capabilities.Interactive)
            {
                AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("training", maxValue: a.Steps);
                        task.Value = trainer.Step;
                        while (trainer.Step < a.Steps && !stop)
                            OneStep(loss =>
                            {
                                task.Value = trainer.Step;
                                task.Description = Markup.Escape(Status(loss));
                            });
                    });
            }
            else
            {
                while (trainer.Step < a.Steps && !stop)
                    OneStep(loss =>
                    {
                        if (trainer.Step % Math.Max(1, a.LogEvery) == 0 || trainer.Step == a.Steps) Console.WriteLine(Status(loss));
                    });
            }

            if (diverged is { } d)
            {
                // Never overwrite the last good checkpoint; the failed step changed nothing.
                var kept = File.Exists(ckptPath) ? $"the last good checkpoint, {Markup.Escape(ckptPath)}, is kept" : "no checkpoint was written";
                AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(d.Message)}; {kept}.");
                return 3;
            }
            Save();
            if (stop)
            {
                AnsiConsole.MarkupLine($"[yellow]Interrupted at step {trainer.Step}[/]: checkpoint saved to {Markup.Escape(ckptPath)}; continue with --resume.");
                return 130;
            }
            if (heldOut != null)
                Say(string.Create(CultureInfo.InvariantCulture, $"Held-out loss {heldOut.Loss(model, a.Batch):F4} ({heldOut.ScoredPositions:N0} predictions)."));
            var weights = Path.Combine(a.Out, "model.safetensors");
            if (adapted != null)
            {
                var adapterDir = Path.Combine(a.Out, "adapter");
                adapted.Save(adapterDir);
                AnsiConsole.MarkupLine(a.RestartEvery > 0
                    ? $"Adapter: {Markup.Escape(adapterDir)} (the update since the last restart only; {Markup.Escape(weights)} holds the full result)"
                    : hfSource != null
                        ? $"Adapter: {Markup.Escape(adapterDir)} (PEFT format; merge with: mora merge --model {Markup.Escape(hfSource)} --adapter {Markup.Escape(adapterDir)} --out MERGED_DIR)"
                        : $"Adapter: {Markup.Escape(adapterDir)} (merge with: mora merge --model BASE --adapter {Markup.Escape(adapterDir)} --out merged.safetensors)");
                adapted.MergeAndUnload();   // model.safetensors holds the merged, plain model
            }
            ModelIO.SaveWeights(weights, model);
            var tail = losses.Skip(Math.Max(0, losses.Count - 20)).Select(l => l.Loss).DefaultIfEmpty(float.NaN).Average();
            using var self = Process.GetCurrentProcess();
            self.Refresh();
            AnsiConsole.MarkupLine($"Done: {trainer.Step - startStep} steps run (now at step {trainer.Step}) in {sw.Elapsed.TotalSeconds:F1} s, mean loss of the last {Math.Min(20, losses.Count)} steps {tail:F4}, peak memory {self.PeakWorkingSet64 / 1048576.0:F0} MiB. Weights: {Markup.Escape(weights)}");
            if (a.Text == null && data is CopyTaskSource c)
            {
                var eval = trainer.Evaluate(new CopyTaskSource(c.Length, c.Alphabet, a.Seed + 1000), 4);
                AnsiConsole.MarkupLine($"Held-out copy loss {eval:F4} (chance {c.ChanceLoss:F2}).");
            }
            return 0;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}

internal static class Cli
{
    /// <summary>Turns bad input into one clear line and exit code 2, instead of a stack trace.</summary>
    public static int Guard(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidOperationException or InvalidDataException or NotSupportedException)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
            return 2;
        }
    }
}
