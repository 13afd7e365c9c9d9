namespace MoraEngine.Nn;

/// <summary>Parameter initialisers (deterministic given the generator).</summary>
public static class Init
{
    /// <summary>N(0, std²).</summary>
    public static Tensor Normal(Rng rng, float std, params int[] shape) => Tensor.RandN(rng, std, shape);

    /// <summary>
    /// PyTorch's default for Linear weights and LoRA's A: Kaiming-uniform with a = √5, which is U(−b, b) with
    /// b = 1/√fan_in.
    /// </summary>
    public static Tensor KaimingUniform(Rng rng, int fanOut, int fanIn)
    {
        var bound = 1f / MathF.Sqrt(Math.Max(1, fanIn));
        return Tensor.RandU(rng, -bound, bound, fanOut, fanIn);
    }

    /// <summary>Fills an existing tensor with Kaiming-uniform (a = √5) values.</summary>
    public static void KaimingUniformInPlace(Rng rng, Tensor t, int fanIn)
    {
        var bound = 1f / MathF.Sqrt(Math.Max(1, fanIn));
        var v = new float[t.Length];
        for (var i = 0; i < v.Length; i++) v[i] = -bound + 2 * bound * rng.NextFloat();
        t.CopyFrom(v);
    }
}
