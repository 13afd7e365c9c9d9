namespace MoraEngine.Nn;

/// <summary>A lookup table of [count, dim] vectors.</summary>
public sealed class Embedding : Module
{
    public Embedding(int count, int dim, Rng rng, float std = 0.02f)
    {
        Count = count;
        Dim = dim;
        Weight = AddParameter("weight", Init.Normal(rng, std, count, dim));
    }

    public int Count { get; }

    public int Dim { get; }

    public Tensor Weight { get; }

    /// <summary>Rows for <paramref name="ids"/> laid out as <paramref name="idsShape"/>, giving [..idsShape, dim].</summary>
    public Tensor Forward(int[] ids, params int[] idsShape) => Ops.Embedding(Weight, ids, idsShape);
}

/// <summary>LayerNorm over the last axis with a learned gain (and optional bias).</summary>
public sealed class LayerNorm : Module
{
    public LayerNorm(int dim, bool bias = false, float eps = 1e-5f)
    {
        Eps = eps;
        Weight = AddParameter("weight", Tensor.Full(1f, dim));
        if (bias) Bias = AddParameter("bias", Tensor.Zeros(dim));
    }

    public float Eps { get; }

    public Tensor Weight { get; }

    public Tensor? Bias { get; }

    public Tensor Forward(Tensor x) => Ops.LayerNorm(x, Weight, Bias, Eps);
}

/// <summary>RMSNorm over the last axis with a learned gain (LLaMA).</summary>
public sealed class RmsNorm : Module
{
    public RmsNorm(int dim, float eps = 1e-6f)
    {
        Eps = eps;
        Weight = AddParameter("weight", Tensor.Full(1f, dim));
    }

    public float Eps { get; }

    public Tensor Weight { get; }

    public Tensor Forward(Tensor x) => Ops.RmsNorm(x, Weight, Eps);
}
