using MoraEngine.Adapters;

// The golden-vector shapes (TestData/mora-vectors.json), so GoldenVectorTests also run the generated kernels:
// every type (0, 1, 2, 3, 4, 6), with and without wrap padding and tiling remainders.
[assembly: MoraKernel(InFeatures = 48, OutFeatures = 48, Rank = 2, Type = MoraType.Sharing)]
[assembly: MoraKernel(InFeatures = 40, OutFeatures = 100, Rank = 2, Type = MoraType.Sharing)]
[assembly: MoraKernel(InFeatures = 100, OutFeatures = 40, Rank = 2, Type = MoraType.Rope)]
[assembly: MoraKernel(InFeatures = 64, OutFeatures = 64, Rank = 2, Type = MoraType.Rope)]
[assembly: MoraKernel(InFeatures = 70, OutFeatures = 130, Rank = 2, Type = MoraType.Rope)]
[assembly: MoraKernel(InFeatures = 90, OutFeatures = 50, Rank = 2, Type = MoraType.Interleave)]
[assembly: MoraKernel(InFeatures = 50, OutFeatures = 90, Rank = 2, Type = MoraType.InterleaveTile)]
[assembly: MoraKernel(InFeatures = 81, OutFeatures = 81, Rank = 2, Type = MoraType.SharingInterleave)]
[assembly: MoraKernel(InFeatures = 32, OutFeatures = 64, Rank = 4, Type = MoraType.Truncation)]
// Small shapes that reach the 4-wide and scalar tails and a tile narrower than a vector.
[assembly: MoraKernel(InFeatures = 20, OutFeatures = 37, Rank = 2, Type = MoraType.Sharing)]
[assembly: MoraKernel(InFeatures = 37, OutFeatures = 20, Rank = 2, Type = MoraType.Rope)]
[assembly: MoraKernel(InFeatures = 23, OutFeatures = 61, Rank = 1, Type = MoraType.Interleave)]
// Tilings written tile by tile: r̂ 64 held in registers with a partial last tile (out 312 = 4·64 + 56, in 200 = 3·64 + 8),
// and r̂ 379 (≥ 256, not a whole number of vectors) with a partial last tile of 221.
[assembly: MoraKernel(InFeatures = 200, OutFeatures = 312, Rank = 8, Type = MoraType.Sharing)]
[assembly: MoraKernel(InFeatures = 600, OutFeatures = 600, Rank = 120, Type = MoraType.Sharing)]
