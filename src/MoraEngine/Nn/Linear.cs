namespace MoraEngine.Nn;

/// <summary>
/// A trainable update attached to a <see cref="Linear"/> layer (LoRA, MoRA, ...): given the layer's input and its
/// frozen output W·x, returns W·x + ΔW·x.
/// </summary>
public abstract class LinearAdapter : Module
{
    /// <summary>Returns <paramref name="baseOutput"/> plus this adapter's contribution for input <paramref name="x"/>.</summary>
    public abstract Tensor Forward(Tensor x, Tensor baseOutput);

    /// <summary>
    /// As <see cref="Forward"/>, for a <paramref name="baseOutput"/> that the caller hands over (the layer's own fresh
    /// output, read by nothing else): built-in adapters add into it in place. Defaults to <see cref="Forward"/>.
    /// </summary>
    internal virtual Tensor ForwardOwned(Tensor x, Tensor baseOutput) => Forward(x, baseOutput);

    /// <summary>
    /// The layer and this update as one operation, when the adapter has one (LoRA joins the layer's GEMM along K);
    /// null: the layer runs its product and <see cref="ForwardOwned"/> adds the update.
    /// </summary>
    internal virtual Tensor? FusedForward(Linear layer, Tensor x) => null;

    /// <summary>The update as an explicit [out, in] matrix (for merging), computed without autodiff.</summary>
    public abstract Tensor DeltaWeight();

    /// <summary>True while the update is folded into the layer's weight (the adapter path is then skipped).</summary>
    public bool IsMerged { get; internal set; }
}

/// <summary>y = x·Wᵀ (+ b), W stored [out, in]; an optional <see cref="Adapter"/> adds its update.</summary>
public sealed class Linear : Module
{
    /// <summary>A layer with PyTorch's default initialisation (Kaiming-uniform, a = √5).</summary>
    public Linear(int inFeatures, int outFeatures, bool bias, Rng rng, float? initStd = null)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Linear: features must be positive, got in={inFeatures}, out={outFeatures}.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = AddParameter("weight", initStd is { } std ? Init.Normal(rng, std, outFeatures, inFeatures) : Init.KaimingUniform(rng, outFeatures, inFeatures));
        if (bias) Bias = AddParameter("bias", Tensor.Zeros(outFeatures));
    }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    /// <summary>[out, in].</summary>
    public Tensor Weight { get; }

    /// <summary>[out], or null.</summary>
    public Tensor? Bias { get; }

    /// <summary>The attached adapter, if any (registered as a child, so its parameters are named under this layer).</summary>
    public LinearAdapter? Adapter { get; private set; }

    /// <summary>
    /// Attaches (or with null, detaches) an adapter under the given child name; the default empty name puts its
    /// parameters directly under this layer (<c>q.lora_A.weight</c>).
    /// </summary>
    public void SetAdapter(LinearAdapter? adapter, string name = "")
    {
        if (Adapter != null) RemoveModule(AdapterName!);
        Adapter = adapter;
        AdapterName = adapter == null ? null : name;
        if (adapter != null) AddModule(name, adapter);
    }

    /// <summary>The child name the adapter is registered under.</summary>
    public string? AdapterName { get; private set; }

    public Tensor Forward(Tensor x)
    {
        if (Adapter is { IsMerged: false } && Adapter.FusedForward(this, x) is { } fused) return fused;
        var y = Ops.Linear(x, Weight, Bias);
        return Adapter == null || Adapter.IsMerged ? y : Adapter.ForwardOwned(x, y);
    }
}
