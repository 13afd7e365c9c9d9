using BenchmarkDotNet.Attributes;
using MoraEngine.Adapters;
using MoraEngine.Diagnostics;

namespace MoraEngine.Bench;

/// <summary>
/// Generated (specialised) vs generic MoRA kernels — compress + decompress, forward + backward — and the whole adapter
/// path (compress, M, decompress) vs LoRA's two small matmuls at the same budget, over 2048 tokens, LoRA rank 8.
/// <c>mora bench kernels</c> is the quick version. Run: <c>dotnet run -c Release --project bench/MoraEngine.Bench -- --filter *Kernel*</c>.
/// </summary>
public class KernelBenchmarks
{
    private MoraKernelBench.Layer _layer = null!;

    [Params("512x2048", "1024x1024", "256x1024")]
    public string Shape { get; set; } = "512x2048";

    [Params(MoraType.Sharing, MoraType.Rope)]
    public MoraType Type { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x');
        _layer = new MoraKernelBench.Layer(int.Parse(parts[0]), int.Parse(parts[1]), 8, Type, 2048);
        if (_layer.Fast.Kernels == null) throw new InvalidOperationException($"No specialised kernels loaded for {_layer.Fast}.");
    }

    [Benchmark(Baseline = true)]
    public void Kernels_Generic() => _layer.Kernels(_layer.Generic);

    [Benchmark]
    public void Kernels_Specialised() => _layer.Kernels(_layer.Fast);

    [Benchmark]
    public void MoraPath_Generic() => _layer.Mora(_layer.Generic);

    [Benchmark]
    public void MoraPath_Specialised() => _layer.Mora(_layer.Fast);

    [Benchmark]
    public void LoraPath() => _layer.Lora();

    /// <summary>The frozen layer alone (x·Wᵀ and gy·W): the floor under every adapted layer.</summary>
    [Benchmark]
    public void Layer_Frozen() => _layer.BaseLayer();

    /// <summary>Linear, then MoraDelta with the generic kernels.</summary>
    [Benchmark]
    public void Layer_Unfused_Generic() => _layer.UnfusedLayer(_layer.Generic);

    /// <summary>Ops.LinearMora at 2048 tokens: the update merged into a working weight, with the generated kernels.</summary>
    [Benchmark]
    public void Layer_Fused() => _layer.MergedLayer(_layer.Fast);

    /// <summary>Ops.LinearMora's few-token path: the update as the GEMMs' epilogue.</summary>
    [Benchmark]
    public void Layer_Epilogue() => _layer.FusedLayer(_layer.Fast);

    /// <summary>Ops.LinearLora: LoRA joined along K.</summary>
    [Benchmark]
    public void Layer_Lora() => _layer.LoraLayer();

    /// <summary>Plain streaming passes over the buffers compress + decompress must read and write: their memory floor.</summary>
    [Benchmark]
    public void MemoryFloor() => _layer.Stream();
}
