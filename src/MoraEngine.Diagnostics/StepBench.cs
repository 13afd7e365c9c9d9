using System.Diagnostics;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;

namespace MoraEngine.Diagnostics;

/// <summary>Result of timing training steps.</summary>
public sealed record StepBenchResult(string Config, string Method, long TrainableParams, long TotalParams, double MedianMs, double MinMs, int Steps, long PoolBuffersAfterWarmup, long PoolBuffersAtEnd, long PeakBytes = 0);

/// <summary>
/// Times full training steps (forward, backward, AdamW) of a model on random byte data: the measurement behind
/// <c>mora bench step</c> and the BenchmarkDotNet step suite.
/// </summary>
public static class StepBench
{
    /// <param name="config">Model shape.</param>
    /// <param name="configName">Name shown in results.</param>
    /// <param name="method">Name shown in results (the caller prepares the model accordingly).</param>
    /// <param name="batch">Rows per step.</param>
    /// <param name="warmup">Untimed steps first (JIT, pool fill).</param>
    /// <param name="steps">Timed steps.</param>
    /// <param name="prepare">Adjusts the model before training (freezing, adapters); null trains everything.</param>
    /// <param name="time">Tokens per row (default: the model's context).</param>
    /// <param name="device">Where the model trains (default: the CPU). Each timed step ends by reading the loss, which
    /// waits for the device, so a step's time includes all of its device work.</param>
    public static StepBenchResult Run(ModelConfig config, string configName, string method, int batch, int warmup, int steps, Action<TransformerModel>? prepare = null, Device? device = null, int? time = null)
    {
        device ??= Device.Cpu;
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), "StepBench: at least one timed step.");
        var model = new TransformerModel(config, seed: 1);
        prepare?.Invoke(model);
        model.To(device);
        var rng = new Rng(2);
        var text = new byte[1 << 16];
        for (var i = 0; i < text.Length; i++) text[i] = (byte)rng.NextInt(config.VocabSize);
        var data = new TextBatchSource(text, 3);
        var opt = new AdamW(model.TrainableParameters(), lr: 3e-4f, weightDecay: 0.1f);
        var trainer = new Trainer(model, opt, new ConstantLr(3e-4f), data, new TrainerOptions { BatchSize = batch, Time = time ?? config.Context });
        for (var i = 0; i < warmup; i++) trainer.TrainStep();
        var poolAfterWarmup = device.Pool.Created;
        var times = new double[steps];
        for (var i = 0; i < steps; i++)
        {
            var sw = Stopwatch.StartNew();
            trainer.TrainStep();
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        var median = steps % 2 == 1 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        return new StepBenchResult(configName, method, model.TrainableParameterCount(), model.ParameterCount(), median, times[0], steps, poolAfterWarmup, device.Pool.Created, self.PeakWorkingSet64);
    }
}
