using System.Globalization;
using System.Text;

namespace MoraEngine.Examples.Paper;

/// <summary>The claims of the MoRA paper the suite tests, and how each verdict follows from the runs.</summary>
public static class PaperClaims
{
    public const string PretrainClaim =
        "Pretraining from scratch with a frozen random base and equal trainable parameters: validation loss orders ReMoRA < MoRA < ReLoRA < LoRA (full training as the reference).";

    public const string ContinualClaim =
        "Continual pretraining on a new domain: MoRA lowers the domain's held-out loss more than LoRA at the same parameters.";

    public const string TasksClaim =
        "Instruction-tuning-like and reasoning-like tasks: MoRA is comparable to LoRA (not better).";

    public const string SpectraClaim =
        "ΔW learned by MoRA and ReMoRA has far more significant singular values (above 1% of the largest) than LoRA's and ReLoRA's.";

    /// <summary>The verdicts of an experiment's claim from its final runs.</summary>
    public static IReadOnlyList<ClaimResult> Evaluate(PaperResults r)
    {
        var s = r.Settings;
        string Name(string kind) => s.Methods.First(m => m.Name == kind).Label;
        IReadOnlyList<double> Values(string setup, string kind, Func<PaperRun, double> pick) => r.Final(setup, kind).Select(pick).ToList();
        switch (s.Experiment)
        {
            case PaperExperiment.Pretrain:
            {
                var order = new[] { "remora", "mora", "relora", "lora" };
                var values = order.ToDictionary(k => k, k => Values("pretrain", k, x => x.FinalValLoss));
                var (verdict, pairs) = Verdicts.Order(order, values);
                var sb = new StringBuilder("Final validation loss (nats/byte, mean ± std over seeds): ");
                sb.AppendJoin(", ", s.Methods.Select(m => $"{m.Label} {Spread.Of(Values("pretrain", m.Name, x => x.FinalValLoss)).Format("F4")}"));
                sb.Append(". Pairs (claimed better first): ").AppendJoin("; ", pairs.Select(p => Relabel(p, Name).Describe()));
                return [new ClaimResult("pretrain", PretrainClaim, verdict, sb.Append('.').ToString(), Verdicts.OrderRule)];
            }
            case PaperExperiment.Spectra:
            {
                var kinds = new[] { "lora", "mora", "relora", "remora" };
                var values = kinds.ToDictionary(k => k, k => Values("pretrain", k, x => x.Spectra?.MeanCount ?? double.NaN));
                var (verdict, pairs) = Verdicts.FarMore([("lora", "mora"), ("relora", "remora")], values);
                var sb = new StringBuilder("Significant singular values per layer of ΔW (mean over layers; mean ± std over seeds): ");
                sb.AppendJoin(", ", kinds.Select(k => $"{Name(k)} {Spread.Of(values[k]).Format("F1")}"));
                sb.Append(". ").AppendJoin("; ", pairs.Select(p => Relabel(p, Name).Describe("F2") + string.Create(CultureInfo.InvariantCulture, $", ratio {p.MeanB / p.MeanA:F2}×")));
                return [new ClaimResult("spectra", SpectraClaim, verdict, sb.Append('.').ToString(), Verdicts.MoreRule)];
            }
            case PaperExperiment.Continual:
            {
                var values = new[] { "mora", "lora" }.ToDictionary(k => k, k => Values("continual", k, x => x.FinalValLoss));
                var (verdict, pairs) = Verdicts.Order(["mora", "lora"], values);
                var sb = new StringBuilder("Domain held-out loss (nats/byte, mean ± std over seeds): ");
                sb.AppendJoin(", ", s.Methods.Select(m => $"{m.Label} {Spread.Of(Values("continual", m.Name, x => x.FinalValLoss)).Format("F4")}"));
                sb.Append(". ").Append(Relabel(pairs[0], Name).Describe()).Append(". Cloze accuracy on held-out phrasings: ");
                sb.AppendJoin(", ", s.Methods.Select(m => $"{m.Label} {Percent(Values("continual", m.Name, x => x.Metrics.GetValueOrDefault("cloze_accuracy", double.NaN)))}"));
                var chance = r.Runs.FirstOrDefault(x => x.Setup == "continual")?.Metrics.GetValueOrDefault("cloze_chance", double.NaN) ?? double.NaN;
                sb.Append(string.Create(CultureInfo.InvariantCulture, $" (chance {chance * 100:F1}%)"));
                if (r.Base is { } b)
                {
                    sb.Append(string.Create(CultureInfo.InvariantCulture, $". Forgetting (general validation loss after − before, base {b.GeneralValLoss:F4}): "));
                    sb.AppendJoin(", ", s.Methods.Select(m => $"{m.Label} {Signed(Spread.Of(Values("continual", m.Name, x => x.Metrics.GetValueOrDefault("forgetting", double.NaN))))}"));
                }
                return [new ClaimResult("continual", ContinualClaim, verdict, sb.Append('.').ToString(), Verdicts.OrderRule + " Here the order is MoRA < LoRA in domain held-out loss.")];
            }
            default:
            {
                var verdicts = new List<Verdict>();
                var sb = new StringBuilder();
                foreach (var setup in r.Setups)
                {
                    var a = Values(setup, "lora", x => x.Metrics.GetValueOrDefault("accuracy", double.NaN));
                    var b = Values(setup, "mora", x => x.Metrics.GetValueOrDefault("accuracy", double.NaN));
                    var (v, pair, learned) = Verdicts.Comparable("lora", "mora", a, b, s.Margin, TaskFloor);
                    verdicts.Add(v);
                    if (sb.Length > 0) sb.Append(' ');
                    sb.Append(string.Create(CultureInfo.InvariantCulture, $"{setup[(setup.IndexOf(':') + 1)..]}: exact-match accuracy "));
                    sb.AppendJoin(", ", s.Methods.Select(m => $"{m.Label} {Percent(Values(setup, m.Name, x => x.Metrics.GetValueOrDefault("accuracy", double.NaN)))}"));
                    var (lo, hi) = pair.Interval;
                    sb.Append(string.Create(CultureInfo.InvariantCulture,
                        $"; MoRA − LoRA {pair.Mean * 100:+0.0;-0.0;0.0} points, 95% interval [{lo * 100:F1}, {hi * 100:F1}] against ±{s.Margin * 100:F0}"));
                    sb.Append(learned ? $" → {Verdicts.Text(v)}." : $" → inconclusive: neither method exceeds {TaskFloor * 100:F0}% (the task is not learned at this size).");
                }
                return [new ClaimResult("tasks", TasksClaim, Verdicts.All(verdicts), sb.ToString(), Verdicts.EquivalenceRule)];
            }
        }
    }

    /// <summary>Accuracy both methods must exceed (on average) for a task to count as learned.</summary>
    public const double TaskFloor = 0.05;

    private static PairedDifference Relabel(PairedDifference p, Func<string, string> name) => p with { A = name(p.A), B = name(p.B) };

    private static string Percent(IReadOnlyList<double> values)
    {
        var sp = Spread.Of(values.Select(v => v * 100).ToList());
        return sp.Format("F1") + "%";
    }

    private static string Signed(Spread sp) =>
        sp.N == 0 ? "n/a" : string.Create(CultureInfo.InvariantCulture, $"{sp.Mean:+0.0000;-0.0000;0.0000}") + (sp.N > 1 ? string.Create(CultureInfo.InvariantCulture, $" ± {sp.Std:F4}") : "");
}
