using MoraEngine.Nn;

namespace MoraEngine.Adapters;

/// <summary>Trainable-parameter budgets of LoRA and MoRA on a model config, from the formulas alone.</summary>
public static class AdapterBudget
{
    /// <summary>(name, in, out) of each layer the targets hit (default: every known target name), in model order.</summary>
    public static IEnumerable<(string Name, int In, int Out)> TargetShapes(ModelConfig c, IEnumerable<string>? targets = null)
    {
        var set = (targets ?? AdapterConfig.KnownTargets).ToHashSet();
        var n = LayerNames.For(c);
        var ff = c.FfHiddenResolved;
        var kv = c.KvHeadsResolved * c.HeadDim;
        var root = n.Root == null ? "" : n.Root + ".";
        for (var i = 0; i < c.Layers; i++)
        {
            var attn = $"{root}{n.Blocks}.{i}.{n.Attn}.";
            var mlp = $"{root}{n.Blocks}.{i}.{n.Mlp}.";
            if (n.Qkv != null)
            {
                if (set.Contains(n.Qkv)) yield return (attn + n.Qkv, c.DModel, c.DModel + 2 * kv);
            }
            else
            {
                if (set.Contains(n.Q)) yield return (attn + n.Q, c.DModel, c.DModel);
                if (set.Contains(n.K)) yield return (attn + n.K, c.DModel, kv);
                if (set.Contains(n.V)) yield return (attn + n.V, c.DModel, kv);
            }
            if (set.Contains(n.O)) yield return (attn + n.O, c.DModel, c.DModel);
            if (c.Architecture == Architecture.Llama && set.Contains(n.Gate)) yield return (mlp + n.Gate, c.DModel, ff);
            if (set.Contains(n.Up)) yield return (mlp + n.Up, c.DModel, ff);
            if (set.Contains(n.Down)) yield return (mlp + n.Down, ff, c.DModel);
        }
    }

    /// <summary>Σ r·(in + out) over the targeted layers.</summary>
    public static long LoraParameters(ModelConfig c, int rank, IEnumerable<string>? targets = null) =>
        TargetShapes(c, targets ?? new AdapterConfig().TargetModules).Sum(s => (long)rank * (s.In + s.Out));

    /// <summary>Σ r̂² over the targeted layers.</summary>
    public static long MoraParameters(ModelConfig c, int rank, MoraType type, IEnumerable<string>? targets = null) =>
        TargetShapes(c, targets ?? new AdapterConfig().TargetModules).Sum(s => { var h = (long)MoraOperator.RankHat(s.In, s.Out, rank, type); return h * h; });
}
