using MoraEngine.Autograd;
using MoraEngine.Nn;

namespace MoraEngine.Adapters;

/// <summary>
/// LoRA: ΔW·x = s·B·(A·x), A [r, in] Kaiming-uniform (a = √5), B [out, r] zero, so training starts from the base
/// model exactly. Parameters are named <c>lora_A.weight</c> and <c>lora_B.weight</c> under the adapted layer.
/// </summary>
public sealed class LoraAdapter : LinearAdapter
{
    private readonly float _dropout;
    private readonly Rng _dropRng;

    public LoraAdapter(int inFeatures, int outFeatures, int rank, float scaling, float dropout, Rng rng)
    {
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), $"LoraAdapter: rank must be positive, got {rank}.");
        if (rank > Math.Min(inFeatures, outFeatures))
            throw new ArgumentOutOfRangeException(nameof(rank), $"LoraAdapter: rank {rank} exceeds min(in, out) = {Math.Min(inFeatures, outFeatures)} of a [{outFeatures}, {inFeatures}] layer.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Rank = rank;
        Scaling = scaling;
        _dropout = dropout;
        _dropRng = new Rng(rng.NextUInt());
        A = AddParameter("lora_A.weight", Init.KaimingUniform(rng, rank, inFeatures));
        B = AddParameter("lora_B.weight", Tensor.Zeros(outFeatures, rank));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public int Rank { get; }
    public float Scaling { get; }

    /// <summary>[r, in].</summary>
    public Tensor A { get; }

    /// <summary>[out, r].</summary>
    public Tensor B { get; }

    public override Tensor Forward(Tensor x, Tensor baseOutput) =>
        Ops.LoraDelta(Ops.Dropout(x, _dropout, _dropRng, Training), A, B, Scaling, baseOutput);

    /// <summary>Without dropout on its input (the default, and always in evaluation), the update joins the layer's GEMM.</summary>
    internal override Tensor? FusedForward(Linear layer, Tensor x) =>
        _dropout > 0 && Training ? null : Ops.LinearLora(x, layer.Weight, layer.Bias, A, B, Scaling);

    internal override Tensor ForwardOwned(Tensor x, Tensor baseOutput) =>
        Ops.LoraDelta(Ops.Dropout(x, _dropout, _dropRng, Training), A, B, Scaling, baseOutput, ownsBase: true);

    public override Tensor DeltaWeight()
    {
        using var _ = Graph.NoGrad();
        var delta = Tensor.EmptyIn(A.Device, [OutFeatures, InFeatures], null);
        A.Device.Backend.Gemm(1, OutFeatures, InFeatures, Rank, Scaling, B, false, 0, A, false, 0, 0f, delta, 0);
        return delta;
    }

    /// <summary>Fresh A (Kaiming) and zero B: the update restarts from nothing (ReLoRA).</summary>
    public void Reset(Rng rng)
    {
        Init.KaimingUniformInPlace(rng, A, InFeatures);
        B.Device.Backend.Fill(B, 0f);
    }
}
