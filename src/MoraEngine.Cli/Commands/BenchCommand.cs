using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MoraEngine.Adapters;
using MoraEngine.Backends.Cpu;
using MoraEngine.Backends.Ilgpu;
using MoraEngine.Diagnostics;
using MoraEngine.Nn;
using MoraEngine.Training;
using Spectre.Console;

namespace MoraEngine.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Quick performance measurements (BenchmarkDotNet suites live in bench/).");
        cmd.Subcommands.Add(Gemm());
        cmd.Subcommands.Add(Step());
        cmd.Subcommands.Add(BenchKernelsCommand.Create());
        cmd.Subcommands.Add(BenchOpsCommand.Create());
        cmd.Subcommands.Add(BenchGenerateCommand.Create());
        return cmd;
    }

    private static Command Gemm()
    {
        var size = new Option<int[]>("--size") { Description = "Matrix size N of an N×N×N product (repeatable).", DefaultValueFactory = _ => [1024], AllowMultipleArgumentsPerToken = true };
        var repeats = new Option<int>("--repeats") { Description = "Timed repetitions (best is reported).", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "One JSON object per line." };
        var device = CliDevice.Option();
        var tf32 = CliDevice.Tf32Option();
        var cmd = new Command("gemm", "GFLOP/s of the SGEMM on square matrices (the CPU's, or the ILGPU kernel on a GPU).") { size, repeats, json, device, tf32 };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var dev = CliDevice.Resolve(r.GetValue(device)!);
            var useTf32 = CliDevice.ApplyTf32(dev, r.GetValue(tf32));
            foreach (var n in r.GetValue(size)!)
            {
                if (n <= 0) throw new ArgumentException($"--size must be positive, got {n}.");
                var reps = Math.Max(1, r.GetValue(repeats));
                var gflops = ReferenceEquals(dev, Device.Cpu) ? GemmBench.MeasureGflops(n, reps) : IlgpuGemmBench.MeasureGflops(dev, n, reps);
                if (r.GetValue(json))
                    Console.WriteLine(JsonSerializer.Serialize(new { benchmark = "gemm", device = dev.Name, size = n, gflops = Math.Round(gflops, 1), tf32 = useTf32 }));
                else
                    AnsiConsole.MarkupLine($"gemm {n}×{n}×{n} on {Markup.Escape(dev.Name)}{(useTf32 ? " (TF32)" : "")}: [bold]{gflops.ToString("F1", CultureInfo.InvariantCulture)}[/] GFLOP/s");
            }
            return 0;
        }));
        return cmd;
    }

    private static Command Step()
    {
        var config = new Option<string>("--config") { Description = "Model preset (small-cpu, small-gpu, small-llama, tiny) or a JSON config file.", DefaultValueFactory = _ => "small-cpu" };
        var method = new Option<string>("--method") { Description = "What trains: fft (every parameter), lora or mora (adapters on every linear layer but the head), or frozen (every linear layer frozen, no adapter: the floor under the adapters).", DefaultValueFactory = _ => "fft" };
        var rank = new Option<int>("--rank") { Description = "LoRA rank r (MoRA matches its parameter budget).", DefaultValueFactory = _ => 8 };
        var moraType = new Option<int>("--mora-type") { Description = "MoRA operator type: 0, 1, 2, 3, 4 or 6.", DefaultValueFactory = _ => 1 };
        var batch = new Option<int?>("--batch") { Description = "Rows per step (default 64 for small-gpu, 16 otherwise)." };
        var seq = new Option<int?>("--seq") { Description = "Tokens per row (default: the model's context)." };
        var target = new Option<string?>("--target") { Description = "Adapter target layers, comma-separated (default: every linear layer but the head)." };
        var steps = new Option<int>("--steps") { Description = "Timed steps (median reported).", DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up steps.", DefaultValueFactory = _ => 3 };
        var against = new Option<string?>("--against") { Description = "A second method (fft, lora, mora or frozen, with the same rank, MoRA type and targets) timed in the same process, steps alternating: reports the median and quartiles of the per-step differences and ratios, which a shared machine's load moves far less than two separate runs. --against frozen gives the adapter's cost over the floor." };
        var json = new Option<bool>("--json") { Description = "One JSON object per line." };
        var device = CliDevice.Option();
        var tf32 = CliDevice.Tf32Option();
        var cmd = new Command("step", "Median milliseconds of a full training step (forward, backward, AdamW).") { config, method, rank, moraType, batch, seq, target, steps, warmup, against, json, device, tf32 };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var configName = r.GetValue(config)!;
            var cfg = CliConfig.LoadModelConfig(configName);
            var m = r.GetValue(method)!;
            var rk = r.GetValue(rank);
            var mt = r.GetValue(moraType);
            var targets = r.GetValue(target)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? AdapterConfig.DefaultTargets(cfg);
            Action<TransformerModel>? Prepare(string m) => m switch
            {
                "fft" => null,
                // The floor under every adapter: all linear layers frozen, nothing added (norms and embeddings train,
                // so the backward still runs through every layer).
                "frozen" => model =>
                {
                    foreach (var (_, l) in model.Linears())
                    {
                        l.Weight.RequiresGrad = false;
                        if (l.Bias != null) l.Bias.RequiresGrad = false;
                    }
                },
                "lora" => model => AdaptedModel.Wrap(model, new AdapterConfig { Method = AdapterMethod.Lora, Rank = rk, TargetModules = targets }),
                "mora" => model => AdaptedModel.Wrap(model, new AdapterConfig { Method = AdapterMethod.Mora, Rank = rk, MoraType = (MoraType)mt, TargetModules = targets }),
                _ => throw new ArgumentException($"method '{m}' is not known (fft, frozen, lora, mora)."),
            };
            var prepare = Prepare(m);
            var baseline = r.GetValue(against);
            var prepareBaseline = baseline == null ? null : Prepare(baseline);
            if (baseline == m) throw new ArgumentException($"--against {baseline} is the method itself: compare two different methods.");
            if (m == "mora" && !Enum.IsDefined((MoraType)mt)) throw new ArgumentException($"--mora-type {mt} is not known (0, 1, 2, 3, 4, 6).");
            var dev = CliDevice.Resolve(r.GetValue(device)!);
            var useTf32 = CliDevice.ApplyTf32(dev, r.GetValue(tf32));
            var rows = r.GetValue(batch) ?? (configName == "small-gpu" ? 64 : 16);
            if (rows <= 0) throw new ArgumentException($"--batch must be positive, got {rows}.");
            var seqLen = r.GetValue(seq);
            if (seqLen is { } sl && (sl < 1 || sl > cfg.Context)) throw new ArgumentException($"--seq must be in [1, {cfg.Context}], got {sl}.");
            var paired = baseline == null ? null
                : StepBench.RunPaired(cfg, configName, m, baseline, rows, r.GetValue(warmup), r.GetValue(steps), prepare, prepareBaseline, dev, seqLen);
            var res = paired?.Method ?? StepBench.Run(cfg, configName, m, rows, r.GetValue(warmup), r.GetValue(steps), prepare, dev, seqLen);
            var loraParams = m is "fft" or "frozen" ? 0 : AdapterBudget.LoraParameters(cfg, rk, targets);
            if (r.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    benchmark = "step", device = dev.Name, config = res.Config, method = res.Method, batch = rows,
                    rank = m is "fft" or "frozen" ? (int?)null : rk, mora_type = m == "mora" ? mt : (int?)null,
                    trainable_params = res.TrainableParams, ms_per_step = Math.Round(res.MedianMs, 2), min_ms = Math.Round(res.MinMs, 2),
                    pool_buffers_after_warmup = res.PoolBuffersAfterWarmup, pool_buffers_at_end = res.PoolBuffersAtEnd,
                    seq = seqLen ?? cfg.Context, peak_bytes = res.PeakBytes, tf32 = useTf32,
                    against = baseline,
                    against_ms_per_step = paired == null ? (double?)null : Math.Round(paired.Baseline.MedianMs, 2),
                    against_min_ms = paired == null ? (double?)null : Math.Round(paired.Baseline.MinMs, 2),
                    delta_ms = paired == null ? (double?)null : Math.Round(paired.DeltaMedianMs, 2),
                    delta_q25_ms = paired == null ? (double?)null : Math.Round(paired.DeltaQ25Ms, 2),
                    delta_q75_ms = paired == null ? (double?)null : Math.Round(paired.DeltaQ75Ms, 2),
                    ratio = paired == null ? (double?)null : Math.Round(paired.RatioMedian, 4),
                    ratio_q25 = paired == null ? (double?)null : Math.Round(paired.RatioQ25, 4),
                    ratio_q75 = paired == null ? (double?)null : Math.Round(paired.RatioQ75, 4),
                }));
            else
            {
                AnsiConsole.MarkupLine($"step {Markup.Escape(res.Config)} on {Markup.Escape(dev.Name)}{(useTf32 ? " (TF32)" : "")}, batch {rows}: {res.Method}{(m is "fft" or "frozen" ? "" : $" r={rk}")}{(m == "mora" ? $" type {mt}" : "")}: [bold]{res.MedianMs.ToString("F1", CultureInfo.InvariantCulture)}[/] ms/step (median of {res.Steps}, min {res.MinMs.ToString("F1", CultureInfo.InvariantCulture)}), {res.TrainableParams:N0} trainable of {res.TotalParams:N0} parameters, peak memory {res.PeakBytes / 1048576.0:F0} MiB");
                if (m == "mora")
                    AnsiConsole.MarkupLine($"  LoRA at r={rk} would train {loraParams:N0}: MoRA/LoRA = {(double)res.TrainableParams / loraParams:F4}");
                if (paired != null)
                {
                    string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
                    AnsiConsole.MarkupLine($"  against {Markup.Escape(baseline!)}, steps alternating: {F(paired.Baseline.MedianMs)} ms/step (min {F(paired.Baseline.MinMs)}); " +
                        $"per step, {Markup.Escape(m)} minus {Markup.Escape(baseline!)}: median [bold]{F(paired.DeltaMedianMs)}[/] ms (quartiles {F(paired.DeltaQ25Ms)} to {F(paired.DeltaQ75Ms)}); " +
                        $"{Markup.Escape(m)} over {Markup.Escape(baseline!)}: median [bold]{paired.RatioMedian.ToString("F3", CultureInfo.InvariantCulture)}[/]× " +
                        $"(quartiles {paired.RatioQ25.ToString("F3", CultureInfo.InvariantCulture)} to {paired.RatioQ75.ToString("F3", CultureInfo.InvariantCulture)}), " +
                        $"the difference {F(100 * (1 - 1 / paired.RatioMedian))}% of the step");
                }
            }
            return 0;
        }));
        return cmd;
    }
}

internal static class CliConfig
{
    /// <summary>A preset name or a JSON file path.</summary>
    public static ModelConfig LoadModelConfig(string nameOrPath)
    {
        if (File.Exists(nameOrPath)) return ModelConfig.FromJson(File.ReadAllText(nameOrPath));
        if (nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            throw new FileNotFoundException($"Model config file '{nameOrPath}' does not exist.", nameOrPath);
        return ModelConfig.Preset(nameOrPath);
    }
}
