using MoraEngine.Examples.Paper;
using Xunit;

namespace MoraEngine.Tests.Paper;

/// <summary>The decision rules of the paper suite on fixed numbers.</summary>
public class VerdictTests
{
    private static Dictionary<string, IReadOnlyList<double>> V(params (string Name, double[] Values)[] xs) =>
        xs.ToDictionary(x => x.Name, x => (IReadOnlyList<double>)x.Values);

    [Fact]
    public void TCritical_MatchesStudentsTable()
    {
        Assert.Equal(12.706, PairedDifference.TCritical(1));
        Assert.Equal(4.303, PairedDifference.TCritical(2));
        Assert.Equal(2.262, PairedDifference.TCritical(9));
        Assert.Equal(1.96, PairedDifference.TCritical(500));
        Assert.Throws<ArgumentOutOfRangeException>(() => PairedDifference.TCritical(0));
    }

    [Fact]
    public void PairedDifference_IsTheMeanOfPerSeedDifferences_WithItsStandardError()
    {
        var p = PairedDifference.Of("a", "b", [1.00, 1.10, 1.20], [1.10, 1.22, 1.29]);
        // Differences 0.10, 0.12, 0.09: mean 0.10333, sample std 0.015275, se 0.0088192, t 11.717.
        Assert.Equal(0.103333, p.Mean, 5);
        Assert.Equal(0.0088192, p.StdError, 6);
        Assert.Equal(11.717, p.T, 2);
        Assert.True(p.SignificantlyPositive);
        Assert.False(p.SignificantlyNegative);
        var (lo, hi) = p.Interval;
        Assert.Equal(0.103333 - 4.303 * 0.0088192, lo, 5);
        Assert.Equal(0.103333 + 4.303 * 0.0088192, hi, 5);
        Assert.Throws<ArgumentException>(() => PairedDifference.Of("a", "b", [1.0], [1.0, 2.0]));
    }

    [Fact]
    public void PairedDifference_OneSeedIsNeverSignificant_ZeroSpreadIsWhenNotZero()
    {
        Assert.False(PairedDifference.Of("a", "b", [1.0], [5.0]).SignificantlyPositive);
        Assert.True(PairedDifference.Of("a", "b", [8, 8, 8], [40, 40, 40]).SignificantlyPositive);
        var same = PairedDifference.Of("a", "b", [1, 2, 3], [1, 2, 3]);
        Assert.False(same.SignificantlyPositive || same.SignificantlyNegative);
        // A diverged run (infinite loss) drops out of the pairing.
        Assert.Equal(2, PairedDifference.Of("a", "b", [1, 2, double.PositiveInfinity], [1.5, 2.5, 3]).N);
    }

    [Fact]
    public void Order_SupportedOnlyWhenEveryPairIsSignificantInTheClaimedDirection()
    {
        string[] order = ["remora", "mora", "relora", "lora"];
        var clear = V(("remora", [1.00, 1.10, 1.20]), ("mora", [1.10, 1.22, 1.29]), ("relora", [1.20, 1.31, 1.40]), ("lora", [1.30, 1.42, 1.49]));
        Assert.Equal(Verdict.Supported, Verdicts.Order(order, clear).Verdict);

        // MoRA clearly worse than ReLoRA: the claim's order is contradicted.
        var reversed = V(("remora", [1.00, 1.10, 1.20]), ("mora", [1.10, 1.22, 1.29]), ("relora", [1.00, 1.12, 1.18]), ("lora", [1.30, 1.42, 1.49]));
        var (v, pairs) = Verdicts.Order(order, reversed);
        Assert.Equal(Verdict.NotSupported, v);
        Assert.True(pairs[1].SignificantlyNegative);

        // One pair within the spread: inconclusive.
        var noisy = V(("remora", [1.00, 1.10, 1.20]), ("mora", [1.10, 1.05, 1.28]), ("relora", [1.20, 1.31, 1.40]), ("lora", [1.30, 1.42, 1.49]));
        Assert.Equal(Verdict.Inconclusive, Verdicts.Order(order, noisy).Verdict);

        // One seed: no spread to judge by.
        var single = V(("remora", [1.0]), ("mora", [2.0]), ("relora", [3.0]), ("lora", [4.0]));
        Assert.Equal(Verdict.Inconclusive, Verdicts.Order(order, single).Verdict);
        Assert.Throws<ArgumentException>(() => Verdicts.Order(["mora"], single));
    }

    [Fact]
    public void Comparable_IsAnEquivalenceTest_AndAnUnlearnedTaskIsInconclusive()
    {
        Assert.Equal(Verdict.Supported, Verdicts.Comparable("lora", "mora", [0.50, 0.60, 0.70], [0.51, 0.59, 0.70], 0.05, 0.05).Verdict);
        Assert.Equal(Verdict.NotSupported, Verdicts.Comparable("lora", "mora", [0.20, 0.30, 0.25], [0.50, 0.62, 0.56], 0.05, 0.05).Verdict);
        Assert.Equal(Verdict.NotSupported, Verdicts.Comparable("lora", "mora", [0.50, 0.62, 0.56], [0.20, 0.30, 0.25], 0.05, 0.05).Verdict);
        // Within the margin on average but too noisy to tell.
        Assert.Equal(Verdict.Inconclusive, Verdicts.Comparable("lora", "mora", [0.50, 0.60, 0.70], [0.60, 0.52, 0.71], 0.05, 0.05).Verdict);
        var (v, _, learned) = Verdicts.Comparable("lora", "mora", [0, 0, 0.01], [0, 0.01, 0], 0.05, 0.05);
        Assert.Equal(Verdict.Inconclusive, v);
        Assert.False(learned);
        Assert.Throws<ArgumentOutOfRangeException>(() => Verdicts.Comparable("a", "b", [1], [1], 0, 0));
    }

    [Fact]
    public void FarMore_NeedsSignificantlyMoreAndAtLeastTwice()
    {
        var far = V(("lora", [8, 8, 8]), ("mora", [40, 41, 39]), ("relora", [24, 24, 23]), ("remora", [90, 95, 92]));
        Assert.Equal(Verdict.Supported, Verdicts.FarMore([("lora", "mora"), ("relora", "remora")], far).Verdict);

        var merelyMore = V(("lora", [8, 8, 8]), ("mora", [40, 41, 39]), ("relora", [20, 22, 21]), ("remora", [25, 26, 24]));
        Assert.Equal(Verdict.NotSupported, Verdicts.FarMore([("lora", "mora"), ("relora", "remora")], merelyMore).Verdict);

        var fewer = V(("lora", [8, 8, 8]), ("mora", [4, 5, 4]));
        Assert.Equal(Verdict.NotSupported, Verdicts.FarMore([("lora", "mora")], fewer).Verdict);

        var unclear = V(("lora", [8, 8, 8]), ("mora", [30, 5, 40]));
        Assert.Equal(Verdict.Inconclusive, Verdicts.FarMore([("lora", "mora")], unclear).Verdict);
    }

    [Fact]
    public void All_AndText()
    {
        Assert.Equal(Verdict.Supported, Verdicts.All([Verdict.Supported, Verdict.Supported]));
        Assert.Equal(Verdict.Inconclusive, Verdicts.All([Verdict.Supported, Verdict.Inconclusive]));
        Assert.Equal(Verdict.NotSupported, Verdicts.All([Verdict.Inconclusive, Verdict.NotSupported]));
        Assert.Equal(Verdict.Inconclusive, Verdicts.All([]));
        Assert.Equal("not supported", Verdicts.Text(Verdict.NotSupported));
        Assert.Equal("1.000 ± 0.100", Spread.Of([0.9, 1.0, 1.1]).Format());
        Assert.Equal("2.000", Spread.Of([2.0]).Format());
        Assert.Equal("n/a", Spread.Of([double.NaN]).Format());
    }
}
