using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoraEngine.Adapters;

/// <summary>Which update an adapter learns.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<AdapterMethod>))]
public enum AdapterMethod
{
    /// <summary>ΔW = s·B·A with rank r.</summary>
    Lora,
    /// <summary>ΔW = f_decomp ∘ M ∘ f_comp with a square r̂×r̂ matrix M.</summary>
    Mora,
}

/// <summary>
/// An adapter configuration in the spirit of PEFT's <c>LoraConfig</c> (and the MoRA fork's <c>use_mora</c> /
/// <c>mora_type</c>): which method, which rank, which layers.
/// </summary>
public sealed record AdapterConfig
{
    /// <summary>
    /// The layer names adapters may target: the engine's own (q, k, v, o, up, down, gate) and Hugging Face's (GPT-2's
    /// c_attn, c_proj, c_fc; LLaMA's q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj).
    /// </summary>
    public static readonly string[] KnownTargets = Shared.MoraShapes.KnownTargets;

    /// <summary>The default targets for a model's layout: every linear layer but the head.</summary>
    public static string[] DefaultTargets(Nn.ModelConfig model) =>
        model.Layout == Nn.ModelLayout.Engine
            ? (model.Architecture == Nn.Architecture.Llama ? ["q", "k", "v", "o", "gate", "up", "down"] : ["q", "k", "v", "o", "up", "down"])
            : model.Architecture == Nn.Architecture.Gpt2 ? ["c_attn", "c_proj", "c_fc"]
            : ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    public AdapterMethod Method { get; init; } = AdapterMethod.Lora;

    /// <summary>LoRA rank r; MoRA derives r̂ from it so both have the same parameter budget.</summary>
    public int Rank { get; init; } = 8;

    /// <summary>LoRA's α (scaling α/r, or α/√r with rsLoRA). MoRA ignores it (its scaling is 1).</summary>
    public float Alpha { get; init; } = 16f;

    public bool UseRsLora { get; init; }

    /// <summary>Dropout on the adapter's input path only.</summary>
    public float Dropout { get; init; }

    /// <summary>MoRA's compression/decompression operator.</summary>
    public MoraType MoraType { get; init; } = MoraType.Sharing;

    /// <summary>Names of the Linear layers to adapt (last path segment: q, k, v, o, up, down, gate).</summary>
    public string[] TargetModules { get; init; } = ["q", "k", "v", "o", "up", "down"];

    /// <summary>Also train the embeddings and the output head (pretraining with adapters).</summary>
    public bool TrainEmbeddingsAndHead { get; init; }

    /// <summary>Seed for adapter initialisation and dropout.</summary>
    public ulong Seed { get; init; } = 17;

    /// <summary>LoRA's output scaling.</summary>
    [JsonIgnore]
    public float Scaling => Method == AdapterMethod.Mora ? 1f : UseRsLora ? Alpha / MathF.Sqrt(Rank) : Alpha / Rank;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad field.</summary>
    public void Validate()
    {
        if (Rank <= 0) throw new ArgumentException($"AdapterConfig: rank r must be positive, got {Rank}.");
        if (Dropout is < 0 or >= 1) throw new ArgumentException($"AdapterConfig: dropout must be in [0, 1), got {Dropout}.");
        if (TargetModules.Length == 0) throw new ArgumentException("AdapterConfig: no target modules.");
        foreach (var t in TargetModules)
            if (Array.IndexOf(KnownTargets, t) < 0)
                throw new ArgumentException($"AdapterConfig: unknown target module '{t}' (known: {string.Join(", ", KnownTargets)}).");
        if (!Enum.IsDefined(MoraType)) throw new ArgumentException($"AdapterConfig: unknown MoRA type {(int)MoraType} (known: 0, 1, 2, 3, 4, 6).");
    }

    /// <summary>PEFT's <c>adapter_config.json</c> (field names as PEFT and the official MoRA fork write them).</summary>
    /// <param name="fanInFanOut">True for GPT-2's Conv1D layers (weights stored [in, out]), as PEFT writes it for them.</param>
    /// <param name="modulesToSave">The modules trained in full and saved with the adapter, by name.</param>
    public string ToPeftJson(bool fanInFanOut = false, string[]? modulesToSave = null)
    {
        var o = new Dictionary<string, object?>
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["r"] = Rank,
            ["lora_alpha"] = Alpha,
            ["lora_dropout"] = Dropout,
            ["use_rslora"] = UseRsLora,
            ["target_modules"] = TargetModules,
            ["bias"] = "none",
            ["fan_in_fan_out"] = fanInFanOut,
            ["use_mora"] = Method == AdapterMethod.Mora,
            ["mora_type"] = (int)MoraType,
            ["modules_to_save"] = TrainEmbeddingsAndHead ? modulesToSave ?? ["tok_emb", "pos_emb", "head"] : null,
            ["init_seed"] = Seed,
        };
        return JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Reads PEFT's <c>adapter_config.json</c>; errors name the file and the field (a field of the wrong type is an error, not a default).</summary>
    public static AdapterConfig FromPeftJson(string json, string source = "adapter_config.json")
    {
        JsonElement root;
        try
        {
            root = JsonDocument.Parse(json).RootElement;
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{source}: invalid JSON ({e.Message}).", e);
        }
        if (root.ValueKind != JsonValueKind.Object) throw new ArgumentException($"{source}: expected a JSON object.");
        bool Present(string name, out JsonElement v) => root.TryGetProperty(name, out v) && v.ValueKind != JsonValueKind.Null;
        int GetInt(string name, int fallback)
        {
            if (!Present(name, out var v)) return fallback;
            return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw new ArgumentException($"{source}: '{name}' must be an integer, got {v.GetRawText()}.");
        }
        float GetFloat(string name, float fallback)
        {
            if (!Present(name, out var v)) return fallback;
            return v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && double.IsFinite(d) ? (float)d : throw new ArgumentException($"{source}: '{name}' must be a finite number, got {v.GetRawText()}.");
        }
        bool GetBool(string name)
        {
            if (!Present(name, out var v)) return false;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new ArgumentException($"{source}: '{name}' must be true or false, got {v.GetRawText()}."),
            };
        }
        if (!root.TryGetProperty("r", out _)) throw new ArgumentException($"{source}: missing field 'r'.");
        if (Present("peft_type", out var pt) && (pt.ValueKind != JsonValueKind.String || pt.GetString() != "LORA"))
            throw new ArgumentException($"{source}: peft_type '{pt.GetRawText()}' is not supported (LORA, with use_mora for MoRA).");
        string[] targets = [];
        if (Present("target_modules", out var tm))
        {
            if (tm.ValueKind == JsonValueKind.Array && tm.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String))
                targets = tm.EnumerateArray().Select(e => e.GetString()!).ToArray();
            else if (tm.ValueKind == JsonValueKind.String) targets = [tm.GetString()!];
            else throw new ArgumentException($"{source}: 'target_modules' must be a list of layer names, got {tm.GetRawText()}.");
        }
        var useMora = GetBool("use_mora");
        var mtype = GetInt("mora_type", 1);
        var cfg = new AdapterConfig
        {
            Method = useMora ? AdapterMethod.Mora : AdapterMethod.Lora,
            Rank = GetInt("r", 8),
            Alpha = GetFloat("lora_alpha", 8f),
            Dropout = GetFloat("lora_dropout", 0f),
            UseRsLora = GetBool("use_rslora"),
            MoraType = (MoraType)mtype,
            TargetModules = targets,
            TrainEmbeddingsAndHead = root.TryGetProperty("modules_to_save", out var ms) && ms.ValueKind == JsonValueKind.Array && ms.GetArrayLength() > 0,
            Seed = Present("init_seed", out var s) ? (s.ValueKind == JsonValueKind.Number && s.TryGetUInt64(out var seed) ? seed : throw new ArgumentException($"{source}: 'init_seed' must be a non-negative integer, got {s.GetRawText()}.")) : 17,
        };
        try
        {
            cfg.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{source}: {e.Message}", e);
        }
        return cfg;
    }
}
