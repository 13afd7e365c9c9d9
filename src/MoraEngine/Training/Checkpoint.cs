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
        Safetensors.Save(path, tensors, meta, checksum: true);
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
        ModelConfig config;
        try
        {
            config = ModelConfig.FromJson(json);
        }
        catch (ArgumentException e)
        {
            throw new SafetensorsException(file.Path, null, $"metadata 'model_config': {e.Message}", e);
        }
        ModelIO.CheckSize(file.Path, config, file.Tensors.Values.Where(t => !t.Name.StartsWith(OptimPrefix, StringComparison.Ordinal)).Sum(t => (long)t.Data.Length), exact: false);
        return config;
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
        var step = MetaInt(file, "step", 0);
        var optimizerSteps = MetaInt(file, "optimizer_steps", 0);
        var dataState = MetaRng(file, "data_rng");
        var drop = MetaJson<uint[][]>(file, "dropout_rng");
        var gens = trainer.Model.DropoutGenerators.ToArray();
        if (drop.Length != gens.Length) throw new SafetensorsException(file.Path, null, $"metadata 'dropout_rng' has {drop.Length} generator states, the model has {gens.Length} blocks");
        for (var i = 0; i < drop.Length; i++) CheckRngState(file, "dropout_rng", drop[i]);
        int[]? paramSteps = null;
        if (trainer.Optimizer is AdamW adam && meta.ContainsKey("adam_param_steps"))
        {
            paramSteps = MetaJson<int[]>(file, "adam_param_steps");
            if (paramSteps.Length != adam.ParameterSteps.Length)
                throw new SafetensorsException(file.Path, null, $"metadata 'adam_param_steps' has {paramSteps.Length} entries, the optimizer {adam.ParameterSteps.Length} parameters");
            if (paramSteps.Any(v => v < 0 || v > optimizerSteps))
                throw new SafetensorsException(file.Path, null, $"metadata 'adam_param_steps' holds a count outside [0, optimizer_steps = {optimizerSteps}]");
        }
        var lastRestart = meta.ContainsKey("lr_last_restart") ? MetaInt(file, "lr_last_restart", -1) : (int?)null;
        if (lastRestart > step) throw new SafetensorsException(file.Path, null, $"metadata 'lr_last_restart' {lastRestart} is after the step {step}");
        // Everything parsed and checked: only now does the trainer change.
        trainer.Step = step;
        trainer.Optimizer.RestoreStepCount(optimizerSteps);
        trainer.Data.SetState(dataState);
        for (var i = 0; i < gens.Length; i++) gens[i].SetState(drop[i]);
        if (paramSteps != null && trainer.Optimizer is AdamW adam2) paramSteps.CopyTo(adam2.ParameterSteps, 0);
        if (trainer.Schedule is WarmupCosineLr wc && lastRestart is { } lr) wc.LastRestart = lr;
    }

    private static string MetaString(SafetensorsFile file, string key) =>
        file.Metadata.TryGetValue(key, out var v) ? v : throw new SafetensorsException(file.Path, null, $"checkpoint metadata has no '{key}'");

    private static int MetaInt(SafetensorsFile file, string key, int min)
    {
        var text = MetaString(file, key);
        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) || v < min)
            throw new SafetensorsException(file.Path, null, $"metadata '{key}' must be an integer ≥ {min}, got '{Clip(text)}'");
        return v;
    }

    private static T MetaJson<T>(SafetensorsFile file, string key) where T : class
    {
        var text = MetaString(file, key);
        try
        {
            return JsonSerializer.Deserialize<T>(text) ?? throw new SafetensorsException(file.Path, null, $"metadata '{key}' is null");
        }
        catch (JsonException e)
        {
            throw new SafetensorsException(file.Path, null, $"metadata '{key}' is not valid ({e.Message}): '{Clip(text)}'", e);
        }
    }

    private static uint[] MetaRng(SafetensorsFile file, string key)
    {
        var state = MetaJson<uint[]>(file, key);
        CheckRngState(file, key, state);
        return state;
    }

    /// <summary>A generator state is four words, not all zero (xoshiro's one fixed point, which only yields zeros).</summary>
    private static void CheckRngState(SafetensorsFile file, string key, uint[]? state)
    {
        if (state is not { Length: 4 } || state.All(w => w == 0))
            throw new SafetensorsException(file.Path, null, $"metadata '{key}' must hold generator states of four words, not all zero");
    }

    private static string Clip(string s) => s.Length <= 80 ? s : s[..80] + "…";
}
