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
        var block = Shared.MoraShapes.BlockShapes(c.Architecture == Architecture.Llama, c.Layout == ModelLayout.HuggingFace, c.DModel,
            c.FfHiddenResolved, c.KvHeadsResolved * c.HeadDim, set);
        var root = n.Root == null ? "" : n.Root + ".";
        for (var i = 0; i < c.Layers; i++)
            foreach (var (leaf, mlp, inF, outF) in block)
                yield return ($"{root}{n.Blocks}.{i}.{(mlp ? n.Mlp : n.Attn)}.{leaf}", inF, outF);
    }

    /// <summary>Σ r·(in + out) over the targeted layers.</summary>
    public static long LoraParameters(ModelConfig c, int rank, IEnumerable<string>? targets = null) =>
        TargetShapes(c, targets ?? new AdapterConfig().TargetModules).Sum(s => (long)rank * (s.In + s.Out));

    /// <summary>Σ r̂² over the targeted layers.</summary>
    public static long MoraParameters(ModelConfig c, int rank, MoraType type, IEnumerable<string>? targets = null) =>
        TargetShapes(c, targets ?? new AdapterConfig().TargetModules).Sum(s => { var h = (long)MoraOperator.RankHat(s.In, s.Out, rank, type); return h * h; });
}
