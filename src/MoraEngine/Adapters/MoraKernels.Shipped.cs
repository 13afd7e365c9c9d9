using MoraEngine.Adapters;

// Specialised MoRA kernels the library ships. Whole models come from Configs/*.mora.json (small-cpu, small-gpu and the
// UUID demo's model; see MoraEngine.csproj); the attributes below add the kernel benchmark's d 1024 shape
// (`mora bench kernels`, bench/MoraEngine.Bench/KernelBenchmarks.cs), whose other shapes small-cpu and small-gpu cover.
[assembly: MoraKernel(InFeatures = 1024, OutFeatures = 1024, Rank = 8, Type = MoraType.Sharing)]
[assembly: MoraKernel(InFeatures = 1024, OutFeatures = 1024, Rank = 8, Type = MoraType.Rope)]
