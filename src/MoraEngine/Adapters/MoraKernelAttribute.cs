namespace MoraEngine.Adapters;

/// <summary>
/// Asks the MoraEngine source generator (generators/MoraEngine.Generators) for specialised MoRA kernels of one layer
/// shape: compress and decompress, forward and backward, with every size a compile-time constant. A
/// <c>[ModuleInitializer]</c> registers them with <see cref="MoraKernelRegistry"/>, and <see cref="MoraOperator"/>
/// picks them up at construction; shapes without a specialisation use the generic kernels.
/// </summary>
/// <remarks>
/// <para>Example: <c>[assembly: MoraKernel(InFeatures = 512, OutFeatures = 2048, Rank = 8, Type = MoraType.Rope)]</c>.
/// The kernels are keyed by (in, out, r̂, type) with r̂ = <see cref="MoraOperator.RankHat"/>(in, out, Rank, Type).</para>
/// <para>A whole model can be declared instead with an AdditionalFiles item named <c>*.mora.json</c>: the JSON of
/// <c>ModelConfig.ToJson()</c> (architecture, d_model, ff_hidden, ...) plus optional <c>rank</c> (an integer or a
/// list, default 8), <c>mora_type</c> (an integer or a list, default [1, 6]) and <c>target_modules</c> (default
/// q, k, v, o, up, down); every distinct (in, out) of the targeted layers gets kernels.</para>
/// <para>Invalid declarations are compile errors: MORA001 rank ≤ 0, MORA002 r̂ &gt; min(in, out), MORA003 unknown
/// type, MORA004 unreadable config file, MORA005 in or out not positive, MORA006 invalid config field.</para>
/// </remarks>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class MoraKernelAttribute : Attribute
{
    /// <summary>The layer's input width.</summary>
    public int InFeatures { get; set; }

    /// <summary>The layer's output width.</summary>
    public int OutFeatures { get; set; }

    /// <summary>The LoRA rank r whose budget MoRA matches (r̂ is derived from it).</summary>
    public int Rank { get; set; } = 8;

    /// <summary>The compression/decompression pair.</summary>
    public MoraType Type { get; set; } = MoraType.Sharing;
}
