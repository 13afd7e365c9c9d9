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
}
