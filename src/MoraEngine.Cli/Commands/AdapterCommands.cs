using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MoraEngine.Adapters;
using MoraEngine.IO;
using MoraEngine.Linalg;
using MoraEngine.Nn;
using Spectre.Console;

namespace MoraEngine.Cli.Commands;

internal static class AdapterCommands
{
    private static Option<string> ModelOption() => new("--model") { Description = "Base model: a Hugging Face model directory, or engine weights (.safetensors; a checkpoint also works).", Required = true };
    private static Option<string> AdapterOption() => new("--adapter") { Description = "Adapter directory (adapter_config.json + adapter_model.safetensors).", Required = true };
    private static Option<string?> ConfigOption() => new("--config") { Description = "Model config (preset or JSON file); default: the checkpoint's own, or config.json next to the model." };

    public static Command Merge()
    {
        var model = ModelOption();
        var adapter = AdapterOption();
        var config = ConfigOption();
        var output = new Option<string>("--out") { Description = "Where to write the merged model: a weight file for an engine model, a directory for a Hugging Face model.", Required = true };
        var device = CliDevice.Option();
        var cmd = new Command("merge", "Fold an adapter into its base model and write a plain model (an HF directory when the base is one).") { model, adapter, config, output, device };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var dev = CliDevice.Resolve(r.GetValue(device)!);
            var m = LoadModel(r.GetValue(model)!, r.GetValue(config));
            var adapted = AdaptedModel.Load(r.GetValue(adapter)!, m);
            m.To(dev);
            var layers = adapted.Layers.Count;
            var plain = adapted.MergeAndUnload();
            var outPath = r.GetValue(output)!;
            var basePath = r.GetValue(model)!;
            if (plain.Config.Layout == ModelLayout.HuggingFace)
            {
                if (File.Exists(outPath)) throw new ArgumentException($"--out '{outPath}' is a file; a Hugging Face model is written as a directory.");
                HuggingFace.Save(plain, outPath, Directory.Exists(basePath) ? basePath : Path.GetDirectoryName(Path.GetFullPath(basePath)));
            }
            else
                ModelIO.SaveWeights(outPath, plain);
            AnsiConsole.MarkupLine($"Merged {adapted.Config.Method} (r={adapted.Config.Rank}) into {layers} layers → [bold]{Markup.Escape(outPath)}[/]");
            return 0;
        }));
        return cmd;
    }

    public static Command Export()
    {
        var model = ModelOption();
        var config = ConfigOption();
        var output = new Option<string>("--out") { Description = "Directory to write (config.json, model.safetensors, tokenizer files).", Required = true };
        var cmd = new Command("export", "Write a model as a Hugging Face directory that transformers loads (GPT2LMHeadModel or LlamaForCausalLM).") { model, config, output };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var path = r.GetValue(model)!;
            var m = LoadModel(path, r.GetValue(config));
            var hf = HuggingFace.ToHuggingFaceLayout(m);
            var outDir = r.GetValue(output)!;
            if (File.Exists(outDir)) throw new ArgumentException($"--out '{outDir}' is a file, not a directory.");
            HuggingFace.Save(hf, outDir, Directory.Exists(path) ? path : null);
            AnsiConsole.MarkupLine($"Exported {hf.Config.Architecture} ({hf.ParameterCount():N0} parameters) → [bold]{Markup.Escape(outDir)}[/]");
            if (m.Config.Layout == ModelLayout.Engine)
                AnsiConsole.MarkupLine("[yellow]note:[/] an engine model has no tokenizer files; its tokens are bytes (ids 0–255).");
            return 0;
        }));
        return cmd;
    }

    public static Command Analyze()
    {
        var model = ModelOption();
        var adapter = AdapterOption();
        var config = ConfigOption();
        var threshold = new Option<double>("--threshold") { Description = "A singular value counts when above this fraction of the layer's largest.", DefaultValueFactory = _ => 0.01 };
        var json = new Option<string?>("--json") { Description = "Also write the full spectra as JSON to this file ('-' for standard output only)." };
        var device = CliDevice.Option();
        var cmd = new Command("analyze", "Singular values of each adapted layer's ΔW: the rank the update actually uses.") { model, adapter, config, threshold, json, device };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var dev = CliDevice.Resolve(r.GetValue(device)!);
            var m = LoadModel(r.GetValue(model)!, r.GetValue(config));
            var adapted = AdaptedModel.Load(r.GetValue(adapter)!, m);
            m.To(dev);
            var rel = r.GetValue(threshold);
            if (rel is <= 0 or >= 1) throw new ArgumentException($"--threshold must be in (0, 1), got {rel}.");
            var rows = new List<object>();
            var table = new Table().AddColumns("layer", "ΔW shape", "rank bound", $"σ > {rel:P0} of max", "σ max", "‖ΔW‖F");
            foreach (var l in adapted.Layers)
            {
                var delta = l.Adapter.DeltaWeight().ToArray();
                var s = Svd.SingularValues(delta, l.Layer.OutFeatures, l.Layer.InFeatures);
                var significant = Svd.SignificantCount(s, rel);
                var bound = l.Adapter is MoraAdapter ma ? Math.Min(ma.RHat * (ma.Type == MoraType.Rope ? ma.Operator.Chunks : 1), Math.Min(l.Layer.InFeatures, l.Layer.OutFeatures)) : adapted.Config.Rank;
                var fro = Math.Sqrt(s.Sum(v => v * v));
                table.AddRow(Markup.Escape(l.Name), $"{l.Layer.OutFeatures}×{l.Layer.InFeatures}", bound.ToString(CultureInfo.InvariantCulture),
                    significant.ToString(CultureInfo.InvariantCulture), s.Length > 0 ? s[0].ToString("G4", CultureInfo.InvariantCulture) : "-", fro.ToString("G4", CultureInfo.InvariantCulture));
                rows.Add(new { layer = l.Name, rows = l.Layer.OutFeatures, cols = l.Layer.InFeatures, rank_bound = bound, significant, threshold = rel, singular_values = s });
            }
            var target = r.GetValue(json);
            var doc = JsonSerializer.Serialize(new { method = adapted.Config.Method.ToString().ToLowerInvariant(), rank = adapted.Config.Rank, mora_type = adapted.Config.Method == AdapterMethod.Mora ? (int?)adapted.Config.MoraType : null, layers = rows });
            if (target == "-") Console.WriteLine(doc);
            else
            {
                AnsiConsole.Write(table);
                if (target != null)
                {
                    File.WriteAllText(target, doc);
                    AnsiConsole.MarkupLine($"Spectra written to {Markup.Escape(target)}");
                }
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>Builds the model a weight file or Hugging Face directory belongs to and loads it.</summary>
    internal static TransformerModel LoadModel(string path, string? configOpt) =>
        ModelIO.LoadModel(path, configOpt != null ? CliConfig.LoadModelConfig(configOpt) : null);
}
