namespace MoraEngine.Nn;

/// <summary>The module names of one <see cref="ModelLayout"/> and architecture.</summary>
internal sealed record LayerNames(
    string? Root, string TokEmb, string PosEmb, string Blocks, string Norm1, string Attn, string Q, string K, string V, string? Qkv,
    string O, string Norm2, string Mlp, string Gate, string Up, string Down, string NormF, string Head)
{
    public static readonly LayerNames Engine = new(null, "tok_emb", "pos_emb", "blocks", "ln1", "attn", "q", "k", "v", null,
        "o", "ln2", "mlp", "gate", "up", "down", "ln_f", "head");

    /// <summary>GPT2LMHeadModel: q, k and v are one fused <c>c_attn</c> layer.</summary>
    public static readonly LayerNames HfGpt2 = new("transformer", "wte", "wpe", "h", "ln_1", "attn", "", "", "", "c_attn",
        "c_proj", "ln_2", "mlp", "", "c_fc", "c_proj", "ln_f", "lm_head");

    /// <summary>LlamaForCausalLM (also Qwen2, Mistral).</summary>
    public static readonly LayerNames HfLlama = new("model", "embed_tokens", "", "layers", "input_layernorm", "self_attn", "q_proj", "k_proj", "v_proj", null,
        "o_proj", "post_attention_layernorm", "mlp", "gate_proj", "up_proj", "down_proj", "norm", "lm_head");

    public static LayerNames For(ModelConfig c) => c.Layout == ModelLayout.Engine ? Engine
        : c.Architecture == Architecture.Gpt2 ? HfGpt2 : HfLlama;
}

/// <summary>
/// Causal multi-head self-attention with q, k, v, o projections (separate, so adapters can target each, or one fused
/// q/k/v layer as GPT-2's <c>c_attn</c>), optional grouped-query attention (fewer key/value heads, each shared by a
/// group of query heads) and rotary positions for LLaMA.
/// </summary>
public sealed class CausalSelfAttention : Module
{
    private readonly int _heads;
    private readonly int _kvHeads;
    private readonly bool _rope;
    private readonly float _ropeTheta;

    public CausalSelfAttention(ModelConfig c, Rng rng) : this(c, rng, LayerNames.For(c)) { }

    internal CausalSelfAttention(ModelConfig c, Rng rng, LayerNames names)
    {
        _heads = c.Heads;
        _kvHeads = c.KvHeadsResolved;
        _rope = c.Architecture == Architecture.Llama;
        _ropeTheta = c.RopeTheta;
        var std = 0.02f;
        var residualStd = 0.02f / MathF.Sqrt(2 * c.Layers);
        var kvWidth = _kvHeads * c.HeadDim;
        var qkvBias = c.Bias || c.AttentionBias || c.QkvBias;
        if (names.Qkv != null)
            Qkv = AddModule(names.Qkv, new Linear(c.DModel, c.DModel + 2 * kvWidth, qkvBias, rng, std));
        else
        {
            Q = AddModule(names.Q, new Linear(c.DModel, c.DModel, qkvBias, rng, std));
            K = AddModule(names.K, new Linear(c.DModel, kvWidth, qkvBias, rng, std));
            V = AddModule(names.V, new Linear(c.DModel, kvWidth, qkvBias, rng, std));
        }
        O = AddModule(names.O, new Linear(c.DModel, c.DModel, c.Bias || c.AttentionBias, rng, residualStd));
    }

    /// <summary>The query projection, or null when q, k and v are the fused <see cref="Qkv"/>.</summary>
    public Linear? Q { get; }
    public Linear? K { get; }
    public Linear? V { get; }

    /// <summary>The fused projection [q; k; v] (GPT-2's <c>c_attn</c>), or null.</summary>
    public Linear? Qkv { get; }

    public Linear O { get; }

    /// <summary>Query heads.</summary>
    public int Heads => _heads;

    /// <summary>Key/value heads (fewer than <see cref="Heads"/> with grouped-query attention).</summary>
    public int KvHeads => _kvHeads;

    /// <summary>q, k and v for x [B, T, D], rotated by RoPE from <paramref name="position"/> when the model uses it; k and v have the key/value heads only.</summary>
    internal (Tensor Q, Tensor K, Tensor V) Project(Tensor x, int position)
    {
        Tensor q, k, v;
        if (Qkv != null)
        {
            var d = O.InFeatures;
            var kv = (Qkv.OutFeatures - d) / 2;
            var parts = Ops.Split(Qkv.Forward(x), d, kv, kv);
            (q, k, v) = (parts[0], parts[1], parts[2]);
        }
        else
        {
            q = Q!.Forward(x);
            k = K!.Forward(x);
            v = V!.Forward(x);
        }
        if (_rope)
        {
            q = Ops.Rope(q, _heads, _ropeTheta, position);
            k = Ops.Rope(k, _kvHeads, _ropeTheta, position);
        }
        return (q, k, v);
    }

    /// <summary>x [B, T, D] → [B, T, D].</summary>
    public Tensor Forward(Tensor x)
    {
        // A fused projection without rotation or shared key/value heads feeds the attention as it is.
        if (Qkv != null && !_rope && _kvHeads == _heads) return O.Forward(Ops.CausalSelfAttentionQkv(Qkv.Forward(x), _heads));
        var (q, k, v) = Project(x, 0);
        if (_kvHeads != _heads)
        {
            k = Ops.RepeatHeads(k, _kvHeads, _heads / _kvHeads);
            v = Ops.RepeatHeads(v, _kvHeads, _heads / _kvHeads);
        }
        return O.Forward(Ops.CausalSelfAttention(q, k, v, _heads));
    }
}

/// <summary>GELU MLP (up, down) or SwiGLU MLP (gate, up, down).</summary>
public sealed class Mlp : Module
{
    public Mlp(ModelConfig c, Rng rng) : this(c, rng, LayerNames.For(c)) { }

    internal Mlp(ModelConfig c, Rng rng, LayerNames names)
    {
        var hidden = c.FfHiddenResolved;
        var residualStd = 0.02f / MathF.Sqrt(2 * c.Layers);
        var bias = c.Bias || c.MlpBias;
        if (c.Architecture == Architecture.Llama) Gate = AddModule(names.Gate, new Linear(c.DModel, hidden, bias, rng, 0.02f));
        Up = AddModule(names.Up, new Linear(c.DModel, hidden, bias, rng, 0.02f));
        Down = AddModule(names.Down, new Linear(hidden, c.DModel, bias, rng, residualStd));
    }

    public Linear? Gate { get; }
    public Linear Up { get; }
    public Linear Down { get; }

    public Tensor Forward(Tensor x) =>
        Gate == null
            ? Down.Forward(Ops.Gelu(Up.Forward(x)))
            : Down.Forward(Ops.SwiGlu(Gate.Forward(x), Up.Forward(x)));
}

/// <summary>Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x)).</summary>
public sealed class Block : Module
{
    private readonly float _dropout;
    private readonly Rng _dropRng;

    public Block(ModelConfig c, Rng rng) : this(c, rng, LayerNames.For(c)) { }

    internal Block(ModelConfig c, Rng rng, LayerNames n)
    {
        _dropout = c.Dropout;
        _dropRng = new Rng(rng.NextUInt());
        if (c.Architecture == Architecture.Gpt2)
        {
            Ln1 = AddModule(n.Norm1, new LayerNorm(c.DModel, c.Bias, c.NormEps));
            Attn = AddModule(n.Attn, new CausalSelfAttention(c, rng, n));
            Ln2 = AddModule(n.Norm2, new LayerNorm(c.DModel, c.Bias, c.NormEps));
        }
        else
        {
            Rms1 = AddModule(n.Norm1, new RmsNorm(c.DModel, c.NormEps));
            Attn = AddModule(n.Attn, new CausalSelfAttention(c, rng, n));
            Rms2 = AddModule(n.Norm2, new RmsNorm(c.DModel, c.NormEps));
        }
        Mlp = AddModule(n.Mlp, new Mlp(c, rng, n));
    }

    public LayerNorm? Ln1 { get; }
    public LayerNorm? Ln2 { get; }
    public RmsNorm? Rms1 { get; }
    public RmsNorm? Rms2 { get; }
    public CausalSelfAttention Attn { get; }
    public Mlp Mlp { get; }

    /// <summary>The dropout generator (part of the training state, for exact resume).</summary>
    internal Rng DropoutRng => _dropRng;

    internal Tensor Norm1(Tensor x) => Ln1 != null ? Ln1.Forward(x) : Rms1!.Forward(x);

    internal Tensor Norm2(Tensor x) => Ln2 != null ? Ln2.Forward(x) : Rms2!.Forward(x);

    public Tensor Forward(Tensor x)
    {
        var h = Attn.Forward(Ln1 != null ? Ln1.Forward(x) : Rms1!.Forward(x));
        x = Ops.Add(x, Ops.Dropout(h, _dropout, _dropRng, Training));
        h = Mlp.Forward(Ln2 != null ? Ln2.Forward(x) : Rms2!.Forward(x));
        return Ops.Add(x, Ops.Dropout(h, _dropout, _dropRng, Training));
    }
}

/// <summary>
/// A decoder-only language model: token (+ position) embeddings, <see cref="ModelConfig.Layers"/> blocks, a final
/// norm and an output head (its own matrix, or the token embeddings when <see cref="ModelConfig.TieEmbeddings"/>).
/// </summary>
public sealed class TransformerModel : Module
{
    public TransformerModel(ModelConfig config, ulong seed = 1)
    {
        config.Validate();
        Config = config;
        var rng = new Rng(seed);
        var n = LayerNames.For(config);
        var root = n.Root == null ? null : AddModule(n.Root, new ModuleGroup());
        T Add<T>(string name, T m) where T : Module => root != null ? root.Add(name, m) : AddModule(name, m);
        TokEmb = Add(n.TokEmb, new Embedding(config.VocabSize, config.DModel, rng));
        if (config.Architecture == Architecture.Gpt2) PosEmb = Add(n.PosEmb, new Embedding(config.Context, config.DModel, rng));
        Blocks = new Block[config.Layers];
        var blocks = Add(n.Blocks, new ModuleList());
        for (var i = 0; i < config.Layers; i++) Blocks[i] = blocks.Add(new Block(config, rng, n));
        if (config.Architecture == Architecture.Gpt2) LnF = Add(n.NormF, new LayerNorm(config.DModel, config.Bias, config.NormEps));
        else RmsF = Add(n.NormF, new RmsNorm(config.DModel, config.NormEps));
        if (!config.TieEmbeddings) Head = AddModule(n.Head, new Linear(config.DModel, config.VocabSize, false, rng, 0.02f));
    }

    public ModelConfig Config { get; }
    public Embedding TokEmb { get; }
    public Embedding? PosEmb { get; }
    public Block[] Blocks { get; }
    public LayerNorm? LnF { get; }
    public RmsNorm? RmsF { get; }

    /// <summary>The output head, or null when it is tied to <see cref="TokEmb"/>.</summary>
    public Linear? Head { get; }

    /// <summary>The [vocab, d] matrix that produces the logits (the head's, or the tied embeddings').</summary>
    public Tensor OutputWeight => Head?.Weight ?? TokEmb.Weight;

    private int[]? _positions;

    /// <summary>Logits [B, T, vocab] for token ids laid out [B, T] (row-major).</summary>
    public Tensor Forward(int[] ids, int batch, int time)
    {
        if (ids.Length != batch * time)
            throw new ArgumentException($"TransformerModel: {ids.Length} ids do not form [{batch}, {time}].");
        if (time > Config.Context)
            throw new ArgumentException($"TransformerModel: sequence length {time} exceeds the context {Config.Context}.");
        var x = TokEmb.Forward(ids, batch, time);
        if (PosEmb != null)
        {
            if (_positions == null || _positions.Length != time) _positions = Enumerable.Range(0, time).ToArray();
            x = Ops.Add(x, PosEmb.Forward(_positions, time));
        }
        foreach (var b in Blocks) x = b.Forward(x);
        return Logits(x);
    }

    /// <summary>The final norm and the head on hidden states [.., D].</summary>
    internal Tensor Logits(Tensor x)
    {
        x = LnF != null ? LnF.Forward(x) : RmsF!.Forward(x);
        return Head != null ? Head.Forward(x) : Ops.Linear(x, TokEmb.Weight);
    }

    /// <summary>Mean cross-entropy of next-token predictions; targets equal to <paramref name="ignoreIndex"/> do not count.</summary>
    public Tensor Loss(int[] ids, int[] targets, int batch, int time, int ignoreIndex = -100)
    {
        var logits = Forward(ids, batch, time);
        return Ops.CrossEntropy(logits, targets, ignoreIndex);
    }

    /// <summary>Every Linear layer with its dotted name (adapter targets are matched against the last segment); the head included.</summary>
    public IEnumerable<(string Name, Linear Layer)> Linears() =>
        NamedModules().Where(m => m.Module is Linear).Select(m => (m.Name, (Linear)m.Module));

    /// <summary>The dropout generators' states (for exact resume).</summary>
    internal IEnumerable<Rng> DropoutGenerators => Blocks.Select(b => b.DropoutRng);
}

/// <summary>Children named 0, 1, 2, …</summary>
public sealed class ModuleList : Module
{
    private int _count;

    public T Add<T>(T module) where T : Module => AddModule((_count++).ToString(System.Globalization.CultureInfo.InvariantCulture), module);

    public int Count => _count;
}

/// <summary>A named group of children (Hugging Face's <c>transformer</c> or <c>model</c> prefix).</summary>
public sealed class ModuleGroup : Module
{
    public T Add<T>(string name, T module) where T : Module => AddModule(name, module);
}
