using MoraEngine;
using MoraEngine.IO;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;
using Xunit;

namespace MoraEngine.Tests;

public class TrainingTests
{
    private static ModelConfig CopyConfig(CopyTaskSource task) =>
        new() { Architecture = Architecture.Gpt2, VocabSize = task.VocabSize, DModel = 48, Layers = 2, Heads = 4, Context = task.Time };

    internal static Trainer CopyTrainer(ulong seed, int steps, out CopyTaskSource task)
    {
        task = new CopyTaskSource(length: 6, alphabet: 8, seed: seed + 1);
        var model = new TransformerModel(CopyConfig(task), seed);
        var opt = new AdamW(model.TrainableParameters(), 3e-3f, weightDecay: 0.0f);
        return new Trainer(model, opt, new WarmupCosineLr(3e-3f, Math.Min(20, steps), steps, 3e-4f), task,
            new TrainerOptions { BatchSize = 16, Time = task.Time });
    }

    /// <summary>
    /// The copied half is fully determined by the prefix, so a model that has learned to copy (an induction-style
    /// attention pattern) drives the loss towards 0, while any model that has not is stuck at ln(8) ≈ 2.08 or above:
    /// without looking back it can only guess among the 8 symbols. A held-out loss below 0.5 therefore means the
    /// network really copies (it puts ≥ 60% probability on the right symbol on average).
    /// </summary>
    [Fact]
    public void SmallGpt_LearnsCopyTask_BelowChance()
    {
        const int steps = 500;
        var trainer = CopyTrainer(3, steps, out var task);
        var first = trainer.TrainStep();
        Assert.InRange(first, 1.6, 3.5);   // an untrained model is at chance level
        for (var i = 1; i < steps; i++) trainer.TrainStep();
        var heldOut = trainer.Evaluate(new CopyTaskSource(6, 8, 999), 4);
        Assert.True(heldOut < 0.5, $"held-out copy loss {heldOut} (chance {task.ChanceLoss:F2})");
    }

    [Fact]
    public void SameSeed_GivesBitIdenticalLosses()
    {
        var a = CopyTrainer(5, 30, out _);
        var b = CopyTrainer(5, 30, out _);
        for (var i = 0; i < 30; i++) Assert.Equal(a.TrainStep(), b.TrainStep());
    }

    [Fact]
    public void Resume_ReproducesUninterruptedRun()
    {
        const int total = 40, cut = 17;
        var dir = Directory.CreateTempSubdirectory("mora-resume").FullName;
        try
        {
            var straight = CopyTrainer(7, total, out _);
            var expected = Enumerable.Range(0, total).Select(_ => straight.TrainStep()).ToArray();

            var first = CopyTrainer(7, total, out _);
            for (var i = 0; i < cut; i++) Assert.Equal(expected[i], first.TrainStep());
            var path = Path.Combine(dir, "ckpt.safetensors");
            first.SaveCheckpoint(path);

            // A fresh process would build the model from another seed and restore everything from the file.
            var resumed = CopyTrainer(12345, total, out _);
            Checkpoint.Restore(path, resumed);
            Assert.Equal(cut, resumed.Step);
            for (var i = cut; i < total; i++) Assert.Equal(expected[i], resumed.TrainStep());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Checkpoint_WithOtherConfig_IsClearError()
    {
        var dir = Directory.CreateTempSubdirectory("mora-ckpt").FullName;
        try
        {
            var t = CopyTrainer(1, 5, out _);
            t.TrainStep();
            var path = Path.Combine(dir, "c.safetensors");
            t.SaveCheckpoint(path);
            var other = new TransformerModel(ModelConfig.Tiny);
            var trainer = new Trainer(other, new AdamW(other.Parameters()), new ConstantLr(1e-3f), new CopyTaskSource(6, 8, 1),
                new TrainerOptions { BatchSize = 2, Time = 13 });
            var ex = Assert.Throws<SafetensorsException>(() => Checkpoint.Restore(path, trainer));
            Assert.Contains("config", ex.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void NonFiniteLoss_StopsBeforeTheUpdate_KeepingTheLastFiniteWeights()
    {
        var task = new CopyTaskSource(length: 6, alphabet: 8, seed: 2);
        var model = new TransformerModel(CopyConfig(task), 1);
        var trainer = new Trainer(model, new AdamW(model.TrainableParameters(), 1e30f, weightDecay: 0f), new ConstantLr(1e30f), task,
            new TrainerOptions { BatchSize = 4, Time = task.Time, ClipGradNorm = 0 });
        Dictionary<string, float[]> before = new();
        var e = Assert.Throws<TrainingDivergedException>(() =>
        {
            for (var i = 0; i < 50; i++)
            {
                before = model.NamedParameters().ToDictionary(p => p.Name, p => p.Param.ToArray());
                trainer.TrainStep();
            }
        });
        Assert.True(e.Step >= 1, "the first step starts from finite weights and a finite loss");
        Assert.Equal(e.Step, trainer.Step);
        Assert.False(float.IsFinite(e.Loss) && double.IsFinite(e.GradNorm));
        Assert.Contains($"step {e.Step + 1}", e.Message);
        foreach (var (name, p) in model.NamedParameters()) Assert.Equal(before[name], p.ToArray());
    }
}
