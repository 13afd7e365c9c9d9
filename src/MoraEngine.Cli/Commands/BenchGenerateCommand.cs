using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using MoraEngine.Generation;
using MoraEngine.Nn;
using Spectre.Console;

namespace MoraEngine.Cli.Commands;

/// <summary>
/// <c>mora bench generate</c>: batch-1 decoding speed with the KV cache on random weights, against the memory
/// bandwidth bound (every weight is read once per token).
/// </summary>
internal static class BenchGenerateCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "Model preset or JSON config (random weights).", DefaultValueFactory = _ => "gpt2-124m" };
        var prompt = new Option<int>("--prompt-tokens") { Description = "Prompt length (random ids).", DefaultValueFactory = _ => 128 };
        var tokens = new Option<int>("--tokens") { Description = "Tokens generated after the prompt (timed).", DefaultValueFactory = _ => 64 };
        var json = new Option<bool>("--json") { Description = "One JSON object." };
        var device = CliDevice.Option();
        var cmd = new Command("generate", "Tokens/s of greedy decoding at batch 1 after a prompt, and the memory-bandwidth bound.") { config, prompt, tokens, json, device };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var cfg = CliConfig.LoadModelConfig(r.GetValue(config)!);
            int p = r.GetValue(prompt), n = r.GetValue(tokens);
            if (p < 1 || n < 2 || p + n > cfg.Context) throw new ArgumentException($"--prompt-tokens ≥ 1 and --tokens ≥ 2 must fit the context {cfg.Context}, got {p} + {n}.");
            var dev = CliDevice.Resolve(r.GetValue(device)!);
            var model = new TransformerModel(cfg, seed: 1);
            model.To(dev);
            var rng = new Rng(5);
            var ids = Enumerable.Range(0, p).Select(_ => rng.NextInt(cfg.VocabSize)).ToArray();
            var gen = new TextGenerator(model, p + n + 1);
            // Warm-up: JIT and the buffer pool.
            gen.Prefill(ids);
            for (var i = 0; i < 3; i++) gen.Step(Sampler.ArgMax(gen.Prefill(ids)));
            var sw = Stopwatch.StartNew();
            var logits = gen.Prefill(ids);
            var prefillMs = sw.Elapsed.TotalMilliseconds;
            var next = Sampler.ArgMax(logits);
            sw.Restart();
            for (var i = 0; i < n; i++) next = Sampler.ArgMax(gen.Step(next));
            var perToken = sw.Elapsed.TotalSeconds / n;
            // Weight bytes read per token: every parameter except the position table (one row) and, when the head
            // has its own matrix, the embedding table (one row).
            long bytes = 0;
            foreach (var (name, t) in model.NamedParameters())
                if (!ReferenceEquals(t, model.PosEmb?.Weight) && !(model.Head != null && ReferenceEquals(t, model.TokEmb.Weight))) bytes += 4L * t.Length;
            var bandwidth = ReferenceEquals(dev, Device.Cpu) ? MeasureBandwidth() : double.NaN;
            var bound = bandwidth / bytes;
            var tps = 1 / perToken;
            if (r.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    benchmark = "generate", device = dev.Name, config = r.GetValue(config), prompt_tokens = p, tokens = n,
                    prefill_ms = Math.Round(prefillMs, 1), tokens_per_s = Math.Round(tps, 2), weight_bytes_per_token = bytes,
                    bandwidth_gb_s = Math.Round(bandwidth / 1e9, 2), bound_tokens_per_s = Math.Round(bound, 2), fraction_of_bound = Math.Round(tps / bound, 3),
                }));
            else
                AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                    $"generate {Markup.Escape(r.GetValue(config)!)} on {Markup.Escape(dev.Name)}: prompt {p} tokens in {prefillMs:F0} ms, then [bold]{tps:F1}[/] tokens/s ({perToken * 1e3:F1} ms/token); {bytes / 1e6:F0} MB of weights per token at {bandwidth / 1e9:F1} GB/s bounds it at {bound:F1} tokens/s: {100 * tps / bound:F0}% of the bound"));
            return 0;
        }));
        return cmd;
    }

    /// <summary>Read bandwidth in bytes/s: the best of several parallel sums over a 512 MiB array (one slice per core).</summary>
    internal static double MeasureBandwidth()
    {
        var data = new float[128 << 20];
        data.AsSpan().Fill(1f);
        var parts = Environment.ProcessorCount;
        var best = double.MaxValue;
        for (var rep = 0; rep < 5; rep++)
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, parts, i =>
            {
                var len = data.Length / parts;
                TensorPrimitives.Sum(data.AsSpan(i * len, len));
            });
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return 4.0 * data.Length / best;
    }
}
