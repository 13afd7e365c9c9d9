using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoraEngine.Nn;

/// <summary>The two decoder families.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Architecture>))]
public enum Architecture
{
    /// <summary>Pre-LN LayerNorm, learned positions, GELU MLP (up, down).</summary>
    Gpt2,
    /// <summary>RMSNorm, rotary positions, SwiGLU MLP (gate, up, down).</summary>
    Llama,
}

/// <summary>How a model's modules are named (and so its parameter keys and adapter targets).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ModelLayout>))]
public enum ModelLayout
{
    /// <summary>The engine's own names: <c>tok_emb</c>, <c>blocks.0.attn.q</c>, <c>blocks.0.mlp.up</c>, <c>head</c>.</summary>
    Engine,
    /// <summary>
    /// Hugging Face transformers' names: GPT-2's <c>transformer.h.0.attn.c_attn</c> (one fused q/k/v layer),
    /// <c>c_proj</c>, <c>mlp.c_fc</c>; LLaMA's <c>model.layers.0.self_attn.q_proj</c> … <c>mlp.down_proj</c>,
    /// <c>lm_head</c>. Weights are kept [out, in] in memory; GPT-2's Conv1D [in, out] layout is a file concern.
    /// </summary>
    HuggingFace,
}

/// <summary>A decoder-only transformer's shape. Serialised as JSON next to checkpoints.</summary>
public sealed record ModelConfig
{
    public Architecture Architecture { get; init; } = Architecture.Gpt2;
    public int VocabSize { get; init; } = 256;
    public int DModel { get; init; } = 256;
    public int Layers { get; init; } = 4;
    public int Heads { get; init; } = 4;
    public int Context { get; init; } = 128;
    /// <summary>MLP hidden size; 0 picks 4·d (GPT-2) or the LLaMA rule ⌈(8/3·d)/32⌉·32.</summary>
    public int FfHidden { get; init; }
    public bool Bias { get; init; }
    public float Dropout { get; init; }
    public float RopeTheta { get; init; } = 10000f;
    public float NormEps { get; init; } = 1e-5f;
    /// <summary>Key/value heads for grouped-query attention; 0 means <see cref="Heads"/> (plain multi-head).</summary>
    public int KvHeads { get; init; }
    /// <summary>The output head reuses the token embedding matrix (no separate head weight).</summary>
    public bool TieEmbeddings { get; init; }
    /// <summary>Biases on q, k, v and o (LLaMA's <c>attention_bias</c>); <see cref="Bias"/> implies it.</summary>
    public bool AttentionBias { get; init; }
    /// <summary>Biases on q, k and v only (Qwen2).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Biases on the MLP layers (LLaMA's <c>mlp_bias</c>); <see cref="Bias"/> implies it.</summary>
    public bool MlpBias { get; init; }
    /// <summary>Beginning-of-sequence token id, when the model's tokenizer has one.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>End-of-sequence token id (generation stops there; documents are separated by it).</summary>
    public int? EosTokenId { get; init; }
    /// <summary>Module names: the engine's own or Hugging Face's.</summary>
    public ModelLayout Layout { get; init; } = ModelLayout.Engine;

    /// <summary>The key/value head count in use.</summary>
    [JsonIgnore]
    public int KvHeadsResolved => KvHeads > 0 ? KvHeads : Heads;

    /// <summary>Width of one attention head.</summary>
    [JsonIgnore]
    public int HeadDim => DModel / Heads;

    /// <summary>The MLP hidden size in use.</summary>
    [JsonIgnore]
    public int FfHiddenResolved => Shared.MoraShapes.FfHidden(Architecture == Architecture.Llama, DModel, FfHidden);

    /// <summary>The model's parameter count, from the shapes alone (nothing is allocated).</summary>
    public long ParameterCount()
    {
        long d = DModel, f = FfHiddenResolved, v = VocabSize, kv = (long)KvHeadsResolved * HeadDim;
        long qkvBias = Bias || AttentionBias || QkvBias ? 1 : 0, oBias = Bias || AttentionBias ? 1 : 0, mlpBias = Bias || MlpBias ? 1 : 0;
        long norm = Architecture == Architecture.Gpt2 && Bias ? 2 * d : d;
        long attention = d * d + 2 * d * kv + qkvBias * (d + 2 * kv) + d * d + oBias * d;
        long mlp = (Architecture == Architecture.Llama ? 2 * (d * f + mlpBias * f) : d * f + mlpBias * f) + f * d + mlpBias * d;
        long total = v * d + (Architecture == Architecture.Gpt2 ? (long)Context * d : 0);
        total += Layers * (2 * norm + attention + mlp) + norm;
        if (!TieEmbeddings) total += v * d;
        return total;
    }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad field.</summary>
    public void Validate()
    {
        void Positive(int v, string name)
        {
            if (v <= 0) throw new ArgumentException($"ModelConfig: {name} must be positive, got {v}.");
        }
        Positive(VocabSize, nameof(VocabSize));
        Positive(DModel, nameof(DModel));
        Positive(Layers, nameof(Layers));
        Positive(Heads, nameof(Heads));
        Positive(Context, nameof(Context));
        if (DModel % Heads != 0) throw new ArgumentException($"ModelConfig: DModel {DModel} is not divisible by Heads {Heads}.");
        if (Architecture == Architecture.Llama && DModel / Heads % 2 != 0)
            throw new ArgumentException($"ModelConfig: rotary embeddings need an even head size, got {DModel / Heads}.");
        if (Dropout is < 0 or >= 1) throw new ArgumentException($"ModelConfig: Dropout must be in [0, 1), got {Dropout}.");
        if (FfHidden < 0) throw new ArgumentException($"ModelConfig: FfHidden must be ≥ 0, got {FfHidden}.");
        if (KvHeads < 0 || KvHeads > 0 && Heads % KvHeads != 0)
            throw new ArgumentException($"ModelConfig: KvHeads {KvHeads} must be 0 (= Heads) or divide Heads {Heads}.");
        if (!(NormEps > 0) || float.IsInfinity(NormEps)) throw new ArgumentException($"ModelConfig: NormEps must be positive and finite, got {NormEps}.");
        if (!(RopeTheta > 0) || float.IsInfinity(RopeTheta)) throw new ArgumentException($"ModelConfig: RopeTheta must be positive and finite, got {RopeTheta}.");
        if (!Enum.IsDefined(Architecture)) throw new ArgumentException($"ModelConfig: unknown architecture {(int)Architecture}.");
        if (BosTokenId is { } bos && (bos < 0 || bos >= VocabSize)) throw new ArgumentException($"ModelConfig: BosTokenId {bos} is outside the vocabulary [0, {VocabSize}).");
        if (EosTokenId is { } eos && (eos < 0 || eos >= VocabSize)) throw new ArgumentException($"ModelConfig: EosTokenId {eos} is outside the vocabulary [0, {VocabSize}).");
        if (!Enum.IsDefined(Layout)) throw new ArgumentException($"ModelConfig: unknown layout {(int)Layout}.");
    }

    /// <summary>The CPU benchmark model: GPT-2 style, vocab 256, d 256, 4 layers, 4 heads, context 128.</summary>
    public static ModelConfig SmallCpu => new() { Architecture = Architecture.Gpt2, VocabSize = 256, DModel = 256, Layers = 4, Heads = 4, Context = 128 };

    /// <summary>The GPU benchmark model: small-cpu at d 512, 6 layers, 8 heads.</summary>
    public static ModelConfig SmallGpu => new() { Architecture = Architecture.Gpt2, VocabSize = 256, DModel = 512, Layers = 6, Heads = 8, Context = 128 };

    /// <summary>A LLaMA-style counterpart of small-cpu.</summary>
    public static ModelConfig SmallLlama => new() { Architecture = Architecture.Llama, VocabSize = 256, DModel = 256, Layers = 4, Heads = 4, Context = 128, NormEps = 1e-6f };

    /// <summary>Seconds-sized model for tests and the synthetic task.</summary>
    public static ModelConfig Tiny => new() { Architecture = Architecture.Gpt2, VocabSize = 32, DModel = 64, Layers = 2, Heads = 4, Context = 32 };

    /// <summary>GPT-2 124M's shape in the Hugging Face layout (for benchmarks with random weights).</summary>
    public static ModelConfig Gpt2_124M => new()
    {
        Architecture = Architecture.Gpt2, Layout = ModelLayout.HuggingFace, VocabSize = 50257, DModel = 768, Layers = 12, Heads = 12, Context = 1024,
        Bias = true, TieEmbeddings = true, BosTokenId = 50256, EosTokenId = 50256,
    };

    /// <summary>Named presets: small-cpu, small-gpu, small-llama, tiny, gpt2-124m.</summary>
    public static ModelConfig Preset(string name) => name switch
    {
        "small-cpu" => SmallCpu,
        "small-gpu" => SmallGpu,
        "small-llama" => SmallLlama,
        "tiny" => Tiny,
        "gpt2-124m" => Gpt2_124M,
        _ => throw new ArgumentException($"Unknown model preset '{name}' (known: small-cpu, small-gpu, small-llama, tiny, gpt2-124m)."),
    };

    /// <summary>snake_case fields; a field the config does not have (a typo such as <c>d_modle</c>) is an error, not a default.</summary>
    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses and validates a config; errors name the problem.</summary>
    public static ModelConfig FromJson(string json)
    {
        ModelConfig? c;
        try
        {
            c = JsonSerializer.Deserialize<ModelConfig>(json, Json);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"ModelConfig: invalid JSON: {e.Message}", e);
        }
        if (c == null) throw new ArgumentException("ModelConfig: JSON is null.");
        c.Validate();
        return c;
    }
}
