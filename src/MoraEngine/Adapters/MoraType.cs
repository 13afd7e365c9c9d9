namespace MoraEngine.Adapters;

/// <summary>
/// The compression/decompression pair of a MoRA operator (numbered as in the official implementation's
/// <c>mora_type</c>). See <c>docs/MORA.md</c> for the exact rules.
/// </summary>
public enum MoraType
{
    /// <summary>Compress: keep the first r̂ inputs. Decompress: place ŷ in the first r̂ outputs, zeros elsewhere (the paper's baseline).</summary>
    Truncation = 0,

    /// <summary>Compress: sharing (wrap-pad to G·r̂, sum the G chunks). Decompress: tile ŷ over the outputs.</summary>
    Sharing = 1,

    /// <summary>Compress: interleave (each output sums a run of ⌊in/r̂⌋ or ⌊in/r̂⌋+1 consecutive inputs). Decompress: repeat-interleave.</summary>
    Interleave = 2,

    /// <summary>Compress: interleave (runs of consecutive inputs summed). Decompress: tile ŷ over the outputs.</summary>
    InterleaveTile = 3,

    /// <summary>Compress: sharing (wrap-pad, sum the G chunks). Decompress: repeat-interleave.</summary>
    SharingInterleave = 4,

    /// <summary>
    /// Compress: wrap-pad to G chunks of r̂ and rotate chunk g by RoPE angles g·θ_j (r̂ even); M applies to every
    /// chunk. Decompress: concatenate the G chunk outputs, tiled and cut to the output width.
    /// </summary>
    Rope = 6,
}
