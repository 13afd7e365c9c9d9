using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MoraEngine.Adapters;
using MoraEngine.Generation;
using MoraEngine.IO;
using MoraEngine.Nn;
using MoraEngine.Text;
using MoraEngine.Training;
using Spectre.Console;

namespace MoraEngine.Cli.Commands;

/// <summary>Commands on text: generate, eval, tokenize.</summary>
internal static class TextCommands
{
    private static Option<string> ModelOption() => new("--model") { Description = "A Hugging Face model directory, or engine weights (.safetensors; byte-level tokens).", Required = true };
    private static Option<string?> AdapterOption() => new("--adapter") { Description = "A LoRA or MoRA adapter directory (PEFT format: adapter_config.json + adapter_model.safetensors)." };

    /// <summary>The model (with its adapter attached, if any) and the tokenizer that goes with it.</summary>
    internal static (TransformerModel Model, TextTokenizer Tokenizer) Load(string modelPath, string? adapterDir, Device device)
    {
        var model = ModelIO.LoadModel(modelPath);
        if (adapterDir != null) AdaptedModel.Load(adapterDir, model);
        model.To(device);
        return (model, TokenizerFor(modelPath, model));
    }

    /// <summary>An HF directory's own tokenizer; the engine's byte tokenizer for engine models.</summary>
    internal static TextTokenizer TokenizerFor(string modelPath, TransformerModel model)
    {
        if (model.Config.Layout == ModelLayout.HuggingFace)
        {
            var dir = Directory.Exists(modelPath) ? modelPath : Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
            var tok = HfTokenizer.FromDirectory(dir);
            if (tok.VocabSize > model.Config.VocabSize)
                throw new ArgumentException($"{dir}: the tokenizer has {tok.VocabSize} tokens but the model only {model.Config.VocabSize}.");
            return tok;
        }
        if (model.Config.VocabSize < 256)
            throw new ArgumentException($"'{modelPath}' is an engine model with a vocabulary of {model.Config.VocabSize}: it was not trained on text (byte tokens need 256).");
        return ByteTokenizer.Instance;
    }

    public static Command Generate()
    {
        var model = ModelOption();
        var adapter = AdapterOption();
        var prompt = new Option<string>("--prompt") { Description = "Text to continue.", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate at most.", DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature") { Description = "0: greedy; above 0: sampling temperature.", DefaultValueFactory = _ => 0f };
        var topK = new Option<int>("--top-k") { Description = "Sample among the K most likely tokens (0: all).", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling mass (1: off).", DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 1UL };
        var noBos = new Option<bool>("--no-bos") { Description = "Do not start the prompt with the model's BOS token." };
        var json = new Option<bool>("--json") { Description = "Print one JSON line {\"prompt_ids\", \"ids\", \"text\"} instead of streaming." };
        var device = CliDevice.Option();
        var cmd = new Command("generate", "Continue a prompt with a KV cache: greedy or sampled, streamed to the console.")
        {
            model, adapter, prompt, maxNew, temperature, topK, topP, seed, noBos, json, device,
        };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var dev = CliDevice.Resolve(r.GetValue(device)!);
            var (m, tok) = Load(r.GetValue(model)!, r.GetValue(adapter), dev);
            var options = new GenerationOptions
            {
                MaxNewTokens = r.GetValue(maxNew), Temperature = r.GetValue(temperature), TopK = r.GetValue(topK), TopP = r.GetValue(topP),
                Seed = r.GetValue(seed), EosTokenId = tok.EosId ?? m.Config.EosTokenId,
            };
            options.Validate();
            var promptIds = new List<int>();
            // LLaMA-style tokenizers start every sequence with BOS; GPT-2 (whose BOS is its EOS) does not.
            if (!r.GetValue(noBos) && tok.BosId is { } bos && bos != options.EosTokenId) promptIds.Add(bos);
            promptIds.AddRange(tok.Encode(r.GetValue(prompt)!));
            if (promptIds.Count == 0) throw new ArgumentException("--prompt is empty and the model has no BOS token to start from.");
            if (promptIds.Count >= m.Config.Context)
                throw new ArgumentException($"--prompt is {promptIds.Count} tokens; the model's context is {m.Config.Context}.");
            var gen = new TextGenerator(m);
            var ids = new List<int>();
            var asJson = r.GetValue(json);
            var stream = tok.CreateStream();
            var sw = Stopwatch.StartNew();
            TimeSpan? firstToken = null;
            if (!asJson) Console.Write(r.GetValue(prompt));
            foreach (var id in gen.Generate(promptIds, options))
            {
                firstToken ??= sw.Elapsed;
                ids.Add(id);
                if (asJson || id == options.EosTokenId) continue;
                Console.Write(stream.Append(id));
            }
            sw.Stop();
            var newIds = ids.Count > 0 && ids[^1] == options.EosTokenId ? ids[..^1] : ids;
            if (asJson)
            {
                Console.WriteLine(JsonSerializer.Serialize(new { prompt_ids = promptIds, ids, text = tok.Decode(newIds.ToArray()) }));
                return 0;
            }
            Console.WriteLine(stream.Flush());
            var rest = sw.Elapsed - (firstToken ?? TimeSpan.Zero);
            var perSecond = ids.Count > 1 ? (ids.Count - 1) / Math.Max(1e-9, rest.TotalSeconds) : double.NaN;
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"[grey]{ids.Count} tokens{(ids.Count > 0 && ids[^1] == options.EosTokenId ? " (stopped at eos)" : "")}; prompt {promptIds.Count} tokens in {(firstToken ?? sw.Elapsed).TotalMilliseconds:F0} ms; {perSecond:F1} tokens/s after the first[/]"));
            return 0;
        }));
        return cmd;
    }

    public static Command Eval()
    {
        var model = ModelOption();
        var adapter = AdapterOption();
        var text = new Option<string>("--text") { Description = "UTF-8 text to score as one token stream (no BOS).", Required = true };
        var context = new Option<int?>("--context") { Description = "Window length in tokens (default: the model's maximum positions)." };
        var batch = new Option<int>("--batch") { Description = "Windows per forward pass.", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "Print one JSON line {\"tokens\", \"loss\", \"perplexity\"} (loss in nats)." };
        var device = CliDevice.Option();
        var cmd = new Command("eval", "Perplexity of a text: consecutive non-overlapping windows, each predicting its own tokens 2..n.")
        {
            model, adapter, text, context, batch, json, device,
        };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var dev = CliDevice.Resolve(r.GetValue(device)!);
            var (m, tok) = Load(r.GetValue(model)!, r.GetValue(adapter), dev);
            var path = r.GetValue(text)!;
            if (!File.Exists(path)) throw new FileNotFoundException($"--text '{path}' does not exist.", path);
            var ids = tok.Encode(File.ReadAllText(path));
            var asJson = r.GetValue(json);
            PerplexityResult result;
            if (asJson || !AnsiConsole.Profile.Capabilities.Interactive)
                result = Perplexity.Evaluate(m, ids, r.GetValue(context), r.GetValue(batch));
            else
            {
                result = null!;
                AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("scoring");
                        result = Perplexity.Evaluate(m, ids, r.GetValue(context), r.GetValue(batch), (done, all) =>
                        {
                            task.MaxValue = all;
                            task.Value = done;
                        });
                    });
            }
            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(new { tokens = result.Tokens, loss = result.Loss, perplexity = result.Perplexity }));
            else
                AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                    $"{result.Tokens:N0} tokens, {result.Predictions:N0} predictions: loss [bold]{result.Loss:F4}[/] nats, perplexity [bold]{result.Perplexity:F3}[/]"));
            return 0;
        }));
        return cmd;
    }
}
