using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MoraEngine.Nn;

namespace MoraEngine.IO;

/// <summary>
/// Hugging Face model directories: <c>config.json</c> plus <c>model.safetensors</c> (or shards listed by
/// <c>model.safetensors.index.json</c>), for <c>GPT2LMHeadModel</c> and <c>LlamaForCausalLM</c> (and the Qwen2 and
/// Mistral variants that differ only by q/k/v biases or fields that map). Loaded models use the
/// <see cref="ModelLayout.HuggingFace"/> module names, so their parameter names are the checkpoint's keys.
/// </summary>
public static class HuggingFace
{
    public const string ConfigFileName = "config.json";
    public const string WeightsFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>Tokenizer and generation files copied along on export.</summary>
    public static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "tokenizer.model", "generation_config.json"];

    /// <summary>True when <paramref name="path"/> is a directory holding a <c>config.json</c>.</summary>
    public static bool IsModelDirectory(string path) => Directory.Exists(path) && File.Exists(Path.Combine(path, ConfigFileName));

    // ------------------------------------------------------------------ config

    /// <summary>
    /// Maps an HF <c>config.json</c> to a <see cref="ModelConfig"/>. An unsupported architecture, or a field that
    /// changes the math in a way the engine does not implement, is an <see cref="ArgumentException"/> naming the file
    /// and the field. Fields that only matter to training regularisation (dropout probabilities) are reported in
    /// <paramref name="notes"/>.
    /// </summary>
    public static ModelConfig ReadConfig(string configPath, out IReadOnlyList<string> notes)
    {
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{configPath}: no such file.", configPath);
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject
                ?? throw new ArgumentException($"{configPath}: expected a JSON object.");
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{configPath}: invalid JSON ({e.Message}).", e);
        }
        var r = new ConfigReader(configPath, root);
        var list = new List<string>();
        var type = r.String("model_type");
        ModelConfig cfg = type switch
        {
            "gpt2" => Gpt2Config(r, list),
            "llama" or "mistral" or "qwen2" => LlamaConfig(r, type, list),
            null => throw new ArgumentException($"{configPath}: no 'model_type' field; this does not look like a Hugging Face model config."),
            _ => throw new ArgumentException($"{configPath}: model_type '{type}' is not supported (supported: gpt2, llama, mistral, qwen2)."),
        };
        try
        {
            cfg.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{configPath}: {e.Message}", e);
        }
        notes = list;
        return cfg;
    }

    private static ModelConfig Gpt2Config(ConfigReader r, List<string> notes)
    {
        r.Architectures("GPT2LMHeadModel", "GPT2Model");
        var act = r.String("activation_function") ?? "gelu_new";
        if (act is not ("gelu_new" or "gelu_pytorch_tanh" or "gelu_fast"))
            r.Fail("activation_function", $"'{act}' is not supported (the engine's GELU is the tanh form, gelu_new)");
        r.Require("scale_attn_weights", true, "attention without the 1/√d scale");
        r.Require("scale_attn_by_inverse_layer_idx", false, "attention scaled by 1/layer");
        r.Require("add_cross_attention", false, "cross-attention");
        foreach (var f in new[] { "resid_pdrop", "embd_pdrop", "attn_pdrop" })
            if (r.Float(f) is { } p && p != 0) notes.Add($"{f}={p.ToString(CultureInfo.InvariantCulture)} is not used: the engine fine-tunes without dropout in the base model");
        var d = r.Int("n_embd") ?? r.Fail<int>("n_embd", "is missing");
        return new ModelConfig
        {
            Architecture = Architecture.Gpt2,
            Layout = ModelLayout.HuggingFace,
            VocabSize = r.Int("vocab_size") ?? r.Fail<int>("vocab_size", "is missing"),
            DModel = d,
            Layers = r.Int("n_layer") ?? r.Fail<int>("n_layer", "is missing"),
            Heads = r.Int("n_head") ?? r.Fail<int>("n_head", "is missing"),
            Context = r.Int("n_positions") ?? r.Int("n_ctx") ?? r.Fail<int>("n_positions", "is missing"),
            FfHidden = r.Int("n_inner") ?? 4 * d,
            Bias = true,
            NormEps = (float)(r.Float("layer_norm_epsilon") ?? 1e-5),
            TieEmbeddings = r.Bool("tie_word_embeddings") ?? true,
            BosTokenId = r.TokenId("bos_token_id"),
            EosTokenId = r.TokenId("eos_token_id"),
        };
    }

    private static ModelConfig LlamaConfig(ConfigReader r, string type, List<string> notes)
    {
        r.Architectures(type switch { "qwen2" => "Qwen2ForCausalLM", "mistral" => "MistralForCausalLM", _ => "LlamaForCausalLM" }, "LlamaForCausalLM");
        var act = r.String("hidden_act") ?? "silu";
        if (act != "silu") r.Fail("hidden_act", $"'{act}' is not supported (SwiGLU with SiLU only)");
        if (r.Has("rope_scaling")) r.Fail("rope_scaling", "is not supported (plain RoPE only)");
        var d = r.Int("hidden_size") ?? r.Fail<int>("hidden_size", "is missing");
        var heads = r.Int("num_attention_heads") ?? r.Fail<int>("num_attention_heads", "is missing");
        if (r.Int("head_dim") is { } hd && hd * heads != d)
            r.Fail("head_dim", $"{hd} × {heads} heads ≠ hidden_size {d} is not supported");
        var context = r.Int("max_position_embeddings") ?? r.Fail<int>("max_position_embeddings", "is missing");
        if (type == "qwen2" && r.Bool("use_sliding_window") == true)
            r.Fail("use_sliding_window", "sliding-window attention is not supported");
        if (type == "mistral" && r.Int("sliding_window") is { } window && window < context)
        {
            notes.Add($"sliding_window={window}: sequences are limited to {window} tokens, where full and sliding-window attention agree");
            context = window;
        }
        foreach (var f in new[] { "attention_dropout" })
            if (r.Float(f) is { } p && p != 0) notes.Add($"{f}={p.ToString(CultureInfo.InvariantCulture)} is not used");
        return new ModelConfig
        {
            Architecture = Architecture.Llama,
            Layout = ModelLayout.HuggingFace,
            VocabSize = r.Int("vocab_size") ?? r.Fail<int>("vocab_size", "is missing"),
            DModel = d,
            Layers = r.Int("num_hidden_layers") ?? r.Fail<int>("num_hidden_layers", "is missing"),
            Heads = heads,
            KvHeads = r.Int("num_key_value_heads") ?? heads,
            Context = context,
            FfHidden = r.Int("intermediate_size") ?? r.Fail<int>("intermediate_size", "is missing"),
            NormEps = (float)(r.Float("rms_norm_eps") ?? 1e-6),
            RopeTheta = (float)(r.Float("rope_theta") ?? 10000),
            TieEmbeddings = r.Bool("tie_word_embeddings") ?? false,
            AttentionBias = r.Bool("attention_bias") ?? false,
            QkvBias = type == "qwen2",
            MlpBias = r.Bool("mlp_bias") ?? false,
            BosTokenId = r.TokenId("bos_token_id"),
            EosTokenId = r.TokenId("eos_token_id"),
        };
    }

    /// <summary>Typed access to config fields with errors that name the file and the field.</summary>
    private sealed class ConfigReader(string path, JsonObject root)
    {
        public bool Has(string name) => root.TryGetPropertyValue(name, out var v) && v != null;

        public void Fail(string field, string problem) => throw new ArgumentException($"{path}: '{field}' {problem}.");

        public T Fail<T>(string field, string problem) => throw new ArgumentException($"{path}: '{field}' {problem}.");

        private JsonValue? Value(string name, string kind)
        {
            if (!root.TryGetPropertyValue(name, out var v) || v == null) return null;
            return v as JsonValue ?? throw new ArgumentException($"{path}: '{name}' must be {kind}, got {v.ToJsonString()}.");
        }

        public string? String(string name)
        {
            var v = Value(name, "a string");
            if (v == null) return null;
            return v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw new ArgumentException($"{path}: '{name}' must be a string, got {v.ToJsonString()}.");
        }

        public int? Int(string name)
        {
            var v = Value(name, "an integer");
            if (v == null) return null;
            if (v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i)) return i;
            if (v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue) return (int)d;
            throw new ArgumentException($"{path}: '{name}' must be an integer, got {v.ToJsonString()}.");
        }

        public double? Float(string name)
        {
            var v = Value(name, "a number");
            if (v == null) return null;
            if (v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) && double.IsFinite(d)) return d;
            throw new ArgumentException($"{path}: '{name}' must be a finite number, got {v.ToJsonString()}.");
        }

        public bool? Bool(string name)
        {
            var v = Value(name, "true or false");
            if (v == null) return null;
            return v.GetValueKind() switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new ArgumentException($"{path}: '{name}' must be true or false, got {v.ToJsonString()}."),
            };
        }

        /// <summary>A token id, or the first of a list of them (newer configs list several eos ids).</summary>
        public int? TokenId(string name)
        {
            if (root.TryGetPropertyValue(name, out var v) && v is JsonArray a)
            {
                if (a.Count == 0) return null;
                if (a[0] is JsonValue first && first.TryGetValue<int>(out var id)) return id;
                throw new ArgumentException($"{path}: '{name}' must be an integer or a list of integers, got {v.ToJsonString()}.");
            }
            return Int(name);
        }

        public void Require(string name, bool expected, string what)
        {
            if (Bool(name) is { } b && b != expected) Fail(name, $"= {(b ? "true" : "false")} ({what}) is not supported");
        }

        public void Architectures(params string[] allowed)
        {
            if (!root.TryGetPropertyValue("architectures", out var v) || v == null) return;
            if (v is not JsonArray a) { Fail("architectures", "must be a list of class names"); return; }
            foreach (var item in a)
            {
                var name = item?.GetValueKind() == JsonValueKind.String ? item.GetValue<string>() : item?.ToJsonString();
                if (Array.IndexOf(allowed, name) < 0)
                    Fail("architectures", $"names '{name}', which is not supported (supported: {string.Join(", ", allowed)})");
            }
        }
    }

    // ------------------------------------------------------------------ weights

    /// <summary>
    /// Loads an HF model directory: config.json and the safetensors weights (single file or shards; F32, F16, BF16
    /// converted to float32 one tensor at a time). Every model parameter must be in the files and every tensor in the
    /// files must belong to the model (causal-mask buffers and RoPE frequency buffers excepted); errors name the file
    /// and the tensor. Non-finite weights are errors too.
    /// </summary>
    public static TransformerModel Load(string directory) => Load(directory, out _);

    /// <inheritdoc cref="Load(string)"/>
    public static TransformerModel Load(string directory, out IReadOnlyList<string> notes)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"Model directory '{directory}' does not exist.");
        var cfg = ReadConfig(Path.Combine(directory, ConfigFileName), out notes);
        var model = new TransformerModel(cfg);
        LoadWeights(directory, model);
        return model;
    }

    /// <summary>The weight files of an HF directory, with the tensors each is expected to hold (null: any).</summary>
    private static List<(string File, HashSet<string>? Keys)> WeightFiles(string directory)
    {
        var index = Path.Combine(directory, IndexFileName);
        var single = Path.Combine(directory, WeightsFileName);
        if (File.Exists(index))
        {
            JsonObject? map;
            try
            {
                map = (JsonNode.Parse(File.ReadAllText(index)) as JsonObject)?["weight_map"] as JsonObject;
            }
            catch (JsonException e)
            {
                throw new ArgumentException($"{index}: invalid JSON ({e.Message}).", e);
            }
            if (map == null) throw new ArgumentException($"{index}: no 'weight_map' object.");
            var byFile = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
            foreach (var (key, value) in map)
            {
                var file = value?.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
                if (string.IsNullOrEmpty(file) || file.Contains('/') || file.Contains('\\') || file.Contains(".."))
                    throw new ArgumentException($"{index}: weight_map entry '{key}' must name a file in the directory, got {value?.ToJsonString() ?? "null"}.");
                if (!byFile.TryGetValue(file, out var keys)) byFile[file] = keys = new HashSet<string>(StringComparer.Ordinal);
                keys.Add(key);
            }
            var list = new List<(string, HashSet<string>?)>();
            foreach (var (file, keys) in byFile.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var path = Path.Combine(directory, file);
                if (!File.Exists(path)) throw new FileNotFoundException($"{index}: shard '{file}' does not exist.", path);
                list.Add((path, keys));
            }
            return list;
        }
        if (File.Exists(single)) return [(single, null)];
        var pickle = Path.Combine(directory, "pytorch_model.bin");
        if (File.Exists(pickle))
            throw new NotSupportedException($"{directory}: only safetensors weights are supported, found pytorch_model.bin (convert it with transformers: save_pretrained(..., safe_serialization=True)).");
        throw new FileNotFoundException($"{directory}: no weights found (looked for {WeightsFileName} and {IndexFileName}).");
    }

    /// <summary>Whether an HF GPT-2 weight is a Conv1D weight, stored [in, out].</summary>
    private static bool IsConv1D(ModelConfig c, string name) =>
        c.Architecture == Architecture.Gpt2 && (name.EndsWith(".c_attn.weight", StringComparison.Ordinal)
            || name.EndsWith(".c_proj.weight", StringComparison.Ordinal) || name.EndsWith(".c_fc.weight", StringComparison.Ordinal));

    /// <summary>The model's name for a checkpoint key, or null for buffers the engine does not need.</summary>
    private static string? ModelKey(ModelConfig c, string key)
    {
        if (c.Architecture == Architecture.Gpt2)
        {
            if (key.EndsWith(".attn.bias", StringComparison.Ordinal) || key.EndsWith(".attn.masked_bias", StringComparison.Ordinal)) return null;
            if (key.StartsWith("transformer.", StringComparison.Ordinal) || key.StartsWith("lm_head.", StringComparison.Ordinal)) return key;
            return "transformer." + key;
        }
        if (key.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)) return null;
        return key;
    }

    private static void LoadWeights(string directory, TransformerModel model)
    {
        var cfg = model.Config;
        var parameters = model.NamedParameters().ToDictionary(p => p.Name, p => p.Param, StringComparer.Ordinal);
        var loaded = new HashSet<string>(StringComparer.Ordinal);
        string? lastFile = null;
        foreach (var (path, expected) in WeightFiles(directory))
        {
            lastFile = path;
            using var reader = Safetensors.Open(path);
            if (expected != null)
                foreach (var k in expected)
                    if (!reader.Tensors.ContainsKey(k))
                        throw new SafetensorsException(path, k, $"{IndexFileName} puts this tensor in this shard but the shard does not have it");
            foreach (var (key, info) in reader.Tensors)
            {
                var name = ModelKey(cfg, key);
                if (name == null) continue;
                if (cfg.TieEmbeddings && name == "lm_head.weight") continue; // tied: the embeddings are the head
                if (!parameters.TryGetValue(name, out var p))
                    throw new SafetensorsException(path, key, $"the file has this tensor but the {cfg.Architecture} model has no such parameter");
                if (!loaded.Add(name))
                    throw new SafetensorsException(path, key, "this tensor appears twice (with and without the 'transformer.' prefix, or in two shards)");
                var conv = IsConv1D(cfg, name);
                var want = conv ? new[] { p.Dim(1), p.Dim(0) } : p.ShapeArray;
                if (!info.Shape.AsSpan().SequenceEqual(want))
                    throw new SafetensorsException(path, key, $"shape {ShapeUtil.Format(info.Shape)} in the file does not match the model's {ShapeUtil.Format(want)}{(conv ? " (Conv1D, stored [in, out])" : "")}");
                var data = reader.Read(key);
                for (var i = 0; i < data.Length; i++)
                    if (!float.IsFinite(data[i]))
                        throw new SafetensorsException(path, key, $"element {i} is {data[i]}: the weights are not finite");
                p.CopyFrom(conv ? Transpose(data, info.Shape[0], info.Shape[1]) : data);
            }
        }
        foreach (var name in parameters.Keys)
            if (!loaded.Contains(name))
                throw new SafetensorsException(lastFile ?? directory, name, cfg.TieEmbeddings || name != "lm_head.weight"
                    ? "the model has this parameter but the checkpoint does not"
                    : "the model has this parameter but the checkpoint does not (tie_word_embeddings is false, so the head needs its own weight)");
    }

    private static float[] Transpose(float[] a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (var i = 0; i < rows; i++)
            for (var j = 0; j < cols; j++)
                t[j * rows + i] = a[i * cols + j];
        return t;
    }

    // ------------------------------------------------------------------ export

    /// <summary>
    /// Writes an HF model directory that transformers loads: config.json, model.safetensors (F32, HF names and
    /// layouts: GPT-2's Conv1D weights [in, out], no head when tied; metadata format "pt") and the tokenizer files of
    /// <paramref name="tokenizerFrom"/> when given. The model must use the <see cref="ModelLayout.HuggingFace"/>
    /// layout (see <see cref="ToHuggingFaceLayout"/>). Files are written atomically.
    /// </summary>
    public static void Save(TransformerModel model, string directory, string? tokenizerFrom = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var cfg = model.Config;
        if (cfg.Layout != ModelLayout.HuggingFace)
            throw new ArgumentException("HuggingFace.Save: the model uses the engine's layout; convert it with HuggingFace.ToHuggingFaceLayout first.");
        foreach (var l in model.Linears())
            if (l.Layer.Adapter is { IsMerged: false })
                throw new ArgumentException($"HuggingFace.Save: layer '{l.Name}' carries an unmerged adapter; merge it (AdaptedModel.MergeAndUnload) or save the adapter on its own.");
        Directory.CreateDirectory(directory);
        var tensors = new List<SafeTensor>();
        foreach (var (name, p) in model.NamedParameters())
        {
            var data = p.ToArray();
            tensors.Add(IsConv1D(cfg, name)
                ? new SafeTensor(name, [p.Dim(1), p.Dim(0)], Transpose(data, p.Dim(0), p.Dim(1)))
                : new SafeTensor(name, p.ShapeArray.ToArray(), data));
        }
        Safetensors.Save(Path.Combine(directory, WeightsFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" }, checksum: true);
        WriteAtomic(Path.Combine(directory, ConfigFileName), ConfigJson(cfg));
        if (tokenizerFrom != null && Path.GetFullPath(tokenizerFrom) != Path.GetFullPath(directory))
            foreach (var f in TokenizerFiles)
            {
                var src = Path.Combine(tokenizerFrom, f);
                if (File.Exists(src)) File.Copy(src, Path.Combine(directory, f), overwrite: true);
            }
    }

    private static void WriteAtomic(string path, string text)
    {
        var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The HF config.json for a model config.</summary>
    public static string ConfigJson(ModelConfig c)
    {
        var o = new JsonObject();
        if (c.Architecture == Architecture.Gpt2)
        {
            o["architectures"] = new JsonArray("GPT2LMHeadModel");
            o["model_type"] = "gpt2";
            o["vocab_size"] = c.VocabSize;
            o["n_positions"] = c.Context;
            o["n_ctx"] = c.Context;
            o["n_embd"] = c.DModel;
            o["n_layer"] = c.Layers;
            o["n_head"] = c.Heads;
            o["n_inner"] = c.FfHiddenResolved;
            o["activation_function"] = "gelu_new";
            o["layer_norm_epsilon"] = c.NormEps;
            o["resid_pdrop"] = 0.0;
            o["embd_pdrop"] = 0.0;
            o["attn_pdrop"] = 0.0;
            o["scale_attn_weights"] = true;
            o["initializer_range"] = 0.02;
        }
        else
        {
            o["architectures"] = new JsonArray(c.QkvBias && !c.AttentionBias ? "Qwen2ForCausalLM" : "LlamaForCausalLM");
            o["model_type"] = c.QkvBias && !c.AttentionBias ? "qwen2" : "llama";
            o["vocab_size"] = c.VocabSize;
            o["hidden_size"] = c.DModel;
            o["intermediate_size"] = c.FfHiddenResolved;
            o["num_hidden_layers"] = c.Layers;
            o["num_attention_heads"] = c.Heads;
            o["num_key_value_heads"] = c.KvHeadsResolved;
            o["max_position_embeddings"] = c.Context;
            o["rms_norm_eps"] = c.NormEps;
            o["rope_theta"] = c.RopeTheta;
            o["rope_scaling"] = null;
            o["hidden_act"] = "silu";
            o["attention_bias"] = c.AttentionBias;
            o["mlp_bias"] = c.MlpBias;
            o["attention_dropout"] = 0.0;
            if (c.QkvBias && !c.AttentionBias) o["use_sliding_window"] = false;
        }
        o["tie_word_embeddings"] = c.TieEmbeddings;
        if (c.BosTokenId is { } bos) o["bos_token_id"] = bos;
        if (c.EosTokenId is { } eos) o["eos_token_id"] = eos;
        o["torch_dtype"] = "float32";
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// The same network in the Hugging Face layout: an engine-layout model's weights renamed (GPT-2's q, k, v joined
    /// into c_attn; missing biases become zeros, since HF GPT-2 always has them). An HF-layout model is returned as is.
    /// </summary>
    public static TransformerModel ToHuggingFaceLayout(TransformerModel model)
    {
        var c = model.Config;
        if (c.Layout == ModelLayout.HuggingFace) return model;
        var hfCfg = c with { Layout = ModelLayout.HuggingFace, Bias = c.Bias || c.Architecture == Architecture.Gpt2, Dropout = 0 };
        var hf = new TransformerModel(hfCfg);
        var src = model.NamedParameters().ToDictionary(p => p.Name, p => p.Param, StringComparer.Ordinal);
        var dst = hf.NamedParameters().ToDictionary(p => p.Name, p => p.Param, StringComparer.Ordinal);
        var e = LayerNames.Engine;
        var h = LayerNames.For(hfCfg);
        var root = h.Root + ".";
        void Copy(string from, string to)
        {
            if (src.TryGetValue(from, out var s)) dst[to].CopyFrom(s.ToArray());
            else dst[to].CopyFrom(new float[dst[to].Length]); // a bias the engine model does not have
        }
        Copy($"{e.TokEmb}.weight", $"{root}{h.TokEmb}.weight");
        if (c.Architecture == Architecture.Gpt2) Copy($"{e.PosEmb}.weight", $"{root}{h.PosEmb}.weight");
        for (var i = 0; i < c.Layers; i++)
        {
            string eb = $"{e.Blocks}.{i}.", hb = $"{root}{h.Blocks}.{i}.";
            foreach (var pn in new[] { "weight", "bias" })
            {
                if (!dst.ContainsKey($"{hb}{h.Norm1}.{pn}")) continue;
                Copy($"{eb}{e.Norm1}.{pn}", $"{hb}{h.Norm1}.{pn}");
                Copy($"{eb}{e.Norm2}.{pn}", $"{hb}{h.Norm2}.{pn}");
            }
            foreach (var pn in new[] { "weight", "bias" })
            {
                if (h.Qkv != null)
                {
                    var target = $"{hb}{h.Attn}.{h.Qkv}.{pn}";
                    if (!dst.ContainsKey(target)) continue;
                    var parts = new[] { e.Q, e.K, e.V }.Select(n => src.TryGetValue($"{eb}{e.Attn}.{n}.{pn}", out var t) ? t.ToArray() : null).ToArray();
                    var len = dst[target].Length / 3;
                    var joined = new float[dst[target].Length];
                    for (var j = 0; j < 3; j++) parts[j]?.CopyTo(joined, j * len);
                    dst[target].CopyFrom(joined);
                }
                else
                    foreach (var (en, hn) in new[] { (e.Q, h.Q), (e.K, h.K), (e.V, h.V) })
                        if (dst.ContainsKey($"{hb}{h.Attn}.{hn}.{pn}")) Copy($"{eb}{e.Attn}.{en}.{pn}", $"{hb}{h.Attn}.{hn}.{pn}");
                if (dst.ContainsKey($"{hb}{h.Attn}.{h.O}.{pn}")) Copy($"{eb}{e.Attn}.{e.O}.{pn}", $"{hb}{h.Attn}.{h.O}.{pn}");
                foreach (var (en, hn) in new[] { (e.Gate, h.Gate), (e.Up, h.Up), (e.Down, h.Down) })
                    if (dst.ContainsKey($"{hb}{h.Mlp}.{hn}.{pn}")) Copy($"{eb}{e.Mlp}.{en}.{pn}", $"{hb}{h.Mlp}.{hn}.{pn}");
            }
        }
        foreach (var pn in new[] { "weight", "bias" })
            if (dst.ContainsKey($"{root}{h.NormF}.{pn}")) Copy($"{e.NormF}.{pn}", $"{root}{h.NormF}.{pn}");
        if (!c.TieEmbeddings) Copy($"{e.Head}.weight", $"{h.Head}.weight");
        return hf;
    }
}
