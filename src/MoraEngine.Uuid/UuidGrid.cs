using MoraEngine.Training;

namespace MoraEngine.Examples.Uuid;

/// <summary>One cell of the grid: a method fine-tuned at one rate from the base trained at one format rate.</summary>
public sealed record UuidGridEntry(float FormatLr, MethodSpec Method, float Lr, double CharAccuracy, double ExactMatch, double Loss);

/// <summary>
/// The learning-rate grid behind the demo's settings, run the same way for every method: each format-stage rate
/// gives a base model; every method is fine-tuned from it at every rate (first seed, the final run's steps and
/// batch). Rule: each method's best rate is the one with the highest final character accuracy (lower final loss
/// breaks ties); the format rate is the one whose bases give the highest mean, over methods, of those best
/// accuracies (the first listed breaks ties). No method is favoured: each gets its own best rate from the same base.
/// </summary>
public sealed record UuidGrid(float[] FormatLrs, float[] Lrs, ulong Seed, IReadOnlyList<UuidGridEntry> Entries)
{
    /// <summary>The rule, as results.json states it.</summary>
    public const string Rule =
        "per method, the rate with the highest final char accuracy (lower loss breaks ties); the format rate whose base gives the highest mean over methods of those best accuracies (first listed breaks ties)";

    /// <summary>A method's best entry from the base of <paramref name="formatLr"/>.</summary>
    public UuidGridEntry Best(float formatLr, MethodSpec method) =>
        Entries.Where(e => e.FormatLr == formatLr && e.Method.Spec == method.Spec)
            .OrderByDescending(e => e.CharAccuracy).ThenBy(e => e.Loss).First();

    /// <summary>Mean over methods of their best accuracy from the base of <paramref name="formatLr"/>.</summary>
    public double Score(float formatLr) =>
        Entries.Where(e => e.FormatLr == formatLr).Select(e => e.Method.Spec).Distinct()
            .Select(spec => Best(formatLr, Entries.First(e => e.Method.Spec == spec).Method).CharAccuracy).Average();

    public float ChosenFormatLr
    {
        get
        {
            var best = FormatLrs[0];
            foreach (var f in FormatLrs.Skip(1))
                if (Score(f) > Score(best)) best = f;
            return best;
        }
    }

    /// <summary>Each method's chosen rate (by spec), from the chosen base.</summary>
    public IReadOnlyDictionary<string, float> ChosenLrs =>
        Entries.Select(e => e.Method).DistinctBy(m => m.Spec).ToDictionary(m => m.Spec, m => Best(ChosenFormatLr, m).Lr);

    /// <summary>The settings of the final runs: the chosen format rate and per-method rates, no further grid.</summary>
    public UuidSettings Apply(UuidSettings s) => s with
    {
        FormatLr = ChosenFormatLr,
        LearningRates = UuidLearningRates.ForSpecs(ChosenLrs),
        GridFormatLrs = null,
    };
}
