using System.Globalization;
using MoraEngine.Adapters;

namespace MoraEngine.Training;

/// <summary>What trains: the whole model, or adapters with or without restarts.</summary>
public enum MethodKind
{
    /// <summary>Full fine-tuning: every parameter trains.</summary>
    Fft,
    Lora,
    Mora,
    /// <summary>LoRA with restarts: merge into W and re-initialise every N steps (ReLoRA).</summary>
    Relora,
    /// <summary>MoRA with restarts that also cycle the operator type 1 → 2 → 1 (ReMoRA).</summary>
    Remora,
}

/// <summary>One method to run: <c>fft</c>, <c>lora:8</c>, <c>mora:8:6</c>, <c>remora:8</c>, ...</summary>
public sealed record MethodSpec(MethodKind Kind, int? Rank, MoraType? MoraType)
{
    /// <summary>Lower-case method name as results.json writes it (fft, lora, mora, relora, remora).</summary>
    public string Name => Kind.ToString().ToLowerInvariant();

    /// <summary>The canonical spec (<c>mora:8:6</c>).</summary>
    public string Spec => Kind switch
    {
        MethodKind.Fft => "fft",
        MethodKind.Lora or MethodKind.Relora => $"{Name}:{Rank}",
        _ => $"{Name}:{Rank}:{(int)MoraType!.Value}",
    };

    /// <summary>A readable label for tables and plots.</summary>
    public string Label => Kind switch
    {
        MethodKind.Fft => "FFT",
        MethodKind.Lora => $"LoRA r={Rank}",
        MethodKind.Relora => $"ReLoRA r={Rank}",
        MethodKind.Mora => $"MoRA r={Rank} type {(int)MoraType!.Value}",
        _ => $"ReMoRA r={Rank} type {(int)MoraType!.Value}",
    };

    public bool IsMora => Kind is MethodKind.Mora or MethodKind.Remora;

    public bool HasRestarts => Kind is MethodKind.Relora or MethodKind.Remora;

    /// <summary>
    /// Parses <c>fft</c>, <c>lora[:r]</c>, <c>relora[:r]</c>, <c>mora[:r[:type]]</c>, <c>remora[:r[:type]]</c>
    /// (r defaults to 8, the MoRA type to 1).
    /// </summary>
    public static MethodSpec Parse(string spec)
    {
        var parts = spec.Trim().ToLowerInvariant().Split(':');
        MethodKind kind = parts[0] switch
        {
            "fft" => MethodKind.Fft,
            "lora" => MethodKind.Lora,
            "mora" => MethodKind.Mora,
            "relora" => MethodKind.Relora,
            "remora" => MethodKind.Remora,
            _ => throw new ArgumentException($"Unknown method '{spec}' (known: fft, lora:R, mora:R:TYPE, relora:R, remora:R:TYPE)."),
        };
        var maxParts = kind switch { MethodKind.Fft => 1, MethodKind.Lora or MethodKind.Relora => 2, _ => 3 };
        if (parts.Length > maxParts) throw new ArgumentException($"Method '{spec}': too many ':' fields (expected {kind switch { MethodKind.Fft => "fft", MethodKind.Lora or MethodKind.Relora => parts[0] + ":RANK", _ => parts[0] + ":RANK:TYPE" }}).");
        if (kind == MethodKind.Fft) return new MethodSpec(kind, null, null);
        var rank = 8;
        if (parts.Length > 1 && (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out rank) || rank <= 0))
            throw new ArgumentException($"Method '{spec}': the rank must be a positive integer, got '{parts[1]}'.");
        if (kind is MethodKind.Lora or MethodKind.Relora) return new MethodSpec(kind, rank, null);
        var type = Adapters.MoraType.Sharing;
        if (parts.Length > 2)
        {
            if (!int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var t) || !Enum.IsDefined((Adapters.MoraType)t))
                throw new ArgumentException($"Method '{spec}': unknown MoRA type '{parts[2]}' (known: 0, 1, 2, 3, 4, 6).");
            type = (Adapters.MoraType)t;
        }
        return new MethodSpec(kind, rank, type);
    }

    /// <summary>Parses a comma-separated list; an empty list or a repeated method is an error.</summary>
    public static IReadOnlyList<MethodSpec> ParseList(string specs)
    {
        var list = specs.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Parse).ToList();
        if (list.Count == 0) throw new ArgumentException("--methods: no method given (e.g. fft,lora:8,mora:8:1,mora:8:6).");
        var dup = list.GroupBy(m => m.Spec).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new ArgumentException($"--methods: '{dup.Key}' is listed twice.");
        return list;
    }

    /// <summary>
    /// Attaches this method's adapters to <paramref name="model"/> (PEFT's defaults otherwise: <see cref="AdapterConfig"/>)
    /// and freezes the rest; null for FFT, where everything trains. Call before moving the model to its device.
    /// </summary>
    public AdaptedModel? Attach(Nn.TransformerModel model, ulong seed, string[]? targets = null, bool trainEmbeddingsAndHead = false)
    {
        if (Kind == MethodKind.Fft) return null;
        var config = new AdapterConfig
        {
            Method = IsMora ? AdapterMethod.Mora : AdapterMethod.Lora,
            Rank = Rank!.Value,
            MoraType = MoraType ?? Adapters.MoraType.Sharing,
            TrainEmbeddingsAndHead = trainEmbeddingsAndHead,
            Seed = seed,
        };
        return AdaptedModel.Wrap(model, targets == null ? config : config with { TargetModules = targets });
    }

    /// <summary>
    /// Warm-up to <paramref name="lr"/>, cosine decay to a tenth at <paramref name="steps"/>; for ReLoRA and ReMoRA the
    /// rate re-warms over the same warm-up after every restart (the jagged schedule).
    /// </summary>
    public Optim.WarmupCosineLr Schedule(float lr, int warmup, int steps)
    {
        warmup = Math.Min(warmup, steps);
        return new Optim.WarmupCosineLr(lr, warmup, steps, lr * 0.1f, restartWarmup: HasRestarts ? Math.Max(1, warmup) : 0);
    }

    /// <summary>For ReLoRA and ReMoRA, adds the merge-and-restart callback every <paramref name="every"/> steps.</summary>
    public void AddRestarts(Trainer trainer, AdaptedModel? adapted, int every)
    {
        if (adapted != null && HasRestarts) trainer.Callbacks.Add(new AdapterRestarts(adapted, every));
    }

    public override string ToString() => Spec;
}
