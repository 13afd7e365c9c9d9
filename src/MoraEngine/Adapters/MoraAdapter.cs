using MoraEngine.Autograd;
using MoraEngine.Nn;

namespace MoraEngine.Adapters;

/// <summary>
/// MoRA: ΔW·x = f_decomp(M·f_comp(x)) with one square M [r̂, r̂], zero-initialised, no scaling. M is stored as
/// <c>lora_A.weight</c>, as the official implementation does, so files keep PEFT's layout.
/// </summary>
public sealed class MoraAdapter : LinearAdapter
{
    private readonly float _dropout;
    private readonly Rng _dropRng;

    /// <param name="inFeatures">Layer input size.</param>
    /// <param name="outFeatures">Layer output size.</param>
    /// <param name="rank">The LoRA rank r whose parameter budget r̂ matches.</param>
    /// <param name="type">Compression/decompression operator.</param>
    /// <param name="dropout">Dropout on the adapter input.</param>
    /// <param name="rng">Seeds the dropout generator.</param>
    public MoraAdapter(int inFeatures, int outFeatures, int rank, MoraType type, float dropout, Rng rng)
    {
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), $"MoraAdapter: rank must be positive, got {rank}.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        LoraRank = rank;
        var rHat = MoraOperator.RankHat(inFeatures, outFeatures, rank, type);
        Operator = new MoraOperator(inFeatures, outFeatures, rHat, type);
        _dropout = dropout;
        _dropRng = new Rng(rng.NextUInt());
        M = AddParameter("lora_A.weight", Tensor.Zeros(rHat, rHat));
    }

    /// <summary>The key under which the official MoRA code saves M a second time (its lora_B is lora_A).</summary>
    public const string AliasName = "lora_B.weight";

    public int InFeatures { get; }
    public int OutFeatures { get; }

    /// <summary>The LoRA rank this adapter's budget is matched to.</summary>
    public int LoraRank { get; }

    /// <summary>Side of the square matrix M.</summary>
    public int RHat => Operator.RHat;

    /// <summary>The current operator (ReMoRA switches its type at restarts).</summary>
    public MoraOperator Operator { get; private set; }

    public MoraType Type => Operator.Type;

    /// <summary>[r̂, r̂].</summary>
    public Tensor M { get; }

    public override Tensor Forward(Tensor x, Tensor baseOutput) =>
        Ops.MoraDelta(Ops.Dropout(x, _dropout, _dropRng, Training), M, Operator, baseOutput);

    /// <summary>Without dropout on its input (the default, and always in evaluation), the update joins the layer's GEMM as its epilogue.</summary>
    internal override Tensor? FusedForward(Linear layer, Tensor x) =>
        _dropout > 0 && Training ? null : Ops.LinearMora(x, layer.Weight, layer.Bias, M, Operator);

    internal override Tensor ForwardOwned(Tensor x, Tensor baseOutput) =>
        Ops.MoraDelta(Ops.Dropout(x, _dropout, _dropRng, Training), M, Operator, baseOutput, ownsBase: true);

    public override Tensor DeltaWeight()
    {
        using var _ = Graph.NoGrad();
        var delta = Operator.DeltaWeight(M.ToArray());
        var t = Tensor.EmptyIn(M.Device, [OutFeatures, InFeatures], null);
        t.CopyFrom(delta);
        return t;
    }

    /// <summary>Zero M (the update restarts from nothing) and optionally switch the operator type.</summary>
    public void Reset(MoraType? newType = null)
    {
        M.Device.Backend.Fill(M, 0f);
        if (newType is { } type && type != Operator.Type)
        {
            var rHat = MoraOperator.RankHat(InFeatures, OutFeatures, LoraRank, type);
            if (rHat != RHat)
                throw new InvalidOperationException($"MoraAdapter: switching to {type} would change r̂ from {RHat} to {rHat}; restart cycles must keep r̂ (use types 1–4 together).");
            Operator.ReleaseCaches();
            Operator = new MoraOperator(InFeatures, OutFeatures, rHat, type);
        }
    }
}
