using MoraEngine.Autograd;
using MoraEngine.IO;
using MoraEngine.Nn;

namespace MoraEngine.Adapters;

/// <summary>One adapted layer.</summary>
public sealed record AdaptedLayer(string Name, Linear Layer, LinearAdapter Adapter);

/// <summary>
/// A model with adapters on its targeted Linear layers; everything else frozen unless the config asks otherwise.
/// The flow reads like PEFT: <c>Wrap</c> (get_peft_model), train, <c>Merge</c>/<c>MergeAndUnload</c>,
/// <c>Save</c> (save_pretrained), <c>Load</c> (from_pretrained).
/// </summary>
public sealed class AdaptedModel
{
    /// <summary>Key prefix of PEFT's adapter files.</summary>
    public const string PeftPrefix = "base_model.model.";
    public const string ConfigFileName = "adapter_config.json";
    public const string WeightsFileName = "adapter_model.safetensors";

    private readonly List<AdaptedLayer> _layers = new();

    private AdaptedModel(TransformerModel model, AdapterConfig config)
    {
        Model = model;
        Config = config;
    }

    public TransformerModel Model { get; }

    /// <summary>The configuration (its MoRA type follows ReMoRA restarts).</summary>
    public AdapterConfig Config { get; private set; }

    public IReadOnlyList<AdaptedLayer> Layers => _layers;

    /// <summary>True while every update is folded into the base weights.</summary>
    public bool IsMerged { get; private set; }

    /// <summary>Attaches adapters to every targeted layer and freezes the rest of the model.</summary>
    public static AdaptedModel Wrap(TransformerModel model, AdapterConfig config)
    {
        config.Validate();
        foreach (var (_, l) in model.Linears())
            if (l.Adapter != null) throw new InvalidOperationException("AdaptedModel.Wrap: the model already has adapters.");
        var adapted = new AdaptedModel(model, config);
        model.Freeze();
        if (config.TrainEmbeddingsAndHead)
        {
            model.TokEmb.Unfreeze();
            model.PosEmb?.Unfreeze();
            model.Head?.Unfreeze();
        }
        var rng = new Rng(config.Seed);
        var matched = new HashSet<string>();
        foreach (var (name, layer) in model.Linears())
        {
            var leaf = name[(name.LastIndexOf('.') + 1)..];
            if (ReferenceEquals(layer, model.Head) || Array.IndexOf(config.TargetModules, leaf) < 0) continue;
            matched.Add(leaf);
            LinearAdapter adapter;
            try
            {
                adapter = config.Method == AdapterMethod.Lora
                    ? new LoraAdapter(layer.InFeatures, layer.OutFeatures, config.Rank, config.Scaling, config.Dropout, rng)
                    : new MoraAdapter(layer.InFeatures, layer.OutFeatures, config.Rank, config.MoraType, config.Dropout, rng);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"AdaptedModel.Wrap: layer '{name}' [{layer.OutFeatures}, {layer.InFeatures}]: {e.Message}", e);
            }
            layer.SetAdapter(adapter);
            adapted._layers.Add(new AdaptedLayer(name, layer, adapter));
        }
        foreach (var t in config.TargetModules)
            if (!matched.Contains(t))
            {
                foreach (var l in adapted._layers) l.Layer.SetAdapter(null);
                throw new ArgumentException($"AdaptedModel.Wrap: target module '{t}' matches no layer of this {model.Config.Architecture} model.");
            }
        return adapted;
    }

    /// <summary>The adapters' own parameters.</summary>
    public IEnumerable<Tensor> AdapterParameters() => _layers.SelectMany(l => l.Adapter.Parameters());

    /// <summary>Parameters that train (adapters, plus embeddings and head when configured).</summary>
    public IEnumerable<Tensor> TrainableParameters() => Model.TrainableParameters();

    public long TrainableParameterCount() => Model.TrainableParameterCount();

    /// <summary>All parameters of the base model and the adapters.</summary>
    public long TotalParameterCount() => Model.ParameterCount();

    /// <summary>Folds every ΔW into its layer's weight; the adapters are then skipped until <see cref="Unmerge"/>.</summary>
    public void Merge()
    {
        if (IsMerged) return;
        using var _ = Graph.NoGrad();
        foreach (var l in _layers)
        {
            var delta = l.Adapter.DeltaWeight();
            l.Layer.Weight.Device.Backend.Scale(delta, 1f, l.Layer.Weight, true);
            l.Adapter.IsMerged = true;
        }
        IsMerged = true;
    }

    /// <summary>Subtracts the updates again (exact up to float rounding).</summary>
    public void Unmerge()
    {
        if (!IsMerged) return;
        using var _ = Graph.NoGrad();
        foreach (var l in _layers)
        {
            var delta = l.Adapter.DeltaWeight();
            l.Layer.Weight.Device.Backend.Scale(delta, -1f, l.Layer.Weight, true);
            l.Adapter.IsMerged = false;
        }
        IsMerged = false;
    }

    /// <summary>Merges and removes the adapters, returning the plain model (PEFT's merge_and_unload).</summary>
    public TransformerModel MergeAndUnload()
    {
        Merge();
        foreach (var l in _layers) l.Layer.SetAdapter(null);
        _layers.Clear();
        return Model;
    }

    /// <summary>
    /// A ReLoRA/ReMoRA restart: merge every ΔW into W, re-initialise the adapters (LoRA: A Kaiming, B zero; MoRA:
    /// M zero) and, for MoRA, switch the operator type. The model's function is unchanged; the optimizer state of
    /// <see cref="AdapterParameters"/> must be reset by the caller.
    /// </summary>
    public void Restart(MoraType? nextType = null)
    {
        if (IsMerged) throw new InvalidOperationException("AdaptedModel.Restart: unmerge first.");
        Merge();
        var rng = new Rng(Config.Seed + (ulong)++_restarts * 7919);
        foreach (var l in _layers)
        {
            switch (l.Adapter)
            {
                case LoraAdapter lora: lora.Reset(rng); break;
                case MoraAdapter mora: mora.Reset(nextType); break;
            }
            l.Adapter.IsMerged = false;
        }
        IsMerged = false;
        if (nextType is { } t && Config.Method == AdapterMethod.Mora) Config = Config with { MoraType = t };
    }

    private int _restarts;

    /// <summary>Number of restarts so far (part of the training state: it seeds LoRA's re-initialisation).</summary>
    public int Restarts
    {
        get => _restarts;
        internal set => _restarts = value;
    }

    // ---------------------------------------------------------------- files

    /// <summary>Writes <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> (PEFT's names and layout).</summary>
    public void Save(string directory)
    {
        if (IsMerged) throw new InvalidOperationException("AdaptedModel.Save: the adapters are merged; unmerge before saving them.");
        Directory.CreateDirectory(directory);
        var tensors = new List<SafeTensor>();
        foreach (var l in _layers)
        {
            foreach (var (name, p) in l.Adapter.NamedParameters())
                tensors.Add(new SafeTensor($"{PeftPrefix}{l.Name}.{name}", p.ShapeArray.ToArray(), p.ToArray()));
            // The official MoRA code registers M as both lora_A and lora_B (one module), and PEFT saves both keys.
            if (l.Adapter is MoraAdapter mora)
                tensors.Add(new SafeTensor($"{PeftPrefix}{l.Name}.{MoraAdapter.AliasName}", mora.M.ShapeArray.ToArray(), mora.M.ToArray()));
        }
        if (Config.TrainEmbeddingsAndHead)
            foreach (var (name, p) in SavedModules())
                tensors.Add(new SafeTensor(PeftPrefix + name, p.ShapeArray.ToArray(), p.ToArray()));
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["method"] = Config.Method == AdapterMethod.Mora ? "mora" : "lora" };
        // The weights cannot tell MoRA types apart (types 1 to 4 share r̂): the file says which one it holds.
        if (Config.Method == AdapterMethod.Mora) meta["mora_type"] = ((int)Config.MoraType).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Safetensors.Save(Path.Combine(directory, WeightsFileName), tensors, meta, checksum: true);
        var cfgPath = Path.Combine(directory, ConfigFileName);
        var tmp = cfgPath + ".tmp";
        var modules = Model.NamedModules().Where(m => ReferenceEquals(m.Module, Model.TokEmb) || ReferenceEquals(m.Module, Model.PosEmb) || ReferenceEquals(m.Module, Model.Head))
            .Select(m => m.Name[(m.Name.LastIndexOf('.') + 1)..]).ToArray();
        var fanInFanOut = Model.Config.Layout == ModelLayout.HuggingFace && Model.Config.Architecture == Architecture.Gpt2;
        File.WriteAllText(tmp, Config.ToPeftJson(fanInFanOut, modules));
        File.Move(tmp, cfgPath, overwrite: true);
    }

    /// <summary>
    /// Wraps <paramref name="model"/> with the adapter saved in <paramref name="directory"/>. Shapes or types that do
    /// not fit the model are errors naming the file and the tensor.
    /// </summary>
    public static AdaptedModel Load(string directory, TransformerModel model)
    {
        var cfgPath = Path.Combine(directory, ConfigFileName);
        var weightsPath = Path.Combine(directory, WeightsFileName);
        if (!File.Exists(cfgPath)) throw new FileNotFoundException($"Adapter directory '{directory}' has no {ConfigFileName}.", cfgPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"Adapter directory '{directory}' has no {WeightsFileName}.", weightsPath);
        var config = AdapterConfig.FromPeftJson(File.ReadAllText(cfgPath), cfgPath);
        var file = Safetensors.Load(weightsPath);
        var method = config.Method == AdapterMethod.Mora ? "mora" : "lora";
        if (file.Metadata.TryGetValue("method", out var savedMethod) && savedMethod != method)
            throw new SafetensorsException(weightsPath, null, $"the weights were saved by a {savedMethod} adapter but {cfgPath} describes {method}");
        if (config.Method == AdapterMethod.Mora && file.Metadata.TryGetValue("mora_type", out var savedType) && savedType != ((int)config.MoraType).ToString(System.Globalization.CultureInfo.InvariantCulture))
            throw new SafetensorsException(weightsPath, null, $"the weights were trained as MoRA type {savedType} but {cfgPath} says type {(int)config.MoraType}");
        var adapted = Wrap(model, config);
        var expected = new Dictionary<string, Tensor>();
        foreach (var l in adapted._layers)
            foreach (var (name, p) in l.Adapter.NamedParameters())
                expected[$"{PeftPrefix}{l.Name}.{name}"] = p;
        if (config.TrainEmbeddingsAndHead)
            foreach (var (name, p) in adapted.SavedModules())
                expected[PeftPrefix + name] = p;
        var aliases = new Dictionary<string, Tensor>();
        foreach (var l in adapted._layers)
            if (l.Adapter is MoraAdapter mora) aliases[$"{PeftPrefix}{l.Name}.{MoraAdapter.AliasName}"] = mora.M;
        try
        {
            foreach (var (key, p) in expected)
            {
                if (!file.Tensors.TryGetValue(key, out var t))
                    throw new SafetensorsException(weightsPath, key, "the adapter config implies this tensor but the file lacks it (another model or target list?)");
                if (!t.Shape.AsSpan().SequenceEqual(p.Shape))
                    throw new SafetensorsException(weightsPath, key,
                        $"shape {ShapeUtil.Format(t.Shape)} does not fit this model, which needs {p.ShapeText} (an adapter for another model size, rank or MoRA type?)");
                p.CopyFrom(t.Data);
            }
            foreach (var (key, t) in file.Tensors)
            {
                if (expected.ContainsKey(key)) continue;
                if (aliases.TryGetValue(key, out var m))
                {
                    // MoRA's lora_B is the same matrix as lora_A in the official code: it must say the same.
                    if (!t.Shape.AsSpan().SequenceEqual(m.Shape) || !t.Data.AsSpan().SequenceEqual(m.ToArray()))
                        throw new SafetensorsException(weightsPath, key, "MoRA stores its square matrix as lora_A and lora_B alike, but here they differ");
                    continue;
                }
                throw new SafetensorsException(weightsPath, key, "this tensor has no place in the model (an adapter for another model?)");
            }
            foreach (var p in expected.Values)
                foreach (var v in p.ToArray())
                    if (!float.IsFinite(v))
                        throw new SafetensorsException(weightsPath, expected.First(kv => ReferenceEquals(kv.Value, p)).Key, "the adapter weights are not finite (NaN or Inf)");
        }
        catch
        {
            adapted.MergeAndUnloadWithoutMerging();
            throw;
        }
        return adapted;
    }

    /// <summary>The embeddings' and head's parameters (saved with the adapter when they train too).</summary>
    private IEnumerable<(string Name, Tensor Param)> SavedModules() =>
        Model.NamedParameters().Where(p => ReferenceEquals(p.Param, Model.TokEmb.Weight) || ReferenceEquals(p.Param, Model.PosEmb?.Weight) || ReferenceEquals(p.Param, Model.Head?.Weight));

    private void MergeAndUnloadWithoutMerging()
    {
        foreach (var l in _layers) l.Layer.SetAdapter(null);
        _layers.Clear();
    }
}
