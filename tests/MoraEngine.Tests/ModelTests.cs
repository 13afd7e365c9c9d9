using MoraEngine;
using MoraEngine.IO;
using MoraEngine.Nn;
using Xunit;

namespace MoraEngine.Tests;

public class ModelTests
{
    [Fact]
    public void Gpt2_ParameterNames_FollowDottedPaths()
    {
        var m = new TransformerModel(ModelConfig.Tiny);
        var names = m.NamedParameters().Select(p => p.Name).ToHashSet();
        Assert.Contains("tok_emb.weight", names);
        Assert.Contains("pos_emb.weight", names);
        Assert.Contains("blocks.0.attn.q.weight", names);
        Assert.Contains("blocks.1.attn.o.weight", names);
        Assert.Contains("blocks.1.mlp.up.weight", names);
        Assert.Contains("blocks.1.mlp.down.weight", names);
        Assert.Contains("blocks.0.ln1.weight", names);
        Assert.Contains("ln_f.weight", names);
        Assert.Contains("head.weight", names);
        Assert.DoesNotContain(names, n => n.EndsWith(".bias"));
        var c = ModelConfig.Tiny;
        long d = c.DModel, expected = c.VocabSize * d * 2 + c.Context * d + d + c.Layers * (12 * d * d + 2 * d);
        Assert.Equal(expected, m.ParameterCount());
    }

    [Fact]
    public void Llama_HasRmsNormRopeAndSwiGlu()
    {
        var cfg = ModelConfig.SmallLlama with { DModel = 32, Layers = 1, Heads = 2, Context = 8, VocabSize = 16 };
        var m = new TransformerModel(cfg);
        var names = m.NamedParameters().Select(p => p.Name).ToHashSet();
        Assert.Contains("blocks.0.mlp.gate.weight", names);
        Assert.DoesNotContain("pos_emb.weight", names);
        var logits = m.Forward([1, 2, 3, 4, 5, 6], 2, 3);
        Assert.Equal([2, 3, 16], logits.Shape.ToArray());
        Assert.All(logits.ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Forward_IsCausal()
    {
        var m = new TransformerModel(ModelConfig.Tiny);
        var a = m.Forward([1, 2, 3, 4, 5], 1, 5).ToArray();
        var b = m.Forward([1, 2, 3, 9, 9], 1, 5).ToArray();
        var v = ModelConfig.Tiny.VocabSize;
        for (var i = 0; i < 3 * v; i++) Assert.Equal(a[i], b[i]);
        Assert.NotEqual(a[3 * v], b[3 * v]);
    }

    [Fact]
    public void FreezeByPattern_StopsGradients()
    {
        var m = new TransformerModel(ModelConfig.Tiny);
        var n = m.Freeze("blocks.*.attn.*");
        Assert.Equal(ModelConfig.Tiny.Layers * 4, n);
        Assert.False(m.StateDict()["blocks.0.attn.q.weight"].RequiresGrad);
        Assert.True(m.StateDict()["blocks.0.mlp.up.weight"].RequiresGrad);
        var loss = m.Loss([1, 2, 3, 4], [2, 3, 4, 5], 1, 4);
        loss.Backward();
        Assert.Null(m.StateDict()["blocks.0.attn.q.weight"].Grad);
        Assert.NotNull(m.StateDict()["blocks.0.mlp.up.weight"].Grad);
    }

    [Fact]
    public void Config_Validation_NamesTheField()
    {
        var ex = Assert.Throws<ArgumentException>(() => new TransformerModel(ModelConfig.Tiny with { Heads = 5 }));
        Assert.Contains("Heads", ex.Message);
        Assert.Throws<ArgumentException>(() => ModelConfig.FromJson("{ not json"));
        var round = ModelConfig.FromJson(ModelConfig.SmallLlama.ToJson());
        Assert.Equal(ModelConfig.SmallLlama, round);
        // A misspelt field is an error naming it, not a silently default model.
        var typo = Assert.Throws<ArgumentException>(() => ModelConfig.FromJson("""{"d_modle": 64}"""));
        Assert.Contains("d_modle", typo.Message);
    }

    [Fact]
    public void Weights_RoundTrip_AndShapeMismatchNamesTensor()
    {
        var dir = Directory.CreateTempSubdirectory("mora-w").FullName;
        try
        {
            var path = Path.Combine(dir, "m.safetensors");
            var a = new TransformerModel(ModelConfig.Tiny, seed: 1);
            ModelIO.SaveWeights(path, a);
            var b = new TransformerModel(ModelConfig.Tiny, seed: 2);
            ModelIO.LoadWeights(path, b);
            Assert.Equal(a.Forward([1, 2, 3], 1, 3).ToArray(), b.Forward([1, 2, 3], 1, 3).ToArray());

            var wide = new TransformerModel(ModelConfig.Tiny with { DModel = 32 });
            var ex = Assert.Throws<SafetensorsException>(() => ModelIO.LoadWeights(path, wide));
            Assert.Contains("tok_emb.weight", ex.Message);
            Assert.Contains(path, ex.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
