using System.Text.RegularExpressions;

namespace MoraEngine.Nn;

/// <summary>
/// A layer or model: named parameters and named children, so every parameter has a dotted path such as
/// <c>blocks.0.attn.q.weight</c> (the checkpoint key and the handle for freezing and adapters).
/// </summary>
public abstract class Module
{
    private readonly List<(string Name, Tensor Param)> _params = new();
    private readonly List<(string Name, Module Child)> _children = new();

    /// <summary>True in training mode (dropout active); see <see cref="Train"/> and <see cref="Eval"/>.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Registers a parameter under a local name; it requires grad unless frozen later.</summary>
    protected Tensor AddParameter(string name, Tensor value)
    {
        if (_params.Exists(p => p.Name == name) || _children.Exists(c => c.Name == name))
            throw new ArgumentException($"{GetType().Name}: a parameter or child named '{name}' already exists.");
        value.RequiresGrad = true;
        value.Name = name;
        _params.Add((name, value));
        return value;
    }

    /// <summary>Registers a child module under a local name.</summary>
    protected T AddModule<T>(string name, T child) where T : Module
    {
        if (_params.Exists(p => p.Name == name) || _children.Exists(c => c.Name == name))
            throw new ArgumentException($"{GetType().Name}: a parameter or child named '{name}' already exists.");
        _children.Add((name, child));
        return child;
    }

    /// <summary>Replaces a registered child (used when adapters wrap a layer).</summary>
    protected internal void ReplaceModule(string name, Module child)
    {
        var i = _children.FindIndex(c => c.Name == name);
        if (i < 0) throw new ArgumentException($"{GetType().Name}: no child named '{name}'.");
        _children[i] = (name, child);
    }

    /// <summary>Removes a registered child (used when adapters are unloaded).</summary>
    protected internal void RemoveModule(string name) => _children.RemoveAll(c => c.Name == name);

    /// <summary>Direct children with their local names.</summary>
    public IEnumerable<(string Name, Module Module)> Children => _children;

    /// <summary>Every parameter of this module and its descendants, with dotted names, in registration order.</summary>
    public IEnumerable<(string Name, Tensor Param)> NamedParameters(string prefix = "")
    {
        foreach (var (name, p) in _params) yield return (prefix + name, p);
        foreach (var (name, c) in _children)
            foreach (var np in c.NamedParameters(ChildPrefix(prefix, name)))
                yield return np;
    }

    /// <summary>Every module under this one (itself included, with an empty name), depth first.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix.TrimEnd('.'), this);
        foreach (var (name, c) in _children)
            foreach (var m in c.NamedModules(ChildPrefix(prefix, name)))
                yield return m;
    }

    // A child registered under an empty name is transparent: its parameters sit directly under the parent's path
    // (so a LoRA adapter on `q` owns `q.lora_A.weight`, as in PEFT).
    private static string ChildPrefix(string prefix, string name) => name.Length == 0 ? prefix : prefix + name + ".";

    /// <summary>All parameters.</summary>
    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Param);

    /// <summary>Parameters that currently receive gradients.</summary>
    public IEnumerable<Tensor> TrainableParameters() => Parameters().Where(p => p.RequiresGrad);

    /// <summary>Number of parameter values.</summary>
    public long ParameterCount() => Parameters().Sum(p => (long)p.Length);

    /// <summary>Number of trainable parameter values.</summary>
    public long TrainableParameterCount() => TrainableParameters().Sum(p => (long)p.Length);

    /// <summary>Stops gradients for every parameter of this module.</summary>
    public void Freeze() => SetRequiresGrad(_ => true, false);

    /// <summary>Lets gradients reach every parameter of this module.</summary>
    public void Unfreeze() => SetRequiresGrad(_ => true, true);

    /// <summary>
    /// Freezes (or unfreezes) the parameters whose dotted name matches a glob pattern: <c>*</c> matches any run of
    /// characters, e.g. <c>blocks.*.attn.*</c> or <c>*.ln1.*</c>. Returns how many matched.
    /// </summary>
    public int Freeze(string pattern, bool frozen = true)
    {
        var re = GlobRegex(pattern);
        return SetRequiresGrad(n => re.IsMatch(n), !frozen);
    }

    private int SetRequiresGrad(Func<string, bool> match, bool value)
    {
        var count = 0;
        foreach (var (name, p) in NamedParameters())
        {
            if (!match(name)) continue;
            p.RequiresGrad = value;
            count++;
        }
        return count;
    }

    internal static Regex GlobRegex(string pattern) =>
        new("^" + Regex.Escape(pattern).Replace("\\*", ".*").Replace("\\?", ".") + "$", RegexOptions.CultureInvariant);

    /// <summary>Training mode (dropout on) for this module and its children.</summary>
    public void Train() => SetMode(true);

    /// <summary>Evaluation mode (dropout off) for this module and its children.</summary>
    public void Eval() => SetMode(false);

    private void SetMode(bool training)
    {
        Training = training;
        foreach (var (_, c) in _children) c.SetMode(training);
    }

    /// <summary>
    /// Moves every parameter to <paramref name="device"/> in place (the tensor objects stay the same, so adapters and
    /// references keep working; gradients are dropped). The backend allocates them together (<see cref="Backends.IBackend.AllocateMany"/>: on an ILGPU device they share one buffer). Call it
    /// after attaching adapters and before creating the optimizer. Returns this module.
    /// </summary>
    public Module To(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var moving = new List<Tensor>();
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var p in Parameters())
            if (!ReferenceEquals(p.Device, device) && seen.Add(p)) moving.Add(p);
        if (moving.Count == 0) return this;
        var storages = device.Backend.AllocateMany(device, moving.Select(p => p.Length).ToArray());
        for (var i = 0; i < moving.Count; i++) moving[i].MoveTo(storages[i]);
        return this;
    }

    /// <summary>Parameter values by dotted name (the tensors themselves, not copies).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict() => NamedParameters().ToDictionary(p => p.Name, p => p.Param);
}
