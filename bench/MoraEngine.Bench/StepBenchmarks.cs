using BenchmarkDotNet.Attributes;
using MoraEngine.Diagnostics;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;

namespace MoraEngine.Bench;

/// <summary>
/// One full training step (forward, backward, clipping, AdamW) of the small-cpu model: GPT-2 style, d 256,
/// 4 layers, 4 heads, context 128, batch 16. <c>mora bench step</c> is the quick version of this measurement.
/// </summary>
[MemoryDiagnoser]
public class StepBenchmarks
{
    private Trainer _trainer = null!;

    [GlobalSetup]
    public void Setup()
    {
        var config = ModelConfig.SmallCpu;
        var model = new TransformerModel(config, 1);
        var rng = new Rng(2);
        var text = new byte[1 << 16];
        for (var i = 0; i < text.Length; i++) text[i] = (byte)rng.NextInt(256);
        _trainer = new Trainer(model, new AdamW(model.TrainableParameters(), 3e-4f), new ConstantLr(3e-4f), new TextBatchSource(text, 3));
        _trainer.TrainStep();
    }

    [Benchmark]
    public float TrainStep_SmallCpu_Fft() => _trainer.TrainStep();
}

/// <summary>The main ops of a training step at small-cpu sizes (2048 tokens, d 256), forward and backward.</summary>
[MemoryDiagnoser]
public class OpBenchmarks
{
    private const int B = 16, T = 128, D = 256, V = 256;
    private Tensor _x = null!, _w = null!, _up = null!, _gain = null!, _logits = null!;
    private int[] _targets = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Rng(1);
        _x = Tensor.RandN(rng, 1f, B, T, D);
        _w = Tensor.RandN(rng, 0.05f, D, D);
        _up = Tensor.RandN(rng, 0.05f, 4 * D, D);
        _gain = Tensor.Full(1f, D);
        _logits = Tensor.RandN(rng, 1f, B * T, V);
        _targets = Enumerable.Range(0, B * T).Select(i => i % V).ToArray();
        foreach (var t in new[] { _x, _w, _up, _gain, _logits }) t.RequiresGrad = true;
    }

    private static void FwdBwd(Func<Tensor> f)
    {
        using (MemoryScope.Begin())
        {
            var y = f();
            (y.Length == 1 ? y : Ops.SumAll(y)).Backward();
        }
    }

    [Benchmark] public void Linear_256x256() => FwdBwd(() => Ops.Linear(_x, _w));
    [Benchmark] public void Linear_256x1024_Gelu() => FwdBwd(() => Ops.Gelu(Ops.Linear(_x, _up)));
    [Benchmark] public void LayerNorm() => FwdBwd(() => Ops.LayerNorm(_x, _gain, null));
    [Benchmark] public void Attention_4Heads() => FwdBwd(() => Ops.CausalSelfAttention(_x, _x, _x, 4));
    [Benchmark] public void CrossEntropy_Vocab256() => FwdBwd(() => Ops.CrossEntropy(_logits, _targets));
    [Benchmark] public void ResidualAdd() => FwdBwd(() => Ops.Add(_x, _x));
}
