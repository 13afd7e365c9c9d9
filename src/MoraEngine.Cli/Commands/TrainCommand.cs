using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
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
        var text = new Option<string?>("--text") { Description = "UTF-8 text file to learn (byte-level tokens). Without it: the built-in copy task." };
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
        var device = CliDevice.Option();
        var cmd = new Command("train", "Train a model from scratch or resume a checkpoint, on a text file or the built-in copy task.")
        {
            text, config, steps, batch, lr, warmup, seed, outDir, every, resume, copyLength, logEvery, device,
        };
        cmd.SetAction(r => Cli.Guard(() => Run(new TrainArgs(
            r.GetValue(text), r.GetValue(config), r.GetValue(steps), r.GetValue(batch), r.GetValue(lr), r.GetValue(warmup),
            r.GetValue(seed), r.GetValue(outDir)!, r.GetValue(every), r.GetValue(resume), r.GetValue(copyLength), r.GetValue(logEvery),
            r.GetValue(device)!))));
        return cmd;
    }

    private sealed record TrainArgs(string? Text, string? Config, int Steps, int Batch, float Lr, int Warmup, ulong Seed,
        string Out, int CheckpointEvery, bool Resume, int CopyLength, int LogEvery, string Device);

    private static int Run(TrainArgs a)
    {
        if (a.Steps <= 0) throw new ArgumentException($"--steps must be positive, got {a.Steps}.");
        if (a.Lr <= 0) throw new ArgumentException($"--lr must be positive, got {a.Lr}.");
        var device = CliDevice.Resolve(a.Device);
        Directory.CreateDirectory(a.Out);
        var ckptPath = Path.Combine(a.Out, "checkpoint.safetensors");

        IBatchSource data;
        ModelConfig cfg;
        int time;
        string task;
        if (a.Text != null)
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
        if (a.Resume)
        {
            if (!File.Exists(ckptPath)) throw new FileNotFoundException($"--resume: no checkpoint at '{ckptPath}'.", ckptPath);
            cfg = Checkpoint.ReadConfig(ckptPath);
        }

        var model = new TransformerModel(cfg, a.Seed);
        model.To(device);
        var opt = new AdamW(model.TrainableParameters(), a.Lr, weightDecay: 0.1f);
        var schedule = new WarmupCosineLr(a.Lr, Math.Min(a.Warmup, a.Steps), a.Steps, a.Lr * 0.1f);
        var trainer = new Trainer(model, opt, schedule, data, new TrainerOptions { BatchSize = a.Batch, Time = time, Seed = a.Seed });
        if (a.Resume)
        {
            Checkpoint.Restore(ckptPath, trainer);
            AnsiConsole.MarkupLine($"Resumed [bold]{Markup.Escape(ckptPath)}[/] at step {trainer.Step}.");
        }
        File.WriteAllText(Path.Combine(a.Out, "config.json"), cfg.ToJson());
        AnsiConsole.MarkupLine($"Training {cfg.Architecture} d={cfg.DModel} L={cfg.Layers} H={cfg.Heads} ({model.ParameterCount():N0} parameters) on {Markup.Escape(task)} on {Markup.Escape(device.Name)}, batch {a.Batch}×{time}, {a.Steps} steps.");

        var stop = false;
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;   // finish the current step, save, then exit
            stop = true;
        };
        Console.CancelKeyPress += onCancel;
        var losses = new List<(int Step, float Loss)>();
        try
        {
            var sw = Stopwatch.StartNew();
            var startStep = trainer.Step;
            void Save()
            {
                trainer.SaveCheckpoint(ckptPath);
            }
            void OneStep(Action<float>? report)
            {
                var loss = trainer.TrainStep();
                losses.Add((trainer.Step, loss));
                report?.Invoke(loss);
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

            Save();
            if (stop)
            {
                AnsiConsole.MarkupLine($"[yellow]Interrupted at step {trainer.Step}[/]: checkpoint saved to {Markup.Escape(ckptPath)}; continue with --resume.");
                return 130;
            }
            var weights = Path.Combine(a.Out, "model.safetensors");
            ModelIO.SaveWeights(weights, model);
            var tail = losses.Skip(Math.Max(0, losses.Count - 20)).Select(l => l.Loss).DefaultIfEmpty(float.NaN).Average();
            AnsiConsole.MarkupLine($"Done: {trainer.Step} steps in {sw.Elapsed.TotalSeconds:F1} s, mean loss of the last 20 steps {tail:F4}. Weights: {Markup.Escape(weights)}");
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
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or IOException or InvalidOperationException or InvalidDataException)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
            return 2;
        }
    }
}
