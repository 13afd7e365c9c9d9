using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MoraEngine.Adapters;
using Spectre.Console;

namespace MoraEngine.Cli.Commands;

/// <summary>
/// <c>mora bench ops</c>: forward + backward time of each main op of a training step at a model config's sizes, on any
/// device (the quick counterpart of the OpBenchmarks suite; on a GPU it shows where a step's time goes).
/// </summary>
internal static class BenchOpsCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "Model preset or JSON config giving the sizes.", DefaultValueFactory = _ => "small-cpu" };
        var batch = new Option<int>("--batch") { Description = "Rows (default: 64 for small-gpu, else 16)." };
        var repeats = new Option<int>("--repeats") { Description = "Timed repetitions per op (median reported).", DefaultValueFactory = _ => 10 };
        var json = new Option<bool>("--json") { Description = "One JSON object per line." };
        var device = CliDevice.Option();
        var cmd = new Command("ops", "Forward + backward milliseconds of each main op at a model's sizes, and of each adapted layer (frozen weight; LoRA, MoRA types 1 and 6) against the frozen layer alone.") { config, batch, repeats, json, device };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var configName = r.GetValue(config)!;
            var cfg = CliConfig.LoadModelConfig(configName);
            var dev = CliDevice.Resolve(r.GetValue(device)!);
            var b = r.GetValue(batch) is > 0 and var given ? given : configName == "small-gpu" ? 64 : 16;
            var reps = Math.Max(1, r.GetValue(repeats));
            var rows = b * cfg.Context;
            int d = cfg.DModel, ff = cfg.FfHiddenResolved;
            var rng = new Rng(1);
            Tensor P(float std, params int[] shape)
            {
                var t = Tensor.RandN(rng, std, shape).To(dev);
                t.RequiresGrad = true;
                return t;
            }
            var x = P(1f, b, cfg.Context, d);
            var h = P(1f, b, cfg.Context, ff);
            var wdd = P(0.05f, d, d);
            var wup = P(0.05f, ff, d);
            var wdown = P(0.05f, d, ff);
            var gain = P(0.1f, d);
            var logits = P(1f, rows, cfg.VocabSize);
            var targets = Enumerable.Range(0, rows).Select(i => i % cfg.VocabSize).ToArray();
            var loraA = P(0.05f, 8, d);
            var loraB = P(0.05f, d, 8);
            MoraOperator Op(MoraType t) => new(d, d, MoraOperator.RankHat(d, d, 8, t), t);
            var op1 = Op(MoraType.Sharing);
            var op6 = Op(MoraType.Rope);
            var m1 = P(0.05f, op1.RHat, op1.RHat);
            var m6 = P(0.05f, op6.RHat, op6.RHat);
            // Adapted layers as a model runs them: a frozen weight, the update fused into the layer (LoRA joined along
            // K, MoRA merged into a working weight), against the frozen layer alone: the adapter's cost per layer.
            var layerCases = new List<(string Name, Func<Tensor> Run)>();
            foreach (var (inF, outF, input) in new[] { (d, d, x), (d, ff, x), (ff, d, h) })
            {
                var w = Tensor.RandN(rng, 0.05f, outF, inF).To(dev);
                var a = P(0.05f, 8, inF);
                var bl = P(0.05f, outF, 8);
                var mops = new[] { MoraType.Sharing, MoraType.Rope }.Select(t => new MoraOperator(inF, outF, MoraOperator.RankHat(inF, outF, 8, t), t)).ToArray();
                var ms = mops.Select(o => P(0.05f, o.RHat, o.RHat)).ToArray();
                layerCases.Add(($"layer {inF}→{outF} frozen (floor)", () => Ops.Linear(input, w)));
                layerCases.Add(($"layer {inF}→{outF} + LoRA r=8", () => Ops.LinearLora(input, w, null, a, bl, 2f)));
                layerCases.Add(($"layer {inF}→{outF} + MoRA type 1", () => Ops.LinearMora(input, w, null, ms[0], mops[0])));
                layerCases.Add(($"layer {inF}→{outF} + MoRA type 6", () => Ops.LinearMora(input, w, null, ms[1], mops[1])));
            }
            var cases = new (string Name, Func<Tensor> Run)[]
            {
                ($"linear {d}→{d}", () => Ops.Linear(x, wdd)),
                ($"linear {d}→{ff} + gelu", () => Ops.Gelu(Ops.Linear(x, wup))),
                ($"linear {ff}→{d}", () => Ops.Linear(h, wdown)),
                ("layernorm", () => Ops.LayerNorm(x, gain, null)),
                ($"attention {cfg.Heads} heads", () => Ops.CausalSelfAttention(x, x, x, cfg.Heads)),
                ($"cross-entropy vocab {cfg.VocabSize}", () => Ops.CrossEntropy(logits, targets)),
                ("residual add", () => Ops.Add(x, x)),
                ($"lora delta r=8 {d}→{d}", () => Ops.LoraDelta(x, loraA, loraB, 2f, x)),
                ($"mora type 1 delta r̂={op1.RHat}", () => Ops.MoraDelta(x, m1, op1, x)),
                ($"mora type 6 delta r̂={op6.RHat}", () => Ops.MoraDelta(x, m6, op6, x)),
            }.Concat(layerCases).ToArray();
            // Round-robin: every round times each case once, so a change in the machine's load reaches all of them
            // alike and the layer rows compare within one run (adapter minus floor), not across minutes.
            var times = cases.Select(_ => new double[reps]).ToArray();
            // Enough untimed rounds for the JIT to reach its optimised code before timing.
            for (var i = -20; i < reps; i++)
                for (var c = 0; c < cases.Length; c++)
                {
                    Devices.Synchronize(dev);
                    var sw = Stopwatch.StartNew();
                    using (MemoryScope.Begin())
                    {
                        var y = cases[c].Run();
                        if (y.Length == 1) y.Backward();
                        else
                        {
                            var g = Tensor.Zeros(dev, y.ShapeArray);
                            dev.Backend.Fill(g, 1f);
                            y.Backward(g);
                        }
                        Devices.Synchronize(dev);
                    }
                    if (i >= 0) times[c][i] = sw.Elapsed.TotalMilliseconds;
                }
            for (var c = 0; c < cases.Length; c++)
            {
                var name = cases[c].Name;
                var t = times[c];
                Array.Sort(t);
                var median = t[reps / 2];
                // The minimum as well: on a shared machine it is the steadier figure to compare.
                if (r.GetValue(json))
                    Console.WriteLine(JsonSerializer.Serialize(new { benchmark = "ops", device = dev.Name, config = configName, batch = b, op = name, ms = Math.Round(median, 3), min_ms = Math.Round(t[0], 3) }));
                else
                    AnsiConsole.MarkupLine($"{Markup.Escape(name),-34} [bold]{median.ToString("F3", CultureInfo.InvariantCulture)}[/] ms (min {t[0].ToString("F3", CultureInfo.InvariantCulture)})");
            }
            return 0;
        }));
        return cmd;
    }
}
