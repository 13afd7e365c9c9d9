using MoraEngine.Training;
using System.Globalization;
using MoraEngine.Adapters;

namespace MoraEngine.Examples.Uuid;

/// <summary>
/// Learning rates: one for every method (<c>1e-3</c>) or per method (<c>mora=2e-3,lora=2e-3</c>, keys being a
/// method name or a full spec such as <c>mora:8:6</c>); methods not named keep their default.
/// </summary>
public sealed class UuidLearningRates
{
    private readonly float? _all;
    private readonly Dictionary<string, float> _byKey;

    private UuidLearningRates(float? all, Dictionary<string, float> byKey)
    {
        _all = all;
        _byKey = byKey;
    }

    /// <summary>
    /// The defaults: what the grid (<c>mora uuid --grid --grid-format-lrs 3e-4,1e-3,3e-3 --seeds 3</c>, rule in
    /// <see cref="UuidGrid"/>) chose at the default settings; bench/RESULTS.md and the README show the whole grid.
    /// ReLoRA and ReMoRA were not in it and take LoRA's and MoRA type 1's rates. See <see cref="DefaultFor"/>.
    /// </summary>
    public static IReadOnlyDictionary<MethodKind, float> Defaults { get; } = new Dictionary<MethodKind, float>
    {
        [MethodKind.Fft] = 5e-3f,
        [MethodKind.Lora] = 5e-3f,
        [MethodKind.Relora] = 5e-3f,
        [MethodKind.Mora] = 5e-3f,
        [MethodKind.Remora] = 5e-3f,
    };

    /// <summary>MoRA's RoPE type (6) did best at a higher rate than type 1 in the grid.</summary>
    public const float MoraRopeDefault = 1e-2f;

    /// <summary>The default rate of a method: its kind's, except MoRA type 6's own.</summary>
    public static float DefaultFor(MethodSpec m) =>
        m.Kind == MethodKind.Mora && m.MoraType == Adapters.MoraType.Rope ? MoraRopeDefault : Defaults[m.Kind];

    /// <summary>One rate per method spec (<c>mora:8:6</c> → rate), as a grid search chose them.</summary>
    public static UuidLearningRates ForSpecs(IReadOnlyDictionary<string, float> bySpec) => new(null, bySpec.ToDictionary(k => k.Key, k => k.Value));

    /// <summary>No overrides: every method at its default.</summary>
    public static UuidLearningRates Default { get; } = new(null, new Dictionary<string, float>());

    /// <summary>Parses <c>RATE</c> or <c>KEY=RATE,KEY=RATE</c> (a bare RATE in a list applies to every method not named).</summary>
    public static UuidLearningRates Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return Default;
        float? all = null;
        var byKey = new Dictionary<string, float>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = item.IndexOf('=');
            var key = eq < 0 ? null : item[..eq].Trim().ToLowerInvariant();
            var value = eq < 0 ? item : item[(eq + 1)..].Trim();
            if (!float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var lr) || !float.IsFinite(lr) || lr <= 0)
                throw new ArgumentException($"--lr: '{item}' is not a positive rate (use 1e-3 or mora=1e-3,lora=1e-3).");
            if (key == null)
            {
                if (all != null) throw new ArgumentException($"--lr: more than one rate without a method ('{text}').");
                all = lr;
                continue;
            }
            if (key.Length == 0) throw new ArgumentException($"--lr: '{item}' has no method before '='.");
            // The key must name a method kind or parse as a method spec.
            if (key is not ("fft" or "lora" or "mora" or "relora" or "remora"))
            {
                try
                {
                    key = MethodSpec.Parse(key).Spec;
                }
                catch (ArgumentException)
                {
                    throw new ArgumentException($"--lr: unknown method '{key}' in '{item}' (use fft, lora, mora, relora, remora or a spec such as mora:8:6).");
                }
            }
            if (!byKey.TryAdd(key, lr)) throw new ArgumentException($"--lr: '{key}' is given twice.");
        }
        return new UuidLearningRates(all, byKey);
    }

    /// <summary>The rate for a method: its full spec, then its name, then the bare rate, then the default.</summary>
    public float For(MethodSpec m) =>
        _byKey.TryGetValue(m.Spec, out var a) ? a
        : _byKey.TryGetValue(m.Name, out var b) ? b
        : _all ?? DefaultFor(m);

    /// <summary>Keys that match none of the given methods (to warn about typos such as a method not being run).</summary>
    public IEnumerable<string> UnusedKeys(IEnumerable<MethodSpec> methods)
    {
        var list = methods.ToList();
        return _byKey.Keys.Where(k => !list.Any(m => m.Spec == k || m.Name == k));
    }
}

/// <summary>Everything that defines a run of the demo. The defaults are sized for a 2-core CPU (about 10 minutes).</summary>
public sealed record UuidSettings
{
    /// <summary>Key → value pairs to memorise.</summary>
    public int Pairs { get; init; } = 128;

    /// <summary>Fine-tuning steps per method.</summary>
    public int Steps { get; init; } = 500;

    /// <summary>Rows per step (fine-tuning and format stage).</summary>
    public int Batch { get; init; } = 32;

    public UuidLearningRates LearningRates { get; init; } = UuidLearningRates.Default;

    public IReadOnlyList<MethodSpec> Methods { get; init; } = MethodSpec.ParseList("fft,lora:8,mora:8:1,mora:8:6");

    public int DModel { get; init; } = 128;

    public int Layers { get; init; } = 2;

    public int Heads { get; init; } = 4;

    /// <summary>Steps of the format stage (all parameters, fresh random pairs).</summary>
    public int FormatSteps { get; init; } = 300;

    /// <summary>Peak learning rate of the format stage (the grid's choice; see <see cref="UuidLearningRates.Defaults"/>).</summary>
    public float FormatLr { get; init; } = 3e-4f;

    /// <summary>AdamW weight decay of the format stage.</summary>
    public float FormatWeightDecay { get; init; } = 0.1f;

    /// <summary>The format stage's schedule: <c>cosine</c> (warm-up, then cosine to a tenth) or <c>constant</c>.</summary>
    public string FormatSchedule { get; init; } = "cosine";

    /// <summary>Steps between evaluations (the last step is always evaluated).</summary>
    public int EvalEvery { get; init; } = 50;

    /// <summary>Steps between ReLoRA/ReMoRA restarts.</summary>
    public int RestartEvery { get; init; } = 100;

    /// <summary>Warm-up steps of each fine-tuning run (then cosine decay to a tenth of the peak).</summary>
    public int Warmup { get; init; } = 30;

    public ulong Seed { get; init; } = 1;

    /// <summary>Seeds to run (Seed, Seed + 1, …): each has its own pairs, base model and data order; tables report mean and spread.</summary>
    public int Seeds { get; init; } = 3;

    /// <summary>
    /// Format-stage learning rates to try before the final runs (null: no grid). With a grid, every format rate and
    /// every rate in <see cref="GridLrs"/> is tried for every method on the first seed, and the final runs use the
    /// choice (see <see cref="UuidGrid"/>).
    /// </summary>
    public float[]? GridFormatLrs { get; init; }

    /// <summary>Fine-tuning learning rates the grid tries for each method.</summary>
    public float[] GridLrs { get; init; } = [1e-3f, 3e-3f, 5e-3f, 1e-2f];

    /// <summary>The format-stage rates <c>--grid</c> tries by default.</summary>
    public static float[] DefaultGridFormatLrs { get; } = [1e-3f, 3e-3f];

    /// <summary><c>auto</c> (CUDA when a CUDA device works, else the CPU), <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Where the format stage's checkpoints are cached; null disables the cache.</summary>
    public string? CacheDir { get; init; } = Path.Combine("runs", "uuid-cache");

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad option.</summary>
    public void Validate()
    {
        static void Positive(long v, string name)
        {
            if (v <= 0) throw new ArgumentException($"{name} must be positive, got {v}.");
        }
        Positive(Pairs, "--pairs");
        Positive(Steps, "--steps");
        Positive(Batch, "--batch");
        Positive(DModel, "--d-model");
        Positive(Layers, "--layers");
        Positive(Heads, "--heads");
        Positive(EvalEvery, "--eval-every");
        Positive(RestartEvery, "--restart-every");
        Positive(Seeds, "--seeds");
        static void Rates(float[] rates, string name)
        {
            if (rates.Length == 0) throw new ArgumentException($"{name}: no rate given.");
            foreach (var r in rates)
                if (!(r > 0) || !float.IsFinite(r)) throw new ArgumentException($"{name}: rates must be positive, got {r}.");
        }
        if (GridFormatLrs != null)
        {
            Rates(GridFormatLrs, "--grid-format-lrs");
            Rates(GridLrs, "--grid-lrs");
        }
        if (FormatSteps < 0) throw new ArgumentException($"--format-steps must be ≥ 0, got {FormatSteps}.");
        if (Warmup < 0) throw new ArgumentException($"--warmup must be ≥ 0, got {Warmup}.");
        if (!(FormatLr > 0) || !float.IsFinite(FormatLr)) throw new ArgumentException($"--format-lr must be positive, got {FormatLr}.");
        if (!(FormatWeightDecay >= 0) || !float.IsFinite(FormatWeightDecay)) throw new ArgumentException($"--format-wd must be ≥ 0, got {FormatWeightDecay}.");
        if (FormatSchedule is not ("cosine" or "constant")) throw new ArgumentException($"--format-schedule must be cosine or constant, got '{FormatSchedule}'.");
        if (DModel % Heads != 0) throw new ArgumentException($"--d-model {DModel} must be divisible by --heads {Heads}.");
        if (Methods.Count == 0) throw new ArgumentException("--methods: no method given.");
        var unused = LearningRates.UnusedKeys(Methods).ToList();
        if (unused.Count > 0) throw new ArgumentException($"--lr names {string.Join(", ", unused)}, which is not among --methods ({string.Join(",", Methods)}).");
        ResolveDevice(Device);
        var shapes = Adapters.AdapterBudget.TargetShapes(ModelConfig, new AdapterConfig().TargetModules).ToList();
        foreach (var m in Methods.Where(m => m.IsMora))
            foreach (var (name, inF, outF) in shapes)
            {
                var rHat = MoraOperator.RankHat(inF, outF, m.Rank!.Value, m.MoraType!.Value);
                if (rHat > Math.Min(inF, outF))
                    throw new ArgumentException($"Method '{m.Spec}': r̂ = {rHat} exceeds layer {name} [{outF}, {inF}]; use a smaller rank or a larger --d-model.");
            }
    }

    /// <summary>The device for a <c>--device</c> value (see <see cref="Devices.Parse(string)"/>).</summary>
    public static Device ResolveDevice(string name) => Devices.ParseOption(name);

    /// <summary>The model: GPT-2 style with the UUID vocabulary and a context of one row.</summary>
    public Nn.ModelConfig ModelConfig => new()
    {
        Architecture = Nn.Architecture.Gpt2,
        VocabSize = UuidVocab.Size,
        DModel = DModel,
        Layers = Layers,
        Heads = Heads,
        Context = UuidVocab.Time,
    };
}
