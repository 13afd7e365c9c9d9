using MoraEngine.Nn;

namespace MoraEngine.IO;

/// <summary>Model weights to and from safetensors files, with shape checks that name the file and the tensor.</summary>
public static class ModelIO
{
    /// <summary>Writes every parameter of <paramref name="module"/> (atomically) under its dotted name.</summary>
    /// <remarks>A <see cref="TransformerModel"/>'s config goes into the metadata as <c>model_config</c>, so the file describes itself.</remarks>
    public static void SaveWeights(string path, Module module, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var meta = metadata?.ToDictionary(kv => kv.Key, kv => kv.Value) ?? new Dictionary<string, string>();
        if (module is TransformerModel tm && !meta.ContainsKey("model_config")) meta["model_config"] = tm.Config.ToJson();
        Safetensors.Save(path, module.NamedParameters().Select(p => new SafeTensor(p.Name, p.Param.ShapeArray.ToArray(), p.Param.ToArray())), meta, checksum: true);
    }

    /// <summary>
    /// Copies tensors from a file into the module's parameters. With <paramref name="strict"/>, every parameter must
    /// be present and the file must hold nothing else. A shape mismatch is always an error.
    /// </summary>
    public static void LoadWeights(string path, Module module, bool strict = true)
    {
        var file = Safetensors.Load(path);
        LoadWeights(file, module, strict, _ => true);
    }

    /// <summary>
    /// Builds and loads the model at <paramref name="path"/>: a Hugging Face model directory (config.json +
    /// safetensors), or an engine weight file or checkpoint whose config is <paramref name="config"/>, its own
    /// <c>model_config</c> metadata, or a config.json beside it (an HF config.json there means the file is an HF
    /// checkpoint and its directory is loaded as one).
    /// </summary>
    public static TransformerModel LoadModel(string path, ModelConfig? config = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            if (!HuggingFace.IsModelDirectory(path))
                throw new FileNotFoundException($"'{path}' is a directory without a {HuggingFace.ConfigFileName}: not a Hugging Face model directory.", Path.Combine(path, HuggingFace.ConfigFileName));
            if (config != null) throw new ArgumentException($"'{path}' is a Hugging Face model directory: its config.json describes it, a model config cannot be given as well.");
            return HuggingFace.Load(path);
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var beside = Path.Combine(dir, HuggingFace.ConfigFileName);
        if (config == null && File.Exists(beside) && File.ReadAllText(beside).Contains("\"model_type\"", StringComparison.Ordinal))
            return HuggingFace.Load(dir);
        var file = Safetensors.Load(path);
        ModelConfig cfg;
        if (config != null) cfg = config;
        else if (file.Metadata.TryGetValue("model_config", out var j))
        {
            try
            {
                cfg = ModelConfig.FromJson(j);
            }
            catch (ArgumentException e)
            {
                throw new SafetensorsException(path, null, $"metadata 'model_config': {e.Message}", e);
            }
        }
        else
        {
            if (!File.Exists(beside)) throw new FileNotFoundException($"No model config for '{path}': pass a config or put config.json next to it.", beside);
            try
            {
                cfg = ModelConfig.FromJson(File.ReadAllText(beside));
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{beside}: {e.Message}", e);
            }
        }
        CheckSize(path, cfg, file.Tensors.Values.Where(t => !t.Name.StartsWith("optim.", StringComparison.Ordinal)).Sum(t => (long)t.Data.Length));
        var model = new TransformerModel(cfg);
        LoadWeights(file, model, strict: true, belongsToModel: n => !n.StartsWith("optim.", StringComparison.Ordinal));
        return model;
    }

    /// <summary>
    /// A config must describe as many parameters as the file holds, checked before the model is built: a config
    /// that claims a huge vocabulary or depth fails here instead of allocating gigabytes.
    /// </summary>
    /// <param name="path">The file (for the message).</param>
    /// <param name="config">The config read from or beside it.</param>
    /// <param name="fileElements">Elements of the file's model tensors.</param>
    /// <param name="exact">False where the file may hold more (a checkpoint's adapter parameters).</param>
    internal static void CheckSize(string path, ModelConfig config, long fileElements, bool exact = true)
    {
        var expected = config.ParameterCount();
        if (exact ? expected != fileElements : expected > fileElements)
            throw new SafetensorsException(path, null,
                $"the model config describes {expected:N0} parameters but the file holds {fileElements:N0} (config and weights do not belong together)");
    }

    private static int FirstNonFinite(float[] data)
    {
        for (var i = 0; i < data.Length; i++)
            if (!float.IsFinite(data[i])) return i;
        return -1;
    }

    internal static void LoadWeights(SafetensorsFile file, Module module, bool strict, Func<string, bool> belongsToModel)
    {
        var parameters = module.NamedParameters().ToDictionary(p => p.Name, p => p.Param);
        foreach (var (name, p) in parameters)
        {
            if (!file.Tensors.TryGetValue(name, out var t))
            {
                if (strict) throw new SafetensorsException(file.Path, name, "the model has this parameter but the file does not");
                continue;
            }
            if (!t.Shape.AsSpan().SequenceEqual(p.Shape))
                throw new SafetensorsException(file.Path, name, $"shape {ShapeUtil.Format(t.Shape)} in the file does not match the model's {p.ShapeText}");
            var bad = FirstNonFinite(t.Data);
            if (bad >= 0)
                throw new SafetensorsException(file.Path, name, $"element {bad} is {t.Data[bad]}: the weights are not finite (a diverged run saved?)");
            p.CopyFrom(t.Data);
        }
        if (strict)
            foreach (var name in file.Tensors.Keys)
                if (belongsToModel(name) && !parameters.ContainsKey(name))
                    throw new SafetensorsException(file.Path, name, "the file has this tensor but the model has no such parameter");
    }
}
