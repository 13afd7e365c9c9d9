using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using MoraEngine.Training;
using Spectre.Console;

namespace MoraEngine.Examples.Paper;

/// <summary>
/// <c>mora paper pretrain|continual|tasks|spectra|all</c>: the MoRA paper's claims at small scale. The logic lives
/// in <see cref="PaperSuite"/>; this is options and display.
/// </summary>
public static class PaperCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create()
    {
        var cmd = new Command("paper", "The MoRA paper's claims at small scale, with seeds, error bars and a verdict each: pretraining with ReMoRA, continual pretraining, tasks, ΔW spectra. Writes results.json, curves.csv, report.md and SVG plots.");
        cmd.Subcommands.Add(Experiment("pretrain", PaperExperiment.Pretrain, "Claim 1: pretraining from a frozen random base, ReMoRA < MoRA < ReLoRA < LoRA in validation loss (FFT as reference)."));
        cmd.Subcommands.Add(Experiment("continual", PaperExperiment.Continual, "Claim 2: continual pretraining on a synthetic domain, MoRA lowers its loss more than LoRA (cloze accuracy and forgetting too)."));
        cmd.Subcommands.Add(Experiment("tasks", PaperExperiment.Tasks, "Claim 3: multi-digit addition and a synthetic instruction format, MoRA comparable to LoRA."));
        cmd.Subcommands.Add(Experiment("spectra", PaperExperiment.Spectra, "Claim 4: ΔW of MoRA and ReMoRA has far more singular values above 1% of the largest than LoRA's and ReLoRA's (the pretraining runs; cached runs are reused)."));
        cmd.Subcommands.Add(Experiment("all", null, "Every experiment in turn (pretrain, spectra from the same runs, continual, tasks), each in its own folder, and a summary.md of the verdicts."));
        return cmd;
    }

    private static Command Experiment(string name, PaperExperiment? experiment, string description)
    {
        var cmd = new Command(name, description);
        var preset = new Option<string>("--preset") { Description = "default (each experiment ≤ ~15 min on 2 CPU cores), full (larger model, longer runs: a GPU or a patient CPU) or tiny (seconds, a smoke test).", DefaultValueFactory = _ => "default" };
        var seeds = new Option<int?>("--seeds") { Description = "Final seeds per method (default 3); the table reports mean ± std and the verdicts use paired tests over them." };
        var seed = new Option<ulong?>("--seed") { Description = "First seed (default 1); the learning-rate grid runs on seed + 1000." };
        var steps = new Option<int?>("--steps") { Description = "Training steps of every run (default 300; tasks 500)." };
        var batch = new Option<int?>("--batch") { Description = "Rows per step (default 16)." };
        var seqLen = new Option<int?>("--seq-len") { Description = "Bytes per row and context of the model (default 64)." };
        var dModel = new Option<int?>("--d-model") { Description = "Model width (default 128)." };
        var layers = new Option<int?>("--layers") { Description = "Transformer blocks (default 4)." };
        var heads = new Option<int?>("--heads") { Description = "Attention heads (default 4)." };
        var rank = new Option<int?>("--rank") { Description = "LoRA rank r (default 8); MoRA gets the same parameters." };
        var methods = new Option<string?>("--methods") { Description = "Methods to compare (default: the claim's, e.g. fft,lora:8,relora:8,mora:8:1,remora:8:1)." };
        var gridLrs = new Option<string?>("--grid-lrs") { Description = "Peak rates the grid tries for every method (default 3e-4,1e-3,3e-3,1e-2; continual 1e-4,3e-4,1e-3,3e-3; tasks 1e-3,3e-3,1e-2)." };
        var evalEvery = new Option<int?>("--eval-every") { Description = "Steps between held-out evaluations (default 25)." };
        var restartEvery = new Option<int?>("--restart-every") { Description = "Steps between ReLoRA/ReMoRA merges (default 75)." };
        var warmup = new Option<int?>("--warmup") { Description = "Warm-up steps, also after each restart (default 20)." };
        var baseSteps = new Option<int?>("--base-steps") { Description = "Pretraining steps of the base for continual and tasks (default 600; cached)." };
        var baseLr = new Option<float?>("--base-lr") { Description = "Peak rate of the base's pretraining (default 3e-3)." };
        var entities = new Option<int?>("--entities") { Description = "Fictional places of the continual domain (default 48)." };
        var text = new Option<string?>("--text") { Description = "Your own general text (UTF-8) instead of the .NET SDK's XML API documentation." };
        var corpus = new Option<string?>("--corpus") { Description = "A directory of your own .txt/.md files instead of the SDK documentation." };
        var device = new Option<string>("--device") { Description = "auto (CUDA when a CUDA device works, else the CPU), cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        var outDir = new Option<string?>("--out") { Description = "Results directory (default runs/paper-NAME-TIMESTAMP)." };
        var cacheDir = new Option<string>("--cache-dir") { Description = "Where finished runs and base models are kept; the same command resumes from it after an interruption.", DefaultValueFactory = _ => Path.Combine("runs", "paper-cache") };
        var noCache = new Option<bool>("--no-cache") { Description = "Train everything again; keep nothing." };
        foreach (var o in new Option[] { preset, seeds, seed, steps, batch, seqLen, dModel, layers, heads, rank, methods, gridLrs, evalEvery, restartEvery, warmup, baseSteps, baseLr, entities, text, corpus, device, outDir, cacheDir, noCache })
            cmd.Options.Add(o);
        cmd.SetAction(r => Guard(() =>
        {
            PaperSettings Build(PaperExperiment e)
            {
                var s = PaperSettings.For(e, r.GetValue(preset) ?? "default");
                s = s with
                {
                    Seeds = r.GetValue(seeds) ?? s.Seeds,
                    Seed = r.GetValue(seed) ?? s.Seed,
                    Steps = r.GetValue(steps) ?? s.Steps,
                    Batch = r.GetValue(batch) ?? s.Batch,
                    Time = r.GetValue(seqLen) ?? s.Time,
                    DModel = r.GetValue(dModel) ?? s.DModel,
                    Layers = r.GetValue(layers) ?? s.Layers,
                    Heads = r.GetValue(heads) ?? s.Heads,
                    Rank = r.GetValue(rank) ?? s.Rank,
                    GridLrs = ParseRates(r.GetValue(gridLrs)) ?? s.GridLrs,
                    EvalEvery = r.GetValue(evalEvery) ?? s.EvalEvery,
                    RestartEvery = r.GetValue(restartEvery) ?? s.RestartEvery,
                    Warmup = r.GetValue(warmup) ?? Math.Min(s.Warmup, r.GetValue(steps) ?? s.Steps),
                    BaseSteps = r.GetValue(baseSteps) ?? s.BaseSteps,
                    BaseLr = r.GetValue(baseLr) ?? s.BaseLr,
                    DomainEntities = r.GetValue(entities) ?? s.DomainEntities,
                    TextFile = r.GetValue(text),
                    CorpusDir = r.GetValue(corpus),
                    Device = r.GetValue(device) ?? "auto",
                    CacheDir = r.GetValue(noCache) ? null : r.GetValue(cacheDir),
                };
                var list = r.GetValue(methods) ?? PaperSettings.DefaultMethods(e, s.Rank.ToString(Inv));
                return s with { Methods = MethodSpec.ParseList(list) };
            }
            var stamp = DateTime.Now.ToString("yyyyMMdd-HHmmss", Inv);
            if (experiment is { } one)
            {
                var s = Build(one);
                s.Validate();
                return RunOne(s, r.GetValue(outDir) ?? Path.Combine("runs", $"paper-{name}-{stamp}"), out _);
            }
            var root = r.GetValue(outDir) ?? Path.Combine("runs", $"paper-{stamp}");
            var all = new[] { PaperExperiment.Pretrain, PaperExperiment.Spectra, PaperExperiment.Continual, PaperExperiment.Tasks }.Select(Build).ToList();
            foreach (var s in all) s.Validate();   // every option checked before hours of work
            var results = new List<PaperResults>();
            foreach (var s in all)
            {
                var code = RunOne(s, Path.Combine(root, s.Experiment.ToString().ToLowerInvariant()), out var res);
                if (code != 0) return code;
                results.Add(res!);
            }
            var summary = Path.Combine(root, "summary.md");
            File.WriteAllText(summary, Summary(results), new UTF8Encoding(false));
            AnsiConsole.MarkupLine($"  [grey]wrote[/] {Markup.Escape(summary)}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>summary.md: one line per claim with its verdict and a link to its report.</summary>
    public static string Summary(IReadOnlyList<PaperResults> results)
    {
        var sb = new StringBuilder("# MoRA paper suite: verdicts at this scale\n\n| claim | verdict | report |\n|---|---|---|\n");
        foreach (var r in results)
            foreach (var c in r.Claims)
            {
                var name = r.Settings.Experiment.ToString().ToLowerInvariant();
                sb.Append(Inv, $"| {c.Claim} | **{Verdicts.Text(c.Verdict)}** | [{name}]({name}/report.md) |\n");
            }
        sb.Append('\n');
        foreach (var r in results)
            foreach (var c in r.Claims)
                sb.Append(Inv, $"- **{c.Id}** ({Verdicts.Text(c.Verdict)}): {c.Evidence}\n");
        return sb.ToString();
    }

    private static float[]? ParseRates(string? text)
    {
        if (text == null) return null;
        var items = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (items.Length == 0) throw new ArgumentException("--grid-lrs: no rate given (e.g. 1e-3,3e-3).");
        return items.Select(i => float.TryParse(i, NumberStyles.Float, Inv, out var f) && f > 0 && float.IsFinite(f)
            ? f : throw new ArgumentException($"--grid-lrs: '{i}' is not a positive rate.")).ToArray();
    }

    private static int Guard(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or DirectoryNotFoundException or IOException or InvalidOperationException or InvalidDataException)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
            return 2;
        }
    }

    private static int RunOne(PaperSettings s, string outDir, out PaperResults? results)
    {
        results = null;
        var runsPerSetup = s.Methods.Count * (s.GridLrs.Length + s.Seeds);
        AnsiConsole.MarkupLine(string.Create(Inv,
            $"[bold]MoRA paper: {s.Experiment.ToString().ToLowerInvariant()}[/] ({s.Preset}): {Markup.Escape(string.Join(", ", s.Methods.Select(m => m.Label)))}; grid {string.Join("/", s.GridLrs.Select(x => x.ToString("G3", Inv)))} on seed {s.GridSeed}, then {s.Seeds} seed(s); {s.Steps} steps × {s.Batch}×{s.Time} each; {runsPerSetup} runs per setup on {Markup.Escape(Devices.ParseOption(s.Device).Name)}."));
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;   // stop after the current step; finished runs stay in the cache
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            cts.Cancel();
        });
        try
        {
            if (AnsiConsole.Profile.Capabilities.Interactive)
            {
                PaperResults? res = null;
                AnsiConsole.Progress().AutoClear(false)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        ProgressTask? baseTask = null, all = null;
                        res = PaperSuite.Run(s, new SyncProgress(p =>
                        {
                            if (p.Run == 0)
                            {
                                baseTask ??= ctx.AddTask("base: pretraining", maxValue: p.TotalSteps);
                                baseTask.Value = p.Step;
                                baseTask.Description = p.Cached ? "base: [green]cached[/]" : string.Create(Inv, $"base: pretraining, loss {p.Loss:F3}");
                                if (p.Done) baseTask.StopTask();
                                return;
                            }
                            all ??= ctx.AddTask("runs", maxValue: (double)p.Runs * p.TotalSteps);
                            all.Value = (double)(p.Run - 1) * p.TotalSteps + p.Step;
                            all.Description = Markup.Escape(string.Create(Inv, $"run {p.Run}/{p.Runs} {p.Label}")) + (p.Cached ? " [green]cached[/]" : p.ValLoss is { } v ? string.Create(Inv, $" held-out {v:F3}") : "");
                            if (p.Done && p.Run == p.Runs) all.StopTask();
                        }), cts.Token);
                    });
                results = res!;
            }
            else
            {
                results = PaperSuite.Run(s, new SyncProgress(p =>
                {
                    if (p.Run == 0 && (p.Cached || p.Done || p.Step % 100 == 0))
                        Console.WriteLine(p.Cached ? "base: cached" : string.Create(Inv, $"base: step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}"));
                    else if (p.Run > 0 && p.Done)
                        Console.WriteLine(string.Create(Inv, $"run {p.Run}/{p.Runs} {p.Label}: held-out {p.ValLoss:F4}{(p.Cached ? " (cached)" : "")}"));
                }), cts.Token);
            }
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]Interrupted[/]: finished runs are kept in the cache; the same command continues from them.");
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        var files = PaperReport.Write(results, outDir);
        var table = new Table().Border(TableBorder.Rounded).Title($"{s.Experiment}: final held-out loss, {s.Seeds} seed(s) (mean ± std)");
        table.AddColumn("setup");
        table.AddColumn("method");
        table.AddColumn(new TableColumn("lr").RightAligned());
        table.AddColumn(new TableColumn("adapter params").RightAligned());
        table.AddColumn(new TableColumn("held-out loss").RightAligned());
        foreach (var setup in results.Setups)
            foreach (var m in s.Methods)
            {
                var runs = results.Final(setup, m.Name);
                if (runs.Count == 0) continue;
                table.AddRow(Markup.Escape(setup), Markup.Escape(m.Label), runs[0].Lr.ToString("G3", Inv), runs[0].AdapterParams.ToString("N0", Inv),
                    Spread.Of(runs.Select(x => x.FinalValLoss).ToList()).Format("F4"));
            }
        AnsiConsole.Write(table);
        foreach (var c in results.Claims)
        {
            var color = c.Verdict switch { Verdict.Supported => "green", Verdict.NotSupported => "red", _ => "yellow" };
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(c.Claim)}[/]\n  verdict: [{color}]{Verdicts.Text(c.Verdict)}[/] — {Markup.Escape(c.Evidence)}");
        }
        AnsiConsole.MarkupLine(string.Create(Inv, $"Took {results.Seconds:F0} s."));
        foreach (var f in files) AnsiConsole.MarkupLine($"  [grey]wrote[/] {Markup.Escape(f)}");
        return 0;
    }

    /// <summary>Calls back on the reporting thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SyncProgress(Action<PaperProgress> report) : IProgress<PaperProgress>
    {
        public void Report(PaperProgress value) => report(value);
    }
}
