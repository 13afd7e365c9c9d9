using MoraEngine.Nn;
using MoraEngine.Optim;

namespace MoraEngine.Training;

/// <summary>Settings of a <see cref="Trainer"/>.</summary>
public sealed record TrainerOptions
{
    public int BatchSize { get; init; } = 16;
    /// <summary>Tokens per row; 0 uses the model's context.</summary>
    public int Time { get; init; }
    /// <summary>Global gradient-norm clip; 0 disables it.</summary>
    public float ClipGradNorm { get; init; } = 1f;

    /// <summary>
    /// Throw <see cref="TrainingDivergedException"/> instead of updating when the loss or the gradient norm is NaN or
    /// infinite, so the parameters keep their last finite values.
    /// </summary>
    public bool StopOnNonFinite { get; init; } = true;
    public ulong Seed { get; init; } = 1;
}

/// <summary>
/// Training produced a non-finite loss or gradient norm. Thrown before the update: the parameters, the optimizer
/// state and <see cref="Trainer.Step"/> are those of the last finite step.
/// </summary>
public sealed class TrainingDivergedException(int step, float loss, double gradNorm)
    : InvalidOperationException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"training diverged at step {step + 1}: loss {loss}, gradient norm {gradNorm}; the parameters keep their values from before this step (lower the learning rate?)"))
{
    /// <summary>The 0-based step that diverged (= the finished steps before it).</summary>
    public int Step { get; } = step;
    public float Loss { get; } = loss;
    public double GradNorm { get; } = gradNorm;
}

/// <summary>Something that runs at step boundaries (checkpointing, logging, ReLoRA/ReMoRA restarts).</summary>
public interface ITrainerCallback
{
    /// <summary>Called after step <paramref name="step"/> (1-based count of finished steps).</summary>
    void OnStepEnd(Trainer trainer, int step, float loss);
}

/// <summary>
/// One training step = forward, loss, backward, clip, optimizer update, inside a <see cref="MemoryScope"/> so
/// activations and their gradients are recycled: after the first step no tensor memory is allocated.
/// </summary>
public sealed class Trainer
{
    private readonly Batch _batch;

    public Trainer(TransformerModel model, Optimizer optimizer, LrSchedule schedule, IBatchSource data, TrainerOptions? options = null)
    {
        Model = model;
        Optimizer = optimizer;
        Schedule = schedule;
        Data = data;
        Options = options ?? new TrainerOptions();
        var time = Options.Time > 0 ? Options.Time : model.Config.Context;
        if (time > model.Config.Context)
            throw new ArgumentException($"Trainer: rows of {time} tokens exceed the model's context {model.Config.Context}.");
        if (data.VocabSize > model.Config.VocabSize)
            throw new ArgumentException($"Trainer: the data needs a vocabulary of {data.VocabSize} but the model has {model.Config.VocabSize}.");
        if (Options.BatchSize <= 0) throw new ArgumentException($"Trainer: batch size must be positive, got {Options.BatchSize}.");
        _batch = new Batch(Options.BatchSize, time);
    }

    public TransformerModel Model { get; }
    public Optimizer Optimizer { get; }
    public LrSchedule Schedule { get; }
    public IBatchSource Data { get; }
    public TrainerOptions Options { get; }

    /// <summary>Finished steps.</summary>
    public int Step { get; internal set; }

    /// <summary>Called after every step, in order.</summary>
    public List<ITrainerCallback> Callbacks { get; } = new();

    /// <summary>
    /// Raised after the backward pass, before clipping and the update, with the 0-based step: every trainable
    /// parameter's <see cref="Tensor.Grad"/> then holds this step's raw gradient (gradient logging, reference checks).
    /// </summary>
    public event Action<Trainer, int>? GradientsReady;

    /// <summary>Tokens per step.</summary>
    public int TokensPerStep => _batch.BatchSize * _batch.Time;

    /// <summary>The global gradient norm of the last step (before clipping).</summary>
    public double LastGradNorm { get; private set; }

    /// <summary>Runs one step and returns its loss.</summary>
    public float TrainStep()
    {
        Data.Next(_batch);
        Model.Train();
        float loss;
        using (MemoryScope.Begin())
        {
            Optimizer.ZeroGrad();
            var l = Model.Loss(_batch.Ids, _batch.Targets, _batch.BatchSize, _batch.Time);
            l.Backward();
            loss = l.Item();
            GradientsReady?.Invoke(this, Step);
            LastGradNorm = Optimizer.ClipGradNorm(Options.ClipGradNorm);
            if (Options.StopOnNonFinite && (!float.IsFinite(loss) || !double.IsFinite(LastGradNorm)))
                throw new TrainingDivergedException(Step, loss, LastGradNorm);
            Optimizer.LearningRate = Schedule.At(Step);
            Optimizer.Step();
        }
        Step++;
        foreach (var c in Callbacks) c.OnStepEnd(this, Step, loss);
        return loss;
    }

    /// <summary>Mean loss over <paramref name="batches"/> fresh batches without updating anything.</summary>
    public float Evaluate(IBatchSource source, int batches)
    {
        Model.Eval();
        var batch = new Batch(_batch.BatchSize, _batch.Time);
        double total = 0;
        using (Autograd.Graph.NoGrad())
            for (var i = 0; i < batches; i++)
            {
                source.Next(batch);
                using (MemoryScope.Begin())
                    total += Model.Loss(batch.Ids, batch.Targets, batch.BatchSize, batch.Time).Item();
            }
        Model.Train();
        return (float)(total / Math.Max(1, batches));
    }

    /// <summary>Writes a checkpoint that <see cref="Checkpoint.Restore"/> resumes exactly.</summary>
    public void SaveCheckpoint(string path, IReadOnlyDictionary<string, string>? extraMetadata = null) => Checkpoint.Save(path, this, extraMetadata);
}
