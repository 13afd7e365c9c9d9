using System.Globalization;
using System.Text.Json;
using MoraEngine.IO;
using MoraEngine.Nn;
using MoraEngine.Optim;

namespace MoraEngine.Training;

/// <summary>
/// A whole training state in one safetensors file (written atomically): the model's parameters under their own
/// names, optimizer state under <c>optim.SLOT.NAME</c>, and in the metadata the model config, the step, and every
/// generator's state (data and dropout), so a resumed run produces the same losses as an uninterrupted one.
/// </summary>
public static class Checkpoint
{
    public const string Format = "moraengine-checkpoint-v1";
    private const string OptimPrefix = "optim.";

    /// <param name="path">Target file (written atomically).</param>
    /// <param name="trainer">The training state to save.</param>
    /// <param name="extra">Additional metadata entries (e.g. an adapter's config and restart count).</param>
    public static void Save(string path, Trainer trainer, IReadOnlyDictionary<string, string>? extra = null)
    {
        var model = trainer.Model;
        var names = model.NamedParameters().ToDictionary(p => (object)p.Param, p => p.Name, ReferenceEqualityComparer.Instance);
        var tensors = new List<SafeTensor>();
        foreach (var (name, p) in model.NamedParameters()) tensors.Add(new SafeTensor(name, p.ShapeArray.ToArray(), p.ToArray()));
        foreach (var (index, slot, state) in trainer.Optimizer.StateTensors())
        {
            var pname = names.TryGetValue(trainer.Optimizer.Parameters[index], out var n) ? n : $"#{index}";
            tensors.Add(new SafeTensor($"{OptimPrefix}{slot}.{pname}", state.ShapeArray.ToArray(), state.ToArray()));
        }
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["model_config"] = model.Config.ToJson(),
            ["step"] = trainer.Step.ToString(CultureInfo.InvariantCulture),
            ["optimizer_steps"] = trainer.Optimizer.StepCount.ToString(CultureInfo.InvariantCulture),
            ["data_rng"] = JsonSerializer.Serialize(trainer.Data.GetState()),
            ["dropout_rng"] = JsonSerializer.Serialize(model.DropoutGenerators.Select(r => r.GetState()).ToArray()),
            ["trainable"] = JsonSerializer.Serialize(model.NamedParameters().Where(p => p.Param.RequiresGrad).Select(p => p.Name).ToArray()),
        };
        if (trainer.Optimizer is AdamW adam) meta["adam_param_steps"] = JsonSerializer.Serialize(adam.ParameterSteps);
        if (trainer.Schedule is WarmupCosineLr wc) meta["lr_last_restart"] = wc.LastRestart.ToString(CultureInfo.InvariantCulture);
        if (extra != null)
            foreach (var (k, v) in extra) meta[k] = v;
        Safetensors.Save(path, tensors, meta);
    }

    /// <summary>The metadata of a checkpoint (header only; no tensor data is read).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path) => Safetensors.Load(path).Metadata;

    /// <summary>Reads the model config stored in a checkpoint (to build the model before restoring).</summary>
    public static ModelConfig ReadConfig(string path)
    {
        var file = Safetensors.Load(path);
        return ConfigOf(file);
    }

    private static ModelConfig ConfigOf(SafetensorsFile file)
    {
        if (!file.Metadata.TryGetValue("format", out var f) || f != Format)
            throw new SafetensorsException(file.Path, null, $"not a MoraEngine checkpoint (metadata 'format' is not '{Format}'); plain weight files load with ModelIO.LoadWeights");
        if (!file.Metadata.TryGetValue("model_config", out var json))
            throw new SafetensorsException(file.Path, null, "checkpoint metadata has no model_config");
        return ModelConfig.FromJson(json);
    }

    /// <summary>Restores a trainer built around a model of the same config to the saved state.</summary>
    public static void Restore(string path, Trainer trainer)
    {
        var file = Safetensors.Load(path);
        var config = ConfigOf(file);
        if (config != trainer.Model.Config)
            throw new SafetensorsException(file.Path, null, $"checkpoint model config differs from the trainer's model:\n{config.ToJson()}\nvs\n{trainer.Model.Config.ToJson()}");
        ModelIO.LoadWeights(file, trainer.Model, strict: true, belongsToModel: n => !n.StartsWith(OptimPrefix, StringComparison.Ordinal));

        var names = trainer.Model.NamedParameters().ToDictionary(p => (object)p.Param, p => p.Name, ReferenceEqualityComparer.Instance);
        foreach (var (index, slot, state) in trainer.Optimizer.StateTensors())
        {
            var pname = names.TryGetValue(trainer.Optimizer.Parameters[index], out var n) ? n : $"#{index}";
            var key = $"{OptimPrefix}{slot}.{pname}";
            if (!file.Tensors.TryGetValue(key, out var t))
                throw new SafetensorsException(file.Path, key, "optimizer state missing (was the checkpoint saved with another optimizer or other trainable parameters?)");
            if (!t.Shape.AsSpan().SequenceEqual(state.Shape))
                throw new SafetensorsException(file.Path, key, $"shape {ShapeUtil.Format(t.Shape)} does not match {state.ShapeText}");
            state.CopyFrom(t.Data);
        }
        var meta = file.Metadata;
        trainer.Step = int.Parse(meta["step"], CultureInfo.InvariantCulture);
        trainer.Optimizer.RestoreStepCount(int.Parse(meta["optimizer_steps"], CultureInfo.InvariantCulture));
        trainer.Data.SetState(JsonSerializer.Deserialize<uint[]>(meta["data_rng"])!);
        var drop = JsonSerializer.Deserialize<uint[][]>(meta["dropout_rng"])!;
        var gens = trainer.Model.DropoutGenerators.ToArray();
        if (drop.Length != gens.Length) throw new SafetensorsException(file.Path, null, "dropout generator count differs from the model's blocks");
        for (var i = 0; i < gens.Length; i++) gens[i].SetState(drop[i]);
        if (trainer.Optimizer is AdamW adam && meta.TryGetValue("adam_param_steps", out var ps))
        {
            var steps = JsonSerializer.Deserialize<int[]>(ps)!;
            if (steps.Length != adam.ParameterSteps.Length) throw new SafetensorsException(file.Path, null, "optimizer parameter count differs");
            steps.CopyTo(adam.ParameterSteps, 0);
        }
        if (trainer.Schedule is WarmupCosineLr wc && meta.TryGetValue("lr_last_restart", out var lr))
            wc.LastRestart = int.Parse(lr, CultureInfo.InvariantCulture);
    }
}
