using BenchmarkDotNet.Attributes;
using MoraEngine.Backends.Cpu;
using MoraEngine.Diagnostics;

namespace MoraEngine.Bench;

/// <summary>Square SGEMM, C = A·B, row-major. Report GFLOP/s as 2·N³ / mean time.</summary>
[MemoryDiagnoser]
public class GemmBenchmarks
{
    private float[] _a = [], _b = [], _c = [];

    [Params(256, 1024, 2048)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _a = Random(rng, Size * Size);
        _b = Random(rng, Size * Size);
        _c = new float[Size * Size];
    }

    [Benchmark]
    public void Sgemm_NN() =>
        Sgemm.Multiply(false, false, Size, Size, Size, 1f, _a, Size, _b, Size, 0f, _c, Size);

    internal static float[] Random(Random rng, int length)
    {
        var x = new float[length];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble() - 0.5f;
        return x;
    }
}

/// <summary>
/// The matmul shapes of a small transformer's training step (tokens = 2048, d_model = 256, MLP 1024,
/// QKV 768): forward x·W (NN), input gradient dY·Wᵀ (NT) and weight gradient Xᵀ·dY (TN).
/// </summary>
[MemoryDiagnoser]
public class TransformerGemmBenchmarks
{
    private float[] _a = [], _b = [], _c = [];
    private int _m, _n, _k;
    private bool _transA, _transB;

    /// <summary>"op m×n×k": NN = x·W, NT = x·Wᵀ, TN = Xᵀ·dY.</summary>
    [Params(
        "NN 2048x256x256", "NN 2048x1024x256", "NN 2048x256x1024", "NN 2048x768x256", "NN 2048x256x2048",
        "NT 2048x256x256", "NT 2048x256x1024", "NT 2048x1024x256", "NT 2048x256x2048",
        "TN 256x256x2048", "TN 256x1024x2048", "TN 1024x256x2048", "TN 256x768x2048")]
    public string Shape { get; set; } = "NN 2048x256x256";

    [GlobalSetup]
    public void Setup()
    {
        string[] parts = Shape.Split(' ');
        _transA = parts[0][0] == 'T';
        _transB = parts[0][1] == 'T';
        int[] dims = Array.ConvertAll(parts[1].Split('x'), int.Parse);
        (_m, _n, _k) = (dims[0], dims[1], dims[2]);
        var rng = new Random(1);
        _a = GemmBenchmarks.Random(rng, _m * _k);
        _b = GemmBenchmarks.Random(rng, _k * _n);
        _c = new float[_m * _n];
    }

    [Benchmark]
    public void Sgemm() =>
        MoraEngine.Backends.Cpu.Sgemm.Multiply(_transA, _transB, _m, _n, _k, 1f,
            _a, _transA ? _m : _k, _b, _transB ? _k : _n, 0f, _c, _n);
}
