using System.Text.Json.Nodes;
using MoraEngine.Parity;
using Xunit;

namespace MoraEngine.Tests.Parity;

/// <summary>
/// The engine against PyTorch without Python: each fixture holds what bench/parity/reference.py computed for a small
/// case (every method on the UUID GPT-2 model and on a LLaMA-style model, restarts inside the window): the losses of
/// 20 steps and, per trainable tensor, the step-0 gradient's norm and its projection on a fixed probe vector. The
/// engine reruns the case from the same seeds and must agree to float32 drift.
/// </summary>
public class ParityFixtureTests
{
    private static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "Parity", "Fixtures");

    private static string[] FixtureNames() =>
        Directory.GetFiles(FixtureDir, "*.json").Select(f => Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal).ToArray();

    public static TheoryData<string> Fixtures() => new(FixtureNames());

    [Fact]
    public void EveryMethodAndArchitectureHasAFixture()
    {
        var names = FixtureNames().ToHashSet();
        foreach (var arch in new[] { "uuid", "llama" })
            foreach (var m in new[] { "fft", "lora", "mora-type1", "mora-type6", "relora", "remora-type1" })
                Assert.Contains($"{arch}-{m}", names);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Engine_MatchesPyTorch(string name)
    {
        var fixture = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDir, name + ".json")))!;
        var args = fixture["args"]!.AsArray().Select(a => a!.GetValue<string>()).ToArray();
        var (c, _, _) = ParityCase.FromArgs(args);
        var r = c.Run(null);

        var losses = fixture["losses"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
        Assert.Equal(losses.Length, r.Losses.Length);
        var (early, all, worst) = ParityReport.LossDifferences(r.Losses, losses, 20);
        Assert.True(early <= 1e-4 && all <= 1e-3, $"{name}: loss differs from PyTorch's by {all:e2} (relative) at step {worst}: {r.Losses[worst]} vs {losses[worst]}");
        var lrs = fixture["lrs"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        for (var i = 0; i < lrs.Length; i++)
            Assert.True(Math.Abs(r.LearningRates[i] - lrs[i]) <= 1e-6 * lrs[i], $"{name}: learning rate at step {i} is {r.LearningRates[i]}, PyTorch's {lrs[i]}");

        var grads = fixture["step0_gradients"]!.AsObject();
        var engine = r.Gradients.Where(g => g.Key.StartsWith("step0.", StringComparison.Ordinal)).ToDictionary(g => g.Key["step0.".Length..], g => g.Value);
        Assert.Equal(grads.Select(g => g.Key).Order(StringComparer.Ordinal), engine.Keys.Order(StringComparer.Ordinal));
        foreach (var (tensor, expected) in grads)
        {
            var g = engine[tensor];
            double norm = 0, probe = 0, probeNorm = 0;
            for (var i = 0; i < g.Length; i++)
            {
                var p = Math.Cos(0.7 * i);
                norm += (double)g[i] * g[i];
                probe += g[i] * p;
                probeNorm += p * p;
            }
            norm = Math.Sqrt(norm);
            var refNorm = expected!["norm"]!.GetValue<double>();
            var refProbe = expected["probe"]!.GetValue<double>();
            Assert.True(Math.Abs(norm - refNorm) <= 1e-4 * refNorm, $"{name}: step-0 gradient of {tensor} has norm {norm:e6}, PyTorch's {refNorm:e6}");
            Assert.True(Math.Abs(probe - refProbe) <= 1e-4 * refNorm * Math.Sqrt(probeNorm),
                $"{name}: step-0 gradient of {tensor} points elsewhere: probe {probe:e6}, PyTorch's {refProbe:e6}");
        }
    }

    [Fact]
    public void BadCases_AreErrorsNamingTheOption()
    {
        static string Error(params string[] args) => Assert.Throws<ArgumentException>(() => ParityCase.FromArgs(args)).Message;
        Assert.Contains("--bogus", Error("--bogus"));
        Assert.Contains("dora", Error("--method", "dora"));
        Assert.Contains("--steps", Error("--steps", "many"));
        Assert.Contains("--steps", Error("--steps", "0"));
        Assert.Contains("--lr", Error("--lr", "NaN"));
        Assert.Contains("--mora-type", Error("--method", "mora", "--mora-type", "5"));
        Assert.Contains("remora", Error("--method", "remora", "--mora-type", "6"));
        Assert.Contains("--grad-steps", Error("--grad-steps", "0,x"));
        Assert.Contains("--out", Error("--out"));
        Assert.Contains("gpt3", Error("--arch", "gpt3"));
        var missing = Directory.CreateTempSubdirectory("mora-parity").FullName;
        try
        {
            Assert.Contains("engine.json", Assert.Throws<FileNotFoundException>(() => ParityReport.Compare(missing)).Message);
        }
        finally
        {
            Directory.Delete(missing, true);
        }
    }

    [Fact]
    public void Differences_AreRelativePerTensor_AndZeroOnlyWhenBothAreZero()
    {
        var (max, worst) = ParityReport.GradDifferences(
            new Dictionary<string, float[]> { ["a"] = [1f, 2f], ["z"] = [0f, 0f] },
            new Dictionary<string, float[]> { ["a"] = [1f, 2.001f], ["z"] = [0f, 0f] });
        Assert.Equal("a", worst);
        Assert.Equal(0.001 / Math.Sqrt(1 + 2.001 * 2.001), max, 6);
        Assert.Equal(double.PositiveInfinity, ParityReport.GradDifferences(
            new Dictionary<string, float[]> { ["z"] = [1e-9f] }, new Dictionary<string, float[]> { ["z"] = [0f] }).Max);
        Assert.Throws<InvalidDataException>(() => ParityReport.GradDifferences(
            new Dictionary<string, float[]> { ["a"] = [1f] }, new Dictionary<string, float[]> { ["b"] = [1f] }));
        var (early, all, step) = ParityReport.LossDifferences([1f, 2f, 3f], [1f, 2f, 3.3f], 2);
        Assert.Equal(0, early);
        Assert.Equal(0.3 / 3.3, all, 6);
        Assert.Equal(2, step);
        Assert.Equal(1, ParityReport.FirstDeparture([1f, 2.1f, 3f], [1f, 2f, 3f], 1e-3));
        Assert.Equal(3, ParityReport.FirstDeparture([1f, 2f, 3f], [1f, 2f, 3f], 1e-3));
    }
}
