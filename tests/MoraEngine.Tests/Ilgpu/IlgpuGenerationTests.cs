using MoraEngine.Generation;
using MoraEngine.IO;
using MoraEngine.Tests.HfModels;
using Xunit;

namespace MoraEngine.Tests.Ilgpu;

/// <summary>KV-cache generation on ILGPU's CPU accelerator (the CUDA kernels' code path) matches the CPU backend.</summary>
[Trait("Backend", "Ilgpu")]
[Collection("Ilgpu")]
public class IlgpuGenerationTests
{
    [Theory]
    [InlineData("gpt2-tiny")]
    [InlineData("llama-tiny-gqa")]
    public void CachedGeneration_MatchesTheCpu(string fixture)
    {
        var r = HfFixtures.Load(fixture);
        var cpu = HuggingFace.Load(HfFixtures.Dir(fixture));
        var dev = HuggingFace.Load(HfFixtures.Dir(fixture));
        dev.To(IlgpuFixture.Device);
        var a = new TextGenerator(cpu);
        var b = new TextGenerator(dev);
        var la = a.Prefill(r.GreedyPrompt).ToArray();
        var lb = b.Prefill(r.GreedyPrompt).ToArray();
        for (var step = 0; step < 6; step++)
        {
            for (var i = 0; i < la.Length; i++)
                Assert.True(MathF.Abs(la[i] - lb[i]) <= 1e-5f, $"{fixture} step {step} logit {i}: cpu {la[i]} vs ilgpu {lb[i]}");
            var next = r.GreedyIds[step];
            la = a.Step(next).ToArray();
            lb = b.Step(next).ToArray();
        }
        Assert.Equal(r.GreedyIds, new TextGenerator(dev).Generate(r.GreedyPrompt, new GenerationOptions { MaxNewTokens = r.GreedyIds.Length, EosTokenId = -1 }).ToArray());
    }
}
