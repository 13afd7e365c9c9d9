using System.Globalization;
using MoraEngine.Adapters;
using MoraEngine.Nn;
using MoraEngine.Training;

namespace MoraEngine.Examples.Paper;

/// <summary>The experiments of <c>mora paper</c>, one per claim of the MoRA paper that the UUID demo does not test.</summary>
public enum PaperExperiment
{
    /// <summary>Claim 1: pretraining from a frozen random base, ReMoRA &lt; MoRA &lt; ReLoRA &lt; LoRA in validation loss.</summary>
    Pretrain,
    /// <summary>Claim 2: continual pretraining on a new domain, MoRA lowers its loss more than LoRA.</summary>
    Continual,
    /// <summary>Claim 3: instruction-like and reasoning-like tasks, MoRA comparable to LoRA.</summary>
    Tasks,
    /// <summary>Claim 4: ΔW of MoRA and ReMoRA has far more significant singular values than LoRA's and ReLoRA's.</summary>
    Spectra,
}

/// <summary>
/// Everything that defines one experiment of the suite. <see cref="For"/> gives the defaults of an experiment and a
/// preset: <c>default</c> (each experiment in about 15 minutes or less on 2 CPU cores), <c>full</c> (a larger model
/// and longer runs, for a GPU or a patient CPU) and <c>tiny</c> (seconds; what the tests run).
/// </summary>
public sealed record PaperSettings
{
    public PaperExperiment Experiment { get; init; }

    /// <summary><c>default</c>, <c>full</c> or <c>tiny</c> (recorded in results.json).</summary>
    public string Preset { get; init; } = "default";

    /// <summary>Final seeds: <see cref="Seed"/>, <see cref="Seed"/> + 1, …; each has its own adapter initialisation, data order and (continual) domain.</summary>
    public int Seeds { get; init; } = 3;

    public ulong Seed { get; init; } = 1;

    /// <summary>The learning-rate grid runs on its own seed, so the final seeds are not those the rates were chosen on.</summary>
    public ulong GridSeed => Seed + 1000;

    /// <summary>Training steps of every run (every method the same).</summary>
    public int Steps { get; init; } = 300;

    public int Batch { get; init; } = 16;

    /// <summary>Tokens (bytes) per row, also the model's context.</summary>
    public int Time { get; init; } = 64;

    public int DModel { get; init; } = 128;

    public int Layers { get; init; } = 4;

    public int Heads { get; init; } = 4;

    /// <summary>LoRA's rank r; MoRA's r̂ follows from it per layer (equal parameters).</summary>
    public int Rank { get; init; } = 8;

    /// <summary>The methods compared.</summary>
    public IReadOnlyList<MethodSpec> Methods { get; init; } = [];

    /// <summary>Peak learning rates tried for every method on <see cref="GridSeed"/>; each method's winner (lowest final held-out loss) runs on every seed.</summary>
    public float[] GridLrs { get; init; } = [1e-3f, 3e-3f, 1e-2f];

    public int EvalEvery { get; init; } = 25;

    /// <summary>Rows of held-out data per evaluation of the general corpus (batches of <see cref="Batch"/>).</summary>
    public int EvalRows { get; init; } = 128;

    /// <summary>Steps between ReLoRA/ReMoRA merges and restarts.</summary>
    public int RestartEvery { get; init; } = 75;

    /// <summary>Warm-up steps at the start and (ReLoRA/ReMoRA) after each restart; then cosine decay to a tenth.</summary>
    public int Warmup { get; init; } = 20;

    /// <summary>Steps of full pretraining on the general corpus that make the base of the continual and task experiments (cached).</summary>
    public int BaseSteps { get; init; } = 600;

    public float BaseLr { get; init; } = 3e-3f;

    /// <summary>Fictional entities of the continual-pretraining domain (five facts each).</summary>
    public int DomainEntities { get; init; } = 48;

    /// <summary>Training and test examples per task.</summary>
    public int TaskTrain { get; init; } = 4000;

    public int TaskTest { get; init; } = 200;

    /// <summary>Digits of each operand of the addition task.</summary>
    public int AdditionDigits { get; init; } = 2;

    /// <summary>Half-width of "comparable" for task accuracy (0.05 = ±5 points).</summary>
    public double Margin { get; init; } = 0.05;

    /// <summary>The user's own general text (default: the .NET SDK's XML documentation).</summary>
    public string? TextFile { get; init; }

    /// <summary>A directory of the user's own text files.</summary>
    public string? CorpusDir { get; init; }

    public string Device { get; init; } = "auto";

    /// <summary>Where finished runs and base models are kept, keyed by everything that defines them (reruns and interrupted suites resume from it); null: nothing cached.</summary>
    public string? CacheDir { get; init; } = Path.Combine("runs", "paper-cache");

    /// <summary>Threshold of a "significant" singular value, relative to the largest.</summary>
    public const double SpectrumThreshold = 0.01;

    /// <summary>The model: LLaMA-style (RoPE, RMSNorm, SwiGLU) on bytes.</summary>
    public ModelConfig ModelConfig => new()
    {
        Architecture = Architecture.Llama,
        VocabSize = 256,
        DModel = DModel,
        Layers = Layers,
        Heads = Heads,
        Context = Time,
    };

    /// <summary>Every linear layer of the blocks (the head trains fully with the embeddings and norms).</summary>
    public static string[] Targets { get; } = ["q", "k", "v", "o", "gate", "up", "down"];

    /// <summary>The defaults of an experiment at a preset.</summary>
    public static PaperSettings For(PaperExperiment experiment, string preset = "default")
    {
        var r = new PaperSettings { Experiment = experiment, Preset = preset };
        r = preset switch
        {
            "default" => r,
            "full" => r with
            {
                DModel = 256, Layers = 6, Heads = 8, Time = 128, Batch = 32, Steps = 2000, EvalEvery = 100, RestartEvery = 500, Warmup = 100,
                BaseSteps = 4000, DomainEntities = 96, TaskTrain = 20000, TaskTest = 500, EvalRows = 512,
            },
            "tiny" => r with
            {
                DModel = 32, Layers = 1, Heads = 2, Time = 64, Batch = 4, Steps = 6, Seeds = 2, Rank = 4, GridLrs = [1e-3f, 1e-2f],
                EvalEvery = 3, RestartEvery = 3, Warmup = 1, BaseSteps = 4, DomainEntities = 4, TaskTrain = 64, TaskTest = 12, EvalRows = 8,
            },
            _ => throw new ArgumentException($"--preset must be default, full or tiny, got '{preset}'."),
        };
        // Pretraining also tries 3e-4; continual pretraining from the base wants lower rates (1e-2 overfits every
        // method); tasks train longer on their short examples.
        if (preset == "default")
            r = experiment switch
            {
                PaperExperiment.Tasks => r with { Steps = 500 },
                PaperExperiment.Continual => r with { GridLrs = [1e-4f, 3e-4f, 1e-3f, 3e-3f] },
                _ => r with { GridLrs = [3e-4f, 1e-3f, 3e-3f, 1e-2f] },
            };
        var k = r.Rank.ToString(CultureInfo.InvariantCulture);
        return r with { Methods = MethodSpec.ParseList(DefaultMethods(experiment, k)) };
    }

    /// <summary>The methods an experiment compares by default.</summary>
    public static string DefaultMethods(PaperExperiment e, string rank) => e switch
    {
        PaperExperiment.Pretrain => $"fft,lora:{rank},relora:{rank},mora:{rank}:1,remora:{rank}:1",
        PaperExperiment.Spectra => $"lora:{rank},relora:{rank},mora:{rank}:1,remora:{rank}:1",
        PaperExperiment.Continual => $"fft,lora:{rank},mora:{rank}:1",
        _ => $"lora:{rank},mora:{rank}:1",
    };

    /// <summary>The methods the claim needs (each must be present).</summary>
    public IReadOnlyList<string> RequiredKinds => Experiment switch
    {
        PaperExperiment.Pretrain => ["lora", "relora", "mora", "remora"],
        PaperExperiment.Spectra => ["lora", "relora", "mora", "remora"],
        _ => ["lora", "mora"],
    };

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad option.</summary>
    public void Validate()
    {
        static void Positive(long v, string name)
        {
            if (v <= 0) throw new ArgumentException($"{name} must be positive, got {v}.");
        }
        Positive(Seeds, "--seeds");
        Positive(Steps, "--steps");
        Positive(Batch, "--batch");
        Positive(Time, "--seq-len");
        Positive(DModel, "--d-model");
        Positive(Layers, "--layers");
        Positive(Heads, "--heads");
        Positive(Rank, "--rank");
        Positive(EvalEvery, "--eval-every");
        Positive(EvalRows, "--eval-rows");
        Positive(RestartEvery, "--restart-every");
        Positive(BaseSteps, "--base-steps");
        Positive(DomainEntities, "--entities");
        Positive(TaskTrain, "--task-train");
        Positive(TaskTest, "--task-test");
        if (AdditionDigits is < 1 or > 9) throw new ArgumentException($"--digits must be 1 to 9, got {AdditionDigits}.");
        if (Time < 16) throw new ArgumentException($"--seq-len must be at least 16, got {Time}.");
        if (Warmup < 0 || Warmup > Steps) throw new ArgumentException($"--warmup must be in [0, --steps], got {Warmup}.");
        if (DModel % Heads != 0) throw new ArgumentException($"--d-model {DModel} must be divisible by --heads {Heads}.");
        if (GridLrs.Length == 0) throw new ArgumentException("--grid-lrs: no rate given.");
        foreach (var lr in GridLrs)
            if (!(lr > 0) || !float.IsFinite(lr)) throw new ArgumentException($"--grid-lrs: rates must be positive, got {lr}.");
        if (GridLrs.Distinct().Count() != GridLrs.Length) throw new ArgumentException("--grid-lrs: a rate is listed twice.");
        if (!(BaseLr > 0) || !float.IsFinite(BaseLr)) throw new ArgumentException($"--base-lr must be positive, got {BaseLr}.");
        if (!(Margin > 0 && Margin < 1)) throw new ArgumentException($"--margin must be in (0, 1), got {Margin}.");
        if (TextFile != null && CorpusDir != null) throw new ArgumentException("--text and --corpus are alternatives; give one.");
        if (Methods.Count == 0) throw new ArgumentException("--methods: no method given.");
        foreach (var kind in RequiredKinds)
            if (!Methods.Any(m => m.Name == kind))
                throw new ArgumentException($"--methods: the {Experiment.ToString().ToLowerInvariant()} claim compares {string.Join(", ", RequiredKinds)}; '{kind}' is missing.");
        foreach (var kind in Methods.GroupBy(m => m.Name).Where(g => g.Count() > 1))
            throw new ArgumentException($"--methods: '{kind.Key}' appears more than once; the claims compare one of each.");
        var shapes = AdapterBudget.TargetShapes(ModelConfig, Targets).ToList();
        foreach (var m in Methods.Where(m => m.IsMora))
            foreach (var (name, inF, outF) in shapes)
            {
                var rHat = MoraOperator.RankHat(inF, outF, m.Rank!.Value, m.MoraType!.Value);
                if (rHat > Math.Min(inF, outF))
                    throw new ArgumentException($"Method '{m.Spec}': r̂ = {rHat} exceeds layer {name} [{outF}, {inF}]; use a smaller --rank or a larger --d-model.");
            }
        Devices.ParseOption(Device);
    }
}
