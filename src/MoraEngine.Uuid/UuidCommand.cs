using MoraEngine.Training;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace MoraEngine.Examples.Uuid;

/// <summary>
/// <c>mora uuid</c>: the MoRA paper's memory experiment (also the whole of <c>examples/UuidMemorization</c>, which
/// calls <see cref="CreateRoot"/>). The logic lives in <see cref="UuidExperiment"/>; this is options and display.
/// </summary>
public static class UuidCommand
{
    private const string Description =
        "UUID memorisation: a small GPT learns the format of key→value UUID pairs, then FFT, LoRA and MoRA each fine-tune a copy on N fixed pairs; compares character accuracy, exact match and time.";

    /// <summary>The <c>uuid</c> subcommand of <c>mora</c>.</summary>
    public static Command Create() => Configure(new Command("uuid", Description));

    /// <summary>The same options as a root command (the example app).</summary>
    public static RootCommand CreateRoot() => Configure(new RootCommand(Description));

    private static T Configure<T>(T cmd) where T : Command
    {
        var d = new UuidSettings();
        var pairs = new Option<int>("--pairs") { Description = "Key→value pairs to memorise.", DefaultValueFactory = _ => d.Pairs };
        var steps = new Option<int>("--steps") { Description = "Fine-tuning steps per method.", DefaultValueFactory = _ => d.Steps };
        var batch = new Option<int>("--batch") { Description = "Rows per step.", DefaultValueFactory = _ => d.Batch };
        var lr = new Option<string?>("--lr")
        {
            Description = "Peak learning rate: one for all (1e-3) or per method (mora=3e-3,lora=3e-3,fft=1e-3; keys may be full specs such as mora:8:6). "
                + $"Defaults (the grid's choice): fft {UuidLearningRates.Defaults[MethodKind.Fft].ToString(CultureInfo.InvariantCulture)}, lora/mora {UuidLearningRates.Defaults[MethodKind.Mora].ToString(CultureInfo.InvariantCulture)}, mora type 6 {UuidLearningRates.MoraRopeDefault.ToString(CultureInfo.InvariantCulture)}.",
        };
        var methods = new Option<string>("--methods")
        {
            Description = "Methods, comma-separated: fft, lora:R, mora:R:TYPE (TYPE 1 sharing, 6 RoPE, ...), relora:R, remora:R:TYPE.",
            DefaultValueFactory = _ => string.Join(",", d.Methods),
        };
        var dModel = new Option<int>("--d-model") { Description = "Model width.", DefaultValueFactory = _ => d.DModel };
        var layers = new Option<int>("--layers") { Description = "Transformer blocks.", DefaultValueFactory = _ => d.Layers };
        var heads = new Option<int>("--heads") { Description = "Attention heads.", DefaultValueFactory = _ => d.Heads };
        var formatSteps = new Option<int>("--format-steps") { Description = "Steps of the format stage (fresh random pairs; cached).", DefaultValueFactory = _ => d.FormatSteps };
        var formatLr = new Option<float>("--format-lr") { Description = "Peak learning rate of the format stage.", DefaultValueFactory = _ => d.FormatLr };
        var formatWd = new Option<float>("--format-wd") { Description = "AdamW weight decay of the format stage.", DefaultValueFactory = _ => d.FormatWeightDecay };
        var formatSchedule = new Option<string>("--format-schedule") { Description = "Format-stage schedule: cosine (warm-up, cosine to a tenth) or constant.", DefaultValueFactory = _ => d.FormatSchedule };
        var seeds = new Option<int>("--seeds") { Description = "Seeds to run (--seed, --seed + 1, …), each with its own pairs and base; the table reports mean ± std.", DefaultValueFactory = _ => d.Seeds };
        var grid = new Option<bool>("--grid") { Description = "First choose the format-stage rate and each method's rate on a grid (first seed), the same way for every method." };
        var gridFormatLrs = new Option<string?>("--grid-format-lrs") { Description = "Format-stage rates the grid tries (implies --grid; default " + string.Join(",", UuidSettings.DefaultGridFormatLrs.Select(f => f.ToString(CultureInfo.InvariantCulture))) + ")." };
        var gridLrs = new Option<string?>("--grid-lrs") { Description = "Fine-tuning rates the grid tries for each method (implies --grid; default " + string.Join(",", d.GridLrs.Select(f => f.ToString(CultureInfo.InvariantCulture))) + ")." };
        var evalEvery = new Option<int>("--eval-every") { Description = "Steps between evaluations.", DefaultValueFactory = _ => d.EvalEvery };
        var restartEvery = new Option<int>("--restart-every") { Description = "Steps between ReLoRA/ReMoRA restarts.", DefaultValueFactory = _ => d.RestartEvery };
        var warmup = new Option<int>("--warmup") { Description = "Warm-up steps (then cosine decay to a tenth).", DefaultValueFactory = _ => d.Warmup };
        var seed = new Option<ulong>("--seed") { Description = "Seed for the pairs, the weights and the data order.", DefaultValueFactory = _ => d.Seed };
        var device = new Option<string>("--device") { Description = "auto (CUDA when a CUDA device works, else the CPU), cpu, cuda or cuda:N.", DefaultValueFactory = _ => d.Device };
        var outDir = new Option<string?>("--out") { Description = "Results directory (default runs/uuid-TIMESTAMP)." };
        var cacheDir = new Option<string>("--cache-dir") { Description = "Where base models are cached, keyed by their settings.", DefaultValueFactory = _ => d.CacheDir! };
        var noCache = new Option<bool>("--no-cache") { Description = "Always run the format stage; write no cache." };
        foreach (var o in new Option[] { pairs, steps, batch, lr, methods, dModel, layers, heads, formatSteps, formatLr, formatWd, formatSchedule, evalEvery, restartEvery, warmup, seed, seeds, grid, gridFormatLrs, gridLrs, device, outDir, cacheDir, noCache })
            cmd.Options.Add(o);
        cmd.SetAction(r => Guard(() =>
        {
            var settings = new UuidSettings
            {
                Pairs = r.GetValue(pairs),
                Steps = r.GetValue(steps),
                Batch = r.GetValue(batch),
                LearningRates = UuidLearningRates.Parse(r.GetValue(lr)),
                Methods = MethodSpec.ParseList(r.GetValue(methods) ?? ""),
                DModel = r.GetValue(dModel),
                Layers = r.GetValue(layers),
                Heads = r.GetValue(heads),
                FormatSteps = r.GetValue(formatSteps),
                FormatLr = r.GetValue(formatLr),
                FormatWeightDecay = r.GetValue(formatWd),
                FormatSchedule = r.GetValue(formatSchedule) ?? "cosine",
                EvalEvery = r.GetValue(evalEvery),
                RestartEvery = r.GetValue(restartEvery),
                Warmup = r.GetValue(warmup),
                Seed = r.GetValue(seed),
                Seeds = r.GetValue(seeds),
                GridFormatLrs = r.GetValue(grid) || r.GetValue(gridFormatLrs) != null || r.GetValue(gridLrs) != null
                    ? ParseRates(r.GetValue(gridFormatLrs), "--grid-format-lrs") ?? UuidSettings.DefaultGridFormatLrs
                    : null,
                GridLrs = ParseRates(r.GetValue(gridLrs), "--grid-lrs") ?? d.GridLrs,
                Device = r.GetValue(device) ?? "auto",
                CacheDir = r.GetValue(noCache) ? null : r.GetValue(cacheDir),
            };
            var dir = r.GetValue(outDir) ?? Path.Combine("runs", "uuid-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            return Run(settings, dir);
        }));
        return cmd;
    }

    private static float[]? ParseRates(string? text, string option)
    {
        if (text == null) return null;
        var items = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (items.Length == 0) throw new ArgumentException($"{option}: no rate given (e.g. 1e-3,3e-3).");
        return items.Select(i => float.TryParse(i, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && f > 0 && float.IsFinite(f)
            ? f : throw new ArgumentException($"{option}: '{i}' is not a positive rate.")).ToArray();
    }

    private static int Guard(Func<int> action)
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

    private static int Run(UuidSettings s, string outDir)
    {
        s.Validate();
        var cfg = s.ModelConfig;
        AnsiConsole.MarkupLine($"[bold]UUID memorisation[/]: {s.Pairs} pairs, {s.Steps} steps × batch {s.Batch} per method, GPT d={cfg.DModel} L={cfg.Layers} H={cfg.Heads} on {UuidSettings.ResolveDevice(s.Device).Name}.");
        AnsiConsole.MarkupLine($"Methods: {Markup.Escape(string.Join(", ", s.Methods.Select(m => $"{m.Label} (lr {s.LearningRates.For(m).ToString(CultureInfo.InvariantCulture)})")))}.");

        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;   // stop after the current step
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        var wall = Stopwatch.StartNew();
        UuidResults results;
        try
        {
            if (AnsiConsole.Profile.Capabilities.Interactive)
            {
                UuidResults? res = null;
                AnsiConsole.Progress()
                    .AutoClear(false)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .Start(ctx =>
                    {
                        // One bar per base model and per run, added as each starts.
                        var tasks = new Dictionary<string, ProgressTask>();
                        ProgressTask Task(string key, string description, int max)
                        {
                            if (!tasks.TryGetValue(key, out var t)) tasks[key] = t = ctx.AddTask(description, maxValue: Math.Max(1, max));
                            return t;
                        }
                        res = UuidExperiment.Run(s, new SyncProgress(p =>
                        {
                            var prefix = s.Seeds > 1 || s.GridFormatLrs != null ? p.Phase + ": " : "";
                            if (p.MethodIndex < 0)
                            {
                                var format = Task(p.Phase + "/format", Describe(prefix + "base: format", null, float.NaN), s.FormatSteps);
                                format.Value = p.Stage == UuidStage.FormatCached ? format.MaxValue : p.Step;
                                format.Description = p.Stage == UuidStage.FormatCached ? Markup.Escape(prefix) + "base: format [green](cached)[/]" : Describe(prefix + "base: format", null, p.Loss);
                                if (p.Stage == UuidStage.FormatCached || p.Step >= p.TotalSteps) format.StopTask();
                                return;
                            }
                            var t = Task(p.Phase + "/" + p.Label, Describe(prefix + p.Label, null, float.NaN), p.TotalSteps);
                            t.Value = p.Step;
                            t.Description = Describe(prefix + p.Label, p.LastEval, p.Loss);
                            if (p.Stage == UuidStage.MethodDone) t.StopTask();
                        }), cts.Token);
                    });
                results = res!;
            }
            else
            {
                results = UuidExperiment.Run(s, new SyncProgress(p =>
                {
                    var evalStep = p.LastEval?.Step == p.Step;
                    var prefix = s.Seeds > 1 || s.GridFormatLrs != null ? p.Phase + ": " : "";
                    if (p.Stage == UuidStage.FormatCached) Console.WriteLine(prefix + "base: format stage cached");
                    else if (p.Stage == UuidStage.Format && p.Step > 0 && (p.Step == p.TotalSteps || p.Step % 100 == 0))
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{prefix}base: format step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}"));
                    else if (p.Stage == UuidStage.FineTune && evalStep)
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{prefix}{p.Label}: step {p.Step}/{p.TotalSteps}{(float.IsNaN(p.Loss) ? "" : $" loss {p.Loss:F4}")} char {p.LastEval!.CharAccuracy * 100:F1}% exact {p.LastEval.ExactMatch * 100:F1}% ({p.Seconds:F0} s)"));
                }), cts.Token);
            }
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]Interrupted[/]: no results written.");
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }

        var files = results.Write(outDir);
        if (results.Grid is { } g) AnsiConsole.Write(GridTable(g));
        var fs = results.Settings;
        var table = new Table().Border(TableBorder.Rounded)
            .Title(fs.Seeds > 1 ? $"UUID memorisation, {fs.Seeds} seeds (mean ± std)" : "UUID memorisation");
        table.AddColumn("method");
        table.AddColumn(new TableColumn("rank").RightAligned());
        table.AddColumn(new TableColumn("trainable").RightAligned());
        table.AddColumn(new TableColumn("lr").RightAligned());
        table.AddColumn(new TableColumn("char acc").RightAligned());
        table.AddColumn(new TableColumn("exact").RightAligned());
        table.AddColumn(new TableColumn("seconds").RightAligned());
        foreach (var m in results.Summary)
            table.AddRow(
                Markup.Escape(m.Method.Label),
                m.Method.Rank is { } rank ? (m.Method.IsMora ? $"{rank} (r̂ {RankHatText(fs, m.Method)})" : rank.ToString(CultureInfo.InvariantCulture)) : "all",
                m.TrainableParams.ToString("N0", CultureInfo.InvariantCulture),
                m.LearningRate.ToString("G3", CultureInfo.InvariantCulture),
                m.CharAccuracy.Percent(),
                m.ExactMatch.Percent(),
                m.Seconds.Mean.ToString("F1", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        foreach (var r in results.Runs.Where(r => r.DivergedAtStep != null))
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"[yellow]{Markup.Escape(r.Method.Label)}, seed {r.Seed}: diverged at step {r.DivergedAtStep}[/] (non-finite loss or gradient; its numbers are from the weights before that step). Try a lower --lr."));
        var start = results.Runs[0].Curve[0];
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"Base model before fine-tuning: char accuracy {start.CharAccuracy * 100:F1}% (format only; chance on the 30 random hex digits). Base {(results.Base.Cached ? "loaded from cache" : $"trained in {results.Base.Seconds:F1} s")}; whole run {wall.Elapsed.TotalSeconds:F0} s."));
        foreach (var f in files) AnsiConsole.MarkupLine($"  [grey]wrote[/] {Markup.Escape(f)}");
        return 0;
    }

    private static Table GridTable(UuidGrid g)
    {
        var t = new Table().Border(TableBorder.Rounded).Title($"Learning-rate grid (seed {g.Seed}): final char accuracy");
        t.AddColumn("format lr");
        t.AddColumn("method");
        foreach (var lr in g.Lrs) t.AddColumn(new TableColumn(lr.ToString("G3", CultureInfo.InvariantCulture)).RightAligned());
        var chosenFormat = g.ChosenFormatLr;
        foreach (var f in g.FormatLrs)
            foreach (var m in g.Entries.Where(e => e.FormatLr == f).Select(e => e.Method).DistinctBy(m => m.Spec))
            {
                var best = g.Best(f, m);
                var cells = new List<string>
                {
                    f.ToString("G3", CultureInfo.InvariantCulture) + (f == chosenFormat ? " [green](chosen)[/]" : ""),
                    Markup.Escape(m.Label),
                };
                foreach (var lr in g.Lrs)
                {
                    var e = g.Entries.First(x => x.FormatLr == f && x.Method.Spec == m.Spec && x.Lr == lr);
                    var text = (e.CharAccuracy * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";
                    cells.Add(e == best ? $"[bold]{text}[/]" : text);
                }
                t.AddRow(cells.ToArray());
            }
        return t;
    }

    private static string RankHatText(UuidSettings s, MethodSpec m)
    {
        var hats = MoraEngine.Adapters.AdapterBudget.TargetShapes(s.ModelConfig, new MoraEngine.Adapters.AdapterConfig().TargetModules)
            .Select(t => MoraEngine.Adapters.MoraOperator.RankHat(t.In, t.Out, m.Rank!.Value, m.MoraType!.Value)).Distinct().Order();
        return string.Join("/", hats);
    }

    private static string Describe(string label, UuidEvalPoint? eval, float loss)
    {
        var text = Markup.Escape(label.PadRight(16));
        text += float.IsNaN(loss) ? "           " : string.Create(CultureInfo.InvariantCulture, $" loss {loss,5:F3}");
        if (eval != null) text += string.Create(CultureInfo.InvariantCulture, $" acc [bold]{eval.CharAccuracy * 100,5:F1}%[/] exact {eval.ExactMatch * 100,5:F1}%");
        return text;
    }

    /// <summary>Calls back on the reporting thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SyncProgress(Action<UuidProgress> report) : IProgress<UuidProgress>
    {
        public void Report(UuidProgress value) => report(value);
    }
}
