using MoraEngine.Nn;

namespace MoraEngine.Adapters;

/// <summary>Trainable-parameter budgets of LoRA and MoRA on a model config, from the formulas alone.</summary>
public static class AdapterBudget
{
    /// <summary>(in, out) of each layer that the default targets (q, k, v, o, up, down, gate) hit.</summary>
    public static IEnumerable<(string Name, int In, int Out)> TargetShapes(ModelConfig c, IEnumerable<string>? targets = null)
    {
        var set = (targets ?? AdapterConfig.KnownTargets).ToHashSet();
        var ff = c.FfHiddenResolved;
        for (var i = 0; i < c.Layers; i++)
        {
            foreach (var n in new[] { "q", "k", "v", "o" })
                if (set.Contains(n)) yield return ($"blocks.{i}.attn.{n}", c.DModel, c.DModel);
            if (c.Architecture == Architecture.Llama && set.Contains("gate")) yield return ($"blocks.{i}.mlp.gate", c.DModel, ff);
            if (set.Contains("up")) yield return ($"blocks.{i}.mlp.up", c.DModel, ff);
            if (set.Contains("down")) yield return ($"blocks.{i}.mlp.down", ff, c.DModel);
        }
    }

    /// <summary>Σ r·(in + out) over the targeted layers.</summary>
    public static long LoraParameters(ModelConfig c, int rank, IEnumerable<string>? targets = null) =>
        TargetShapes(c, targets ?? new AdapterConfig().TargetModules).Sum(s => (long)rank * (s.In + s.Out));

    /// <summary>Σ r̂² over the targeted layers.</summary>
    public static long MoraParameters(ModelConfig c, int rank, MoraType type, IEnumerable<string>? targets = null) =>
        TargetShapes(c, targets ?? new AdapterConfig().TargetModules).Sum(s => { var h = (long)MoraOperator.RankHat(s.In, s.Out, rank, type); return h * h; });
}
