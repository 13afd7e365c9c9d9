namespace MoraEngine.Nn;

/// <summary>Causal multi-head self-attention with separate q, k, v, o projections (so adapters can target each).</summary>
public sealed class CausalSelfAttention : Module
{
    private readonly int _heads;
    private readonly bool _rope;
    private readonly float _ropeTheta;

    public CausalSelfAttention(ModelConfig c, Rng rng)
    {
        _heads = c.Heads;
        _rope = c.Architecture == Architecture.Llama;
        _ropeTheta = c.RopeTheta;
        var std = 0.02f;
        var residualStd = 0.02f / MathF.Sqrt(2 * c.Layers);
        Q = AddModule("q", new Linear(c.DModel, c.DModel, c.Bias, rng, std));
        K = AddModule("k", new Linear(c.DModel, c.DModel, c.Bias, rng, std));
        V = AddModule("v", new Linear(c.DModel, c.DModel, c.Bias, rng, std));
        O = AddModule("o", new Linear(c.DModel, c.DModel, c.Bias, rng, residualStd));
    }

    public Linear Q { get; }
    public Linear K { get; }
    public Linear V { get; }
    public Linear O { get; }

    /// <summary>x [B, T, D] → [B, T, D].</summary>
    public Tensor Forward(Tensor x)
    {
        var q = Q.Forward(x);
        var k = K.Forward(x);
        var v = V.Forward(x);
        if (_rope)
        {
            q = Ops.Rope(q, _heads, _ropeTheta);
            k = Ops.Rope(k, _heads, _ropeTheta);
        }
        return O.Forward(Ops.CausalSelfAttention(q, k, v, _heads));
    }
}

/// <summary>GELU MLP (up, down) or SwiGLU MLP (gate, up, down).</summary>
public sealed class Mlp : Module
{
    public Mlp(ModelConfig c, Rng rng)
    {
        var hidden = c.FfHiddenResolved;
        var residualStd = 0.02f / MathF.Sqrt(2 * c.Layers);
        if (c.Architecture == Architecture.Llama) Gate = AddModule("gate", new Linear(c.DModel, hidden, c.Bias, rng, 0.02f));
        Up = AddModule("up", new Linear(c.DModel, hidden, c.Bias, rng, 0.02f));
        Down = AddModule("down", new Linear(hidden, c.DModel, c.Bias, rng, residualStd));
    }

    public Linear? Gate { get; }
    public Linear Up { get; }
    public Linear Down { get; }

    public Tensor Forward(Tensor x) =>
        Gate == null
            ? Down.Forward(Ops.Gelu(Up.Forward(x)))
            : Down.Forward(Ops.Mul(Ops.Silu(Gate.Forward(x)), Up.Forward(x)));
}

/// <summary>Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x)).</summary>
public sealed class Block : Module
{
    private readonly float _dropout;
    private readonly Rng _dropRng;

    public Block(ModelConfig c, Rng rng)
    {
        _dropout = c.Dropout;
        _dropRng = new Rng(rng.NextUInt());
        if (c.Architecture == Architecture.Gpt2)
        {
            Ln1 = AddModule("ln1", new LayerNorm(c.DModel, c.Bias, c.NormEps));
            Attn = AddModule("attn", new CausalSelfAttention(c, rng));
            Ln2 = AddModule("ln2", new LayerNorm(c.DModel, c.Bias, c.NormEps));
        }
        else
        {
            Rms1 = AddModule("ln1", new RmsNorm(c.DModel, c.NormEps));
            Attn = AddModule("attn", new CausalSelfAttention(c, rng));
            Rms2 = AddModule("ln2", new RmsNorm(c.DModel, c.NormEps));
        }
        Mlp = AddModule("mlp", new Mlp(c, rng));
    }

    public LayerNorm? Ln1 { get; }
    public LayerNorm? Ln2 { get; }
    public RmsNorm? Rms1 { get; }
    public RmsNorm? Rms2 { get; }
    public CausalSelfAttention Attn { get; }
    public Mlp Mlp { get; }

    /// <summary>The dropout generator (part of the training state, for exact resume).</summary>
    internal Rng DropoutRng => _dropRng;

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
/// norm and an untied output head.
/// </summary>
public sealed class TransformerModel : Module
{
    public TransformerModel(ModelConfig config, ulong seed = 1)
    {
        config.Validate();
        Config = config;
        var rng = new Rng(seed);
        TokEmb = AddModule("tok_emb", new Embedding(config.VocabSize, config.DModel, rng));
        if (config.Architecture == Architecture.Gpt2) PosEmb = AddModule("pos_emb", new Embedding(config.Context, config.DModel, rng));
        Blocks = new Block[config.Layers];
        var blocks = AddModule("blocks", new ModuleList());
        for (var i = 0; i < config.Layers; i++) Blocks[i] = blocks.Add(new Block(config, rng));
        if (config.Architecture == Architecture.Gpt2) LnF = AddModule("ln_f", new LayerNorm(config.DModel, config.Bias, config.NormEps));
        else RmsF = AddModule("ln_f", new RmsNorm(config.DModel, config.NormEps));
        Head = AddModule("head", new Linear(config.DModel, config.VocabSize, false, rng, 0.02f));
    }

    public ModelConfig Config { get; }
    public Embedding TokEmb { get; }
    public Embedding? PosEmb { get; }
    public Block[] Blocks { get; }
    public LayerNorm? LnF { get; }
    public RmsNorm? RmsF { get; }
    public Linear Head { get; }

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
        x = LnF != null ? LnF.Forward(x) : RmsF!.Forward(x);
        return Head.Forward(x);
    }

    /// <summary>Mean cross-entropy of next-token predictions; targets equal to <paramref name="ignoreIndex"/> do not count.</summary>
    public Tensor Loss(int[] ids, int[] targets, int batch, int time, int ignoreIndex = -100)
    {
        var logits = Forward(ids, batch, time);
        return Ops.CrossEntropy(logits, targets, ignoreIndex);
    }

    /// <summary>Every Linear layer with its dotted name (adapter targets are matched against the last segment).</summary>
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
