using System.Diagnostics;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;

namespace MoraEngine.Diagnostics;

/// <summary>Result of timing training steps.</summary>
public sealed record StepBenchResult(string Config, string Method, long TrainableParams, long TotalParams, double MedianMs, double MinMs, int Steps, long PoolBuffersAfterWarmup, long PoolBuffersAtEnd, long PeakBytes = 0);

/// <summary>
/// Two set-ups timed in alternation (<see cref="StepBench.RunPaired"/>): each one's steps, and the median and quartiles
/// of the per-round differences, method minus baseline.
/// </summary>
/// <remarks>The ratios (method over baseline, per round) do not grow with a load that slows every step alike; the
/// differences in milliseconds do.</remarks>
public sealed record PairedStepBenchResult(StepBenchResult Method, StepBenchResult Baseline, double DeltaMedianMs, double DeltaQ25Ms, double DeltaQ75Ms,
    double RatioMedian, double RatioQ25, double RatioQ75);

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
        var (model, trainer) = Build(config, batch, prepare, device, time);
        for (var i = 0; i < warmup; i++) trainer.TrainStep();
        var poolAfterWarmup = device.Pool.Created;
        var times = new double[steps];
        for (var i = 0; i < steps; i++) times[i] = TimedStep(trainer);
        return Result(configName, method, model, times, poolAfterWarmup, device);
    }

    /// <summary>
    /// Times two set-ups of the same model in one process, their steps alternating (A B, then B A, …), so that both see
    /// the same load: the per-round differences (method minus baseline) are far steadier on a shared machine than the
    /// difference of two separate runs. Used for an adapter's cost over the frozen floor.
    /// </summary>
    /// <param name="baselineMethod">Name shown in results for the baseline.</param>
    /// <param name="prepareBaseline">Adjusts the baseline model before training.</param>
    /// <param name="steps">Timed steps of each set-up (one per round).</param>
    /// <param name="warmup">Untimed rounds first (at least two: after the first, the device's pool is allowed to keep
    /// both set-ups' buffers, about twice one step's working set, until the call returns).</param>
    public static PairedStepBenchResult RunPaired(ModelConfig config, string configName, string method, string baselineMethod, int batch, int warmup, int steps,
        Action<TransformerModel>? prepare, Action<TransformerModel>? prepareBaseline, Device? device = null, int? time = null)
    {
        device ??= Device.Cpu;
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), "StepBench: at least one timed step.");
        var (model, trainer) = Build(config, batch, prepare, device, time);
        var (baseModel, baseTrainer) = Build(config, batch, prepareBaseline, device, time);
        // The pool keeps free buffers up to one step's working set; two models alternating need both sets kept, or
        // each step would release the other's buffers and allocate its own again.
        var pool = device.Pool;
        var minFree = pool.MinFreeBytes;
        try
        {
            trainer.TrainStep();
            baseTrainer.TrainStep();
            pool.MinFreeBytes = Math.Max(minFree, 2 * pool.PeakInUseBytes);
            for (var i = 1; i < Math.Max(2, warmup); i++)
            {
                trainer.TrainStep();
                baseTrainer.TrainStep();
            }
            return TimePaired(configName, method, baselineMethod, steps, device, model, trainer, baseModel, baseTrainer);
        }
        finally
        {
            pool.MinFreeBytes = minFree;
        }
    }

    private static PairedStepBenchResult TimePaired(string configName, string method, string baselineMethod, int steps, Device device,
        TransformerModel model, Trainer trainer, TransformerModel baseModel, Trainer baseTrainer)
    {
        var poolAfterWarmup = device.Pool.Created;
        double[] times = new double[steps], baseTimes = new double[steps], deltas = new double[steps], ratios = new double[steps];
        for (var i = 0; i < steps; i++)
        {
            if (i % 2 == 0)
            {
                times[i] = TimedStep(trainer);
                baseTimes[i] = TimedStep(baseTrainer);
            }
            else
            {
                baseTimes[i] = TimedStep(baseTrainer);
                times[i] = TimedStep(trainer);
            }
            deltas[i] = times[i] - baseTimes[i];
            ratios[i] = times[i] / baseTimes[i];
        }
        Array.Sort(deltas);
        Array.Sort(ratios);
        return new PairedStepBenchResult(
            Result(configName, method, model, times, poolAfterWarmup, device),
            Result(configName, baselineMethod, baseModel, baseTimes, poolAfterWarmup, device),
            Median(deltas), Quantile(deltas, 0.25), Quantile(deltas, 0.75), Median(ratios), Quantile(ratios, 0.25), Quantile(ratios, 0.75));
    }

    private static (TransformerModel Model, Trainer Trainer) Build(ModelConfig config, int batch, Action<TransformerModel>? prepare, Device device, int? time)
    {
        var model = new TransformerModel(config, seed: 1);
        prepare?.Invoke(model);
        model.To(device);
        var rng = new Rng(2);
        var text = new byte[1 << 16];
        for (var i = 0; i < text.Length; i++) text[i] = (byte)rng.NextInt(config.VocabSize);
        var data = new TextBatchSource(text, 3);
        var opt = new AdamW(model.TrainableParameters(), lr: 3e-4f, weightDecay: 0.1f);
        return (model, new Trainer(model, opt, new ConstantLr(3e-4f), data, new TrainerOptions { BatchSize = batch, Time = time ?? config.Context }));
    }

    private static double TimedStep(Trainer trainer)
    {
        var sw = Stopwatch.StartNew();
        trainer.TrainStep();
        return sw.Elapsed.TotalMilliseconds;
    }

    private static StepBenchResult Result(string configName, string method, TransformerModel model, double[] times, long poolAfterWarmup, Device device)
    {
        var sorted = (double[])times.Clone();
        Array.Sort(sorted);
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        return new StepBenchResult(configName, method, model.TrainableParameterCount(), model.ParameterCount(), Median(sorted), sorted[0], sorted.Length,
            poolAfterWarmup, device.Pool.Created, self.PeakWorkingSet64);
    }

    /// <summary>Median of sorted values.</summary>
    private static double Median(double[] sorted)
    {
        var n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }

    /// <summary>Quantile q of sorted values, linear between neighbours.</summary>
    private static double Quantile(double[] sorted, double q)
    {
        var at = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(at), hi = Math.Min(sorted.Length - 1, lo + 1);
        return sorted[lo] + (at - lo) * (sorted[hi] - sorted[lo]);
    }
}
