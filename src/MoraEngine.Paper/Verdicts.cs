using System.Globalization;

namespace MoraEngine.Examples.Paper;

/// <summary>The verdict on a claim at this scale.</summary>
public enum Verdict
{
    Supported,
    NotSupported,
    /// <summary>The differences are within the seed-to-seed spread (or there is no spread to judge them by).</summary>
    Inconclusive,
}

/// <summary>Mean, sample standard deviation and range of a few numbers (one per seed).</summary>
public sealed record Spread(double Mean, double Std, double Min, double Max, int N)
{
    public static Spread Of(IReadOnlyList<double> values)
    {
        var finite = values.Where(double.IsFinite).ToArray();
        if (finite.Length == 0) return new Spread(double.NaN, double.NaN, double.NaN, double.NaN, 0);
        var mean = finite.Average();
        var std = finite.Length > 1 ? Math.Sqrt(finite.Sum(v => (v - mean) * (v - mean)) / (finite.Length - 1)) : 0;
        return new Spread(mean, std, finite.Min(), finite.Max(), finite.Length);
    }

    /// <summary><c>1.234 ± 0.010</c> (the ± part only with two or more values).</summary>
    public string Format(string format = "F3") =>
        N == 0 ? "n/a" : N == 1 ? Mean.ToString(format, CultureInfo.InvariantCulture)
            : $"{Mean.ToString(format, CultureInfo.InvariantCulture)} ± {Std.ToString(format, CultureInfo.InvariantCulture)}";
}

/// <summary>
/// A paired comparison of two methods over the same seeds (same data, base and order per seed): the mean of the
/// per-seed differences <c>B − A</c>, its standard error and Student's t, and whether it is significant at the
/// two-sided 5% level (|t| above the t distribution's 97.5% point for n − 1 degrees of freedom). One seed has no
/// spread and is never significant; differences that are identical on every seed (zero spread) are significant
/// when they are not zero.
/// </summary>
public sealed record PairedDifference(string A, string B, double MeanA, double MeanB, double Mean, double StdError, double T, int N, double Critical)
{
    public static PairedDifference Of(string a, string b, IReadOnlyList<double> valuesA, IReadOnlyList<double> valuesB)
    {
        if (valuesA.Count != valuesB.Count)
            throw new ArgumentException($"PairedDifference: {a} has {valuesA.Count} values but {b} has {valuesB.Count}; the comparison is paired by seed.");
        var diffs = new List<double>();
        for (var i = 0; i < valuesA.Count; i++)
            if (double.IsFinite(valuesA[i]) && double.IsFinite(valuesB[i])) diffs.Add(valuesB[i] - valuesA[i]);
        var n = diffs.Count;
        var mean = n == 0 ? double.NaN : diffs.Average();
        var se = n > 1 ? Math.Sqrt(diffs.Sum(d => (d - mean) * (d - mean)) / (n - 1) / n) : double.NaN;
        var t = n < 2 ? double.NaN : se > 0 ? mean / se : mean == 0 ? 0 : double.PositiveInfinity * Math.Sign(mean);
        return new PairedDifference(a, b, Spread.Of(valuesA).Mean, Spread.Of(valuesB).Mean, mean, se, t, n, n > 1 ? TCritical(n - 1) : double.NaN);
    }

    /// <summary>True when B − A is significantly above zero.</summary>
    public bool SignificantlyPositive => N > 1 && T > Critical;

    /// <summary>True when B − A is significantly below zero.</summary>
    public bool SignificantlyNegative => N > 1 && T < -Critical;

    /// <summary>The 95% confidence interval of the mean difference (NaN bounds with fewer than two seeds).</summary>
    public (double Low, double High) Interval => N > 1 ? (Mean - Critical * StdError, Mean + Critical * StdError) : (double.NaN, double.NaN);

    /// <summary>Student's t 97.5% quantile (two-sided 5%) for <paramref name="df"/> degrees of freedom.</summary>
    public static double TCritical(int df)
    {
        if (df < 1) throw new ArgumentOutOfRangeException(nameof(df), $"TCritical: degrees of freedom must be ≥ 1, got {df}.");
        double[] table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
            2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042];
        return df <= table.Length ? table[df - 1] : 1.96;
    }

    public string Describe(string format = "F4") =>
        string.Create(CultureInfo.InvariantCulture,
            $"{B} − {A} = {Mean.ToString(format, CultureInfo.InvariantCulture)} (se {(double.IsNaN(StdError) ? "n/a" : StdError.ToString(format, CultureInfo.InvariantCulture))}, t = {(double.IsNaN(T) ? "n/a" : T.ToString("F2", CultureInfo.InvariantCulture))}, n = {N}, critical {(double.IsNaN(Critical) ? "n/a" : Critical.ToString("F2", CultureInfo.InvariantCulture))})");
}

/// <summary>The decision rules behind every verdict, on per-seed numbers alone (no model, no files).</summary>
public static class Verdicts
{
    public const string OrderRule =
        "For a claimed order (lower is better), each adjacent pair is a paired t-test over seeds at the two-sided 5% level. Supported: every pair is significantly in the claimed direction. Not supported: some pair is significantly in the opposite direction. Otherwise inconclusive (within the seed-to-seed spread).";

    public const string EquivalenceRule =
        "'Comparable' means the 95% confidence interval of the paired difference lies within ± the margin. Supported: it does. Not supported: the whole interval lies outside the margin. Otherwise inconclusive. If neither method beats the floor the task is not learned and the verdict is inconclusive.";

    public const string MoreRule =
        "'Far more' means significantly more (paired t-test over seeds, two-sided 5%) and at least twice as many on average. Supported: every pair meets it. Not supported: some pair has significantly fewer, or significantly more but less than twice. Otherwise inconclusive.";

    /// <summary>
    /// A claimed order, best first: <paramref name="order"/>[0] has the lowest value. <paramref name="values"/> maps
    /// each name to its per-seed values (same seeds, same order).
    /// </summary>
    public static (Verdict Verdict, IReadOnlyList<PairedDifference> Pairs) Order(IReadOnlyList<string> order, IReadOnlyDictionary<string, IReadOnlyList<double>> values)
    {
        if (order.Count < 2) throw new ArgumentException("Verdicts.Order: an order needs at least two methods.");
        var pairs = new List<PairedDifference>();
        for (var i = 0; i + 1 < order.Count; i++)
            // B − A with A the better-claimed method: the claim says it is positive.
            pairs.Add(PairedDifference.Of(order[i], order[i + 1], values[order[i]], values[order[i + 1]]));
        var verdict = pairs.Any(p => p.SignificantlyNegative) ? Verdict.NotSupported
            : pairs.All(p => p.SignificantlyPositive) ? Verdict.Supported
            : Verdict.Inconclusive;
        return (verdict, pairs);
    }

    /// <summary>
    /// "B is comparable to A": the 95% interval of the mean paired difference B − A lies within ±<paramref name="margin"/>.
    /// <paramref name="floor"/>: a value both must exceed (on average) for the task to count as learned.
    /// </summary>
    public static (Verdict Verdict, PairedDifference Pair, bool Learned) Comparable(string a, string b, IReadOnlyList<double> valuesA, IReadOnlyList<double> valuesB, double margin, double floor)
    {
        if (!(margin > 0)) throw new ArgumentOutOfRangeException(nameof(margin), $"Verdicts.Comparable: margin must be positive, got {margin}.");
        var pair = PairedDifference.Of(a, b, valuesA, valuesB);
        var learned = pair.MeanA > floor || pair.MeanB > floor;
        if (!learned || pair.N < 2) return (Verdict.Inconclusive, pair, learned);
        var (lo, hi) = pair.Interval;
        var verdict = lo >= -margin && hi <= margin ? Verdict.Supported
            : lo > margin || hi < -margin ? Verdict.NotSupported
            : Verdict.Inconclusive;
        return (verdict, pair, learned);
    }

    /// <summary>
    /// "Each B has far more than its A": for every (A, B) pair, B − A significantly positive and mean B ≥ 2 × mean A.
    /// </summary>
    public static (Verdict Verdict, IReadOnlyList<PairedDifference> Pairs) FarMore(IReadOnlyList<(string A, string B)> pairs, IReadOnlyDictionary<string, IReadOnlyList<double>> values)
    {
        var list = pairs.Select(p => PairedDifference.Of(p.A, p.B, values[p.A], values[p.B])).ToList();
        static bool Far(PairedDifference p) => p.SignificantlyPositive && p.MeanB >= 2 * p.MeanA;
        var verdict = list.Any(p => p.SignificantlyNegative || (p.SignificantlyPositive && !Far(p))) ? Verdict.NotSupported
            : list.All(Far) ? Verdict.Supported
            : Verdict.Inconclusive;
        return (verdict, list);
    }

    /// <summary>Combines sub-verdicts: supported only if all are; not supported if any is; else inconclusive.</summary>
    public static Verdict All(IEnumerable<Verdict> verdicts)
    {
        var list = verdicts.ToList();
        return list.Contains(Verdict.NotSupported) ? Verdict.NotSupported
            : list.Count > 0 && list.All(v => v == Verdict.Supported) ? Verdict.Supported
            : Verdict.Inconclusive;
    }

    /// <summary>results.json's spelling: supported, not supported, inconclusive.</summary>
    public static string Text(Verdict v) => v switch
    {
        Verdict.Supported => "supported",
        Verdict.NotSupported => "not supported",
        _ => "inconclusive",
    };
}
