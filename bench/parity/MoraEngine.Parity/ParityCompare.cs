using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using MoraEngine.IO;

namespace MoraEngine.Parity;

/// <summary>The targets of a parity check (float32 drift allowed for, nothing more).</summary>
public sealed record ParityTargets
{
    /// <summary>Per tensor: ‖g_engine − g_ref‖ / ‖g_ref‖ at every recorded step.</summary>
    public double GradRelative { get; init; } = 1e-4;

    /// <summary>Relative loss difference over the first <see cref="EarlySteps"/> steps.</summary>
    public double EarlyLossRelative { get; init; } = 1e-4;

    public int EarlySteps { get; init; } = 20;

    /// <summary>Relative loss difference over every step after those.</summary>
    public double LossRelative { get; init; } = 1e-3;
}

/// <summary>Differences between the engine's run of a case and a reference's run of the same case.</summary>
public sealed record ParityReport(
    string Case,
    int Steps,
    double MaxGradRelative,
    string WorstGradTensor,
    double MaxEarlyLossRelative,
    double MaxLossRelative,
    int WorstLossStep,
    double MaxLrRelative,
    double? EngineAccuracy,
    double? ReferenceAccuracy,
    bool Passed,
    int? EngineLeavesDouble = null,
    int? ReferenceLeavesDouble = null,
    string Verdict = "")
{
    public static string Header =>
        "| case | steps | step-0/1 grads, max rel. (tensor) | loss ≤ 20, max rel. | loss, max rel. (step) | lr | leaves float64 at step: engine / PyTorch f32 | char acc. engine / PyTorch | |\n" +
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |";

    public string Row()
    {
        static string E(double v) => v.ToString("0.0e+0", CultureInfo.InvariantCulture);
        var acc = EngineAccuracy is { } a && ReferenceAccuracy is { } b
            ? $"{a * 100:0.0}% / {b * 100:0.0}%"
            : "–";
        static string S(int? step, int steps) => step is { } v && v < steps ? v.ToString(CultureInfo.InvariantCulture) : "never";
        var f64 = EngineLeavesDouble != null || ReferenceLeavesDouble != null ? $"{S(EngineLeavesDouble, Steps)} / {S(ReferenceLeavesDouble, Steps)}" : "–";
        return $"| {Case} | {Steps} | {E(MaxGradRelative)} ({WorstGradTensor}) | {E(MaxEarlyLossRelative)} | {E(MaxLossRelative)} ({WorstLossStep}) | {E(MaxLrRelative)} | {f64} | {acc} | {Verdict} |";
    }

    /// <summary>Compares DIR/engine.json and engine_grads.safetensors with DIR/torch.json and torch_grads.safetensors.</summary>
    public static ParityReport Compare(string dir, ParityTargets? targets = null)
    {
        targets ??= new ParityTargets();
        var engine = ReadJson(Path.Combine(dir, "engine.json"));
        var reference = ReadJson(Path.Combine(dir, "torch.json"));
        var name = ReadJson(Path.Combine(dir, "case.json"))["name"]!.GetValue<string>();
        var el = Floats(engine["losses"]!);
        var rl = Floats(reference["losses"]!);
        if (el.Length != rl.Length)
            throw new InvalidDataException($"{dir}: the engine ran {el.Length} steps, the reference {rl.Length}.");
        var (early, late, worstStep) = LossDifferences(el, rl, targets.EarlySteps);
        var elr = Floats(engine["lrs"]!);
        var rlr = Floats(reference["lrs"]!);
        var lrRel = 0.0;
        for (var i = 0; i < Math.Min(elr.Length, rlr.Length); i++)
            lrRel = Math.Max(lrRel, Math.Abs(elr[i] - rlr[i]) / Math.Max(1e-30, Math.Abs(rlr[i])));

        var eg = Safetensors.Load(Path.Combine(dir, "engine_grads.safetensors")).Tensors;
        var rg = Safetensors.Load(Path.Combine(dir, "torch_grads.safetensors")).Tensors;
        var (gradRel, worst) = GradDifferences(eg.ToDictionary(k => k.Key, k => k.Value.Data), rg.ToDictionary(k => k.Key, k => k.Value.Data));
        double? Acc(JsonNode n) => n["final_eval"]?["char_accuracy"]?.GetValue<double>();
        var strict = gradRel <= targets.GradRelative && early <= targets.EarlyLossRelative && late <= targets.LossRelative && lrRel <= 1e-5;
        // With a float64 run of the reference beside it: the step at which each float32 run's loss leaves the float64
        // run's by more than the late target. Training is chaotic (Adam turns rounding noise in near-zero gradient
        // components into full-size steps), so after that step both float32 runs wander; what an implementation
        // controls is how long it stays on the exact trajectory. A case that misses the late target passes as float32
        // drift when the engine stays on it at least 90% as long as PyTorch's float32 run.
        int? engineLeaves = null, referenceLeaves = null;
        var verdict = strict ? "pass" : "FAIL";
        var doublePath = Path.Combine(dir, "torch64.json");
        if (File.Exists(doublePath))
        {
            var dl = Floats(ReadJson(doublePath)["losses"]!);
            engineLeaves = FirstDeparture(el, dl, targets.LossRelative);
            referenceLeaves = FirstDeparture(rl, dl, targets.LossRelative);
            if (!strict && gradRel <= targets.GradRelative && early <= targets.EarlyLossRelative && lrRel <= 1e-5
                && referenceLeaves < el.Length && engineLeaves >= 0.9 * referenceLeaves)
                verdict = "pass (float32 drift)";
        }
        return new ParityReport(name, el.Length, gradRel, worst, early, late, worstStep, lrRel, Acc(engine), Acc(reference),
            verdict.StartsWith("pass", StringComparison.Ordinal), engineLeaves, referenceLeaves, verdict);
    }

    /// <summary>Max relative loss difference over the first <paramref name="early"/> steps and over all steps.</summary>
    public static (double Early, double All, int WorstStep) LossDifferences(float[] engine, float[] reference, int early)
    {
        double e = 0, a = 0;
        var worst = 0;
        for (var i = 0; i < engine.Length; i++)
        {
            var rel = Math.Abs(engine[i] - reference[i]) / Math.Max(1e-12, Math.Abs(reference[i]));
            if (double.IsNaN(rel)) rel = double.PositiveInfinity;
            if (i < early) e = Math.Max(e, rel);
            if (rel > a)
            {
                a = rel;
                worst = i;
            }
        }
        return (e, a, worst);
    }

    /// <summary>The first step whose relative loss difference exceeds <paramref name="tolerance"/>; the length if none does.</summary>
    public static int FirstDeparture(float[] run, float[] reference, double tolerance)
    {
        for (var i = 0; i < Math.Min(run.Length, reference.Length); i++)
            if (!(Math.Abs(run[i] - reference[i]) <= tolerance * Math.Abs(reference[i]))) return i;
        return Math.Min(run.Length, reference.Length);
    }

    /// <summary>
    /// Per tensor ‖e − r‖ / ‖r‖ (0 when both are zero, as LoRA's A is at step 0 with B = 0); the worst and its name.
    /// Every reference tensor must exist in the engine's set with the same length, and the reverse.
    /// </summary>
    public static (double Max, string Worst) GradDifferences(IReadOnlyDictionary<string, float[]> engine, IReadOnlyDictionary<string, float[]> reference)
    {
        foreach (var k in engine.Keys)
            if (!reference.ContainsKey(k)) throw new InvalidDataException($"gradient '{k}': the engine has it, the reference does not.");
        double max = 0;
        var worst = "";
        foreach (var (k, r) in reference)
        {
            if (!engine.TryGetValue(k, out var e)) throw new InvalidDataException($"gradient '{k}': the reference has it, the engine does not.");
            if (e.Length != r.Length) throw new InvalidDataException($"gradient '{k}': {e.Length} values in the engine, {r.Length} in the reference.");
            double diff = 0, norm = 0;
            for (var i = 0; i < r.Length; i++)
            {
                diff += (double)(e[i] - r[i]) * (e[i] - r[i]);
                norm += (double)r[i] * r[i];
            }
            var rel = norm == 0 ? (diff == 0 ? 0 : double.PositiveInfinity) : Math.Sqrt(diff / norm);
            if (double.IsNaN(rel)) rel = double.PositiveInfinity;
            if (rel >= max)
            {
                max = rel;
                worst = k;
            }
        }
        return (max, worst);
    }

    internal static JsonNode ReadJson(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Parity: {path} is missing.", path);
        return JsonNode.Parse(File.ReadAllText(path, Encoding.UTF8)) ?? throw new InvalidDataException($"{path}: null JSON.");
    }

    internal static float[] Floats(JsonNode n) => n.AsArray().Select(v => v!.GetValue<float>()).ToArray();
}
