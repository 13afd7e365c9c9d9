using System.Text.Json.Nodes;
using MoraEngine.Autograd;
using MoraEngine.Generation;
using MoraEngine.IO;
using MoraEngine.Nn;
using Xunit;

namespace MoraEngine.Tests.HfModels;

/// <summary>
/// HF checkpoints written by nanoGPT (GPT-2) and llama2.c's hf_export (LLaMA) load to the same logits as those
/// reference implementations computed; generation, export and errors on top of them.
/// </summary>
public class HfModelTests
{
    // The fixtures' logits are below 1 in size; a wrong GELU form or RoPE θ moves them by 4e-5 or more.
    private const float LogitTol = 5e-6f;

    public static TheoryData<string> Fixtures() => new(HfFixtures.Names);

    private static float[] Logits(TransformerModel m, int[] ids, int b, int t)
    {
        using var _ = Graph.NoGrad();
        using var scope = MemoryScope.Begin();
        m.Eval();
        return m.Forward(ids, b, t).ToArray();
    }

    private static void Close(float[] want, float[] got, float tol, string what)
    {
        Assert.Equal(want.Length, got.Length);
        var worst = 0f;
        var at = 0;
        for (var i = 0; i < want.Length; i++)
        {
            var d = MathF.Abs(want[i] - got[i]);
            if (!(d <= worst)) { worst = d; at = i; }
        }
        Assert.True(worst <= tol, $"{what}: max |Δ| {worst:G3} at {at} (want {want[at]}, got {got[at]}), tolerance {tol:G3}");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Logits_AndLoss_MatchTheReferenceImplementation(string name)
    {
        var r = HfFixtures.Load(name);
        var m = HuggingFace.Load(HfFixtures.Dir(name));
        Assert.Equal(ModelLayout.HuggingFace, m.Config.Layout);
        Close(r.Logits, Logits(m, r.Ids, r.Batch, r.Time), LogitTol, name);
        using var _ = Graph.NoGrad();
        using var scope = MemoryScope.Begin();
        var targets = new int[r.Ids.Length];
        for (var b = 0; b < r.Batch; b++)
            for (var t = 0; t < r.Time; t++)
                targets[b * r.Time + t] = t + 1 < r.Time ? r.Ids[b * r.Time + t + 1] : -100;
        var loss = m.Loss(r.Ids, targets, r.Batch, r.Time).Item();
        Assert.True(MathF.Abs(loss - r.Loss) <= 1e-5f * r.Loss, $"{name}: loss {loss} vs reference {r.Loss}");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void GreedyGeneration_WithTheCache_GivesTheReferenceIds(string name)
    {
        var r = HfFixtures.Load(name);
        var m = HuggingFace.Load(HfFixtures.Dir(name));
        var gen = new TextGenerator(m);
        var ids = gen.Generate(r.GreedyPrompt, new GenerationOptions { MaxNewTokens = r.GreedyIds.Length, EosTokenId = -1 }).ToArray();
        Assert.Equal(r.GreedyIds, ids);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void CachedSteps_MatchFullRecomputation(string name)
    {
        var r = HfFixtures.Load(name);
        var m = HuggingFace.Load(HfFixtures.Dir(name));
        var gen = new TextGenerator(m);
        var seq = r.Ids.Take(r.Time).ToArray();
        var cached = new List<float[]> { gen.Prefill(seq.AsSpan(0, 3)).ToArray() };
        for (var t = 3; t < seq.Length; t++) cached.Add(gen.Step(seq[t]).ToArray());
        var full = Logits(m, seq, 1, seq.Length);
        var v = m.Config.VocabSize;
        for (var i = 0; i < cached.Count; i++)
            Close(full.AsSpan((2 + i) * v, v).ToArray(), cached[i], 1e-5f, $"{name} position {2 + i}");
        Assert.Equal(seq.Length, gen.Cache.Length);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Export_ThenLoad_GivesIdenticalLogits(string name)
    {
        var r = HfFixtures.Load(name);
        var m = HuggingFace.Load(HfFixtures.Dir(name));
        var dir = Path.Combine(Path.GetTempPath(), "mora-export-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            HuggingFace.Save(m, dir, HfFixtures.Dir(name));
            Assert.True(File.Exists(Path.Combine(dir, "generation_config.json")));
            var back = HuggingFace.Load(dir);
            Assert.Equal(Logits(m, r.Ids, r.Batch, r.Time), Logits(back, r.Ids, r.Batch, r.Time));
            var header = Safetensors.ReadHeader(Path.Combine(dir, HuggingFace.WeightsFileName));
            if (m.Config.Architecture == Architecture.Gpt2)
                Assert.Equal([32, 96], header["transformer.h.0.attn.c_attn.weight"].Shape);   // Conv1D: [in, out]
            Assert.Equal(!m.Config.TieEmbeddings, header.ContainsKey("lm_head.weight"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory]
    [InlineData(Architecture.Gpt2)]
    [InlineData(Architecture.Llama)]
    public void EngineLayoutModel_ConvertsToTheHfLayout_WithTheSameLogits(Architecture arch)
    {
        var cfg = new ModelConfig { Architecture = arch, VocabSize = 40, DModel = 32, Layers = 2, Heads = 4, KvHeads = arch == Architecture.Llama ? 2 : 0, Context = 16 };
        var m = new TransformerModel(cfg, seed: 5);
        var hf = HuggingFace.ToHuggingFaceLayout(m);
        var ids = Enumerable.Range(0, 24).Select(i => i * 7 % 40).ToArray();
        Close(Logits(m, ids, 2, 12), Logits(hf, ids, 2, 12), 1e-6f, arch.ToString());
        if (arch == Architecture.Gpt2) Assert.Contains(hf.NamedParameters(), p => p.Name == "transformer.h.1.attn.c_attn.weight");
        else Assert.Contains(hf.NamedParameters(), p => p.Name == "model.layers.1.self_attn.k_proj.weight" && p.Param.Dim(0) == 16);
    }

    [Fact]
    public void Sampling_IsSeeded_AndRespectsTopK()
    {
        var m = HuggingFace.Load(HfFixtures.Dir("llama-tiny-gqa"));
        var o = new GenerationOptions { MaxNewTokens = 10, Temperature = 1.5f, TopK = 3, Seed = 9, EosTokenId = -1 };
        var a = new TextGenerator(m).Generate([1, 5, 9], o).ToArray();
        var b = new TextGenerator(m).Generate([1, 5, 9], o).ToArray();
        Assert.Equal(a, b);
        var c = new TextGenerator(m).Generate([1, 5, 9], o with { Seed = 10 }).ToArray();
        Assert.NotEqual(a, c);
        // Each sampled token is among the three most likely after its prefix.
        var prefix = new List<int> { 1, 5, 9 };
        foreach (var id in a)
        {
            var logits = Logits(m, prefix.ToArray(), 1, prefix.Count).AsSpan((prefix.Count - 1) * 512, 512).ToArray();
            var top3 = logits.Select((v, i) => (v, i)).OrderByDescending(x => x.v).Take(3).Select(x => x.i);
            Assert.Contains(id, top3);
            prefix.Add(id);
        }
    }

    [Fact]
    public void Generation_StopsAtEos_AndAtTheContext()
    {
        var r = HfFixtures.Load("llama-tiny-gqa");
        var m = HuggingFace.Load(HfFixtures.Dir("llama-tiny-gqa"));
        var eos = r.GreedyIds[3];
        var ids = new TextGenerator(m).Generate(r.GreedyPrompt, new GenerationOptions { MaxNewTokens = 12, EosTokenId = eos }).ToArray();
        Assert.Equal(eos, ids[^1]);
        Assert.Equal(Array.IndexOf(r.GreedyIds, eos) + 1, ids.Length);
        var many = new TextGenerator(m).Generate(r.GreedyPrompt, new GenerationOptions { MaxNewTokens = 500, EosTokenId = -1 }).ToArray();
        Assert.Equal(m.Config.Context - r.GreedyPrompt.Length + 1, many.Length);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Perplexity_OfTheRowsAsOneStream_IsTheReferenceLoss(string name)
    {
        // The two reference rows, one after the other, in windows of 16: exactly the reference's two sequences.
        var r = HfFixtures.Load(name);
        var m = HuggingFace.Load(HfFixtures.Dir(name));
        var result = MoraEngine.Training.Perplexity.Evaluate(m, r.Ids, context: r.Time, batch: 1);
        Assert.Equal(r.Ids.Length, result.Tokens);
        Assert.Equal(r.Batch * (r.Time - 1), result.Predictions);
        Assert.True(Math.Abs(result.Loss - r.Loss) <= 1e-5 * r.Loss, $"{name}: {result.Loss} vs {r.Loss}");
        // A shorter last window counts its own predictions only; batching does not change the result.
        var odd = r.Ids.Take(27).ToArray();
        var a = MoraEngine.Training.Perplexity.Evaluate(m, odd, context: 8, batch: 3);
        var direct = 0.0;
        for (var w = 0; w < 27; w += 8)
        {
            var win = odd.Skip(w).Take(8).ToArray();
            if (win.Length < 2) continue;
            using var _ = Graph.NoGrad();
            using var scope = MemoryScope.Begin();
            var targets = win.Skip(1).Append(-100).ToArray();
            direct += m.Loss(win, targets, 1, win.Length).Item() * (win.Length - 1);
        }
        Assert.Equal(3 * 7 + 2, a.Predictions);
        Assert.Equal(direct / a.Predictions, a.Loss, 5);
    }

    // ------------------------------------------------------------------ errors

    private static string Mutate(string fixture, Action<string> change)
    {
        var dir = HfFixtures.CopyToTemp(fixture);
        change(dir);
        return dir;
    }

    private static void EditConfig(string dir, Action<JsonObject> edit)
    {
        var path = Path.Combine(dir, "config.json");
        var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(o);
        File.WriteAllText(path, o.ToJsonString());
    }

    [Theory]
    [InlineData("model_type", "\"bert\"", "model_type 'bert' is not supported")]
    [InlineData("activation_function", "\"gelu\"", "activation_function")]
    [InlineData("n_embd", "\"32\"", "'n_embd' must be an integer")]
    [InlineData("n_head", "5", "not divisible")]
    [InlineData("scale_attn_by_inverse_layer_idx", "true", "scale_attn_by_inverse_layer_idx")]
    public void BadGpt2Config_IsAClearError(string field, string json, string expected)
    {
        var dir = Mutate("gpt2-tiny", d => EditConfig(d, o => o[field] = JsonNode.Parse(json)));
        try
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => HuggingFace.Load(dir));
            Assert.Contains(expected, e.Message);
            Assert.Contains("config.json", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("rope_scaling", "{\"type\": \"linear\", \"factor\": 2.0}", "rope_scaling")]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act")]
    [InlineData("num_key_value_heads", "3", "KvHeads")]
    [InlineData("head_dim", "16", "head_dim")]
    public void BadLlamaConfig_IsAClearError(string field, string json, string expected)
    {
        var dir = Mutate("llama-tiny-gqa", d => EditConfig(d, o => o[field] = JsonNode.Parse(json)));
        try
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => HuggingFace.Load(dir));
            Assert.Contains(expected, e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void UntiedModelWithoutAHead_NamesTheMissingTensor()
    {
        var dir = Mutate("llama-tiny-tied-bf16-sharded", d => EditConfig(d, o => o["tie_word_embeddings"] = false));
        try
        {
            var e = Assert.Throws<SafetensorsException>(() => HuggingFace.Load(dir));
            Assert.Contains("lm_head.weight", e.Message);
            Assert.Contains("tie_word_embeddings", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void WrongShape_ExtraTensor_NaN_AndMissingShard_AreErrorsNamingFileAndTensor()
    {
        var src = HuggingFace.Load(HfFixtures.Dir("llama-tiny-gqa"));
        var weights = src.NamedParameters().Select(p => new SafeTensor(p.Name, p.Param.ShapeArray.ToArray(), p.Param.ToArray())).ToList();
        void Check(Func<List<SafeTensor>, List<SafeTensor>> edit, string expected)
        {
            var dir = HfFixtures.CopyToTemp("llama-tiny-gqa");
            try
            {
                Safetensors.Save(Path.Combine(dir, "model.safetensors"), edit(weights.ToList()));
                var e = Assert.Throws<SafetensorsException>(() => HuggingFace.Load(dir));
                Assert.Contains("model.safetensors", e.Message);
                Assert.Contains(expected, e.Message);
            }
            finally { Directory.Delete(dir, true); }
        }
        Check(w => w.Select(t => t.Name == "model.layers.1.self_attn.k_proj.weight" ? t with { Shape = [32, 16], Data = t.Data } : t).ToList(), "model.layers.1.self_attn.k_proj.weight");
        Check(w => w.Append(new SafeTensor("model.layers.9.mlp.up_proj.weight", [2], [1, 2])).ToList(), "model.layers.9.mlp.up_proj.weight");
        Check(w => w.Where(t => t.Name != "model.norm.weight").ToList(), "model.norm.weight");
        Check(w => w.Select(t => t.Name == "model.norm.weight" ? t with { Data = t.Data.Select((v, i) => i == 3 ? float.NaN : v).ToArray() } : t).ToList(), "not finite");

        var sharded = HfFixtures.CopyToTemp("llama-tiny-tied-bf16-sharded");
        try
        {
            File.Delete(Path.Combine(sharded, "model-00002-of-00002.safetensors"));
            var e = Assert.Throws<FileNotFoundException>(() => HuggingFace.Load(sharded));
            Assert.Contains("model-00002-of-00002.safetensors", e.Message);
        }
        finally { Directory.Delete(sharded, true); }
    }

    [Fact]
    public void DirectoryWithoutWeights_SaysWhatItLookedFor()
    {
        var dir = HfFixtures.CopyToTemp("gpt2-tiny");
        try
        {
            File.Delete(Path.Combine(dir, "model.safetensors"));
            var e = Assert.Throws<FileNotFoundException>(() => HuggingFace.Load(dir));
            Assert.Contains("model.safetensors.index.json", e.Message);
            File.WriteAllText(Path.Combine(dir, "pytorch_model.bin"), "x");
            Assert.Contains("safetensors", Assert.Throws<NotSupportedException>(() => HuggingFace.Load(dir)).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void RepeatHeads_GradientCheck()
    {
        var rng = new Rng(3);
        int B = 2, T = 3, kvh = 2, hd = 3, groups = 3;
        var n = B * T * kvh * hd;
        GradCheck.Check(
            [(GradCheck.Rand(rng, n), [B, T, kvh * hd])],
            x => Ops.RepeatHeads(x[0], kvh, groups),
            r =>
            {
                var y = new double[n * groups];
                for (var row = 0; row < B * T; row++)
                    for (var h = 0; h < kvh * groups; h++)
                        for (var d = 0; d < hd; d++)
                            y[row * kvh * groups * hd + h * hd + d] = r[0][row * kvh * hd + h / groups * hd + d];
                return y;
            });
    }
}

public class HfConfigMappingTests
{
    private static string Write(string json)
    {
        var dir = Directory.CreateTempSubdirectory("mora-hfcfg").FullName;
        File.WriteAllText(Path.Combine(dir, "config.json"), json);
        return Path.Combine(dir, "config.json");
    }

    [Fact]
    public void Qwen2_HasQkvBiases_AndMistral_LimitsTheContextToItsWindow()
    {
        var q = MoraEngine.IO.HuggingFace.ReadConfig(Write("""
            {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
             "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": true, "use_sliding_window": false, "eos_token_id": [3, 4]}
            """), out _);
        Assert.True(q.QkvBias);
        Assert.False(q.AttentionBias);
        Assert.Equal(2, q.KvHeads);
        Assert.Equal(1_000_000f, q.RopeTheta);
        Assert.Equal(3, q.EosTokenId);
        var m = MoraEngine.IO.HuggingFace.ReadConfig(Write("""
            {"model_type": "mistral", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
             "num_attention_heads": 4, "num_key_value_heads": 1, "max_position_embeddings": 4096, "sliding_window": 256}
            """), out var notes);
        Assert.Equal(256, m.Context);
        Assert.Contains(notes, n => n.Contains("sliding_window"));
    }

    [Fact]
    public void Qwen2LayoutModel_ExportsAndLoadsBack_WithItsBiases()
    {
        var cfg = new ModelConfig
        {
            Architecture = Architecture.Llama, Layout = ModelLayout.HuggingFace, VocabSize = 40, DModel = 32, Layers = 1, Heads = 4, KvHeads = 2,
            Context = 16, QkvBias = true, TieEmbeddings = true,
        };
        var m = new TransformerModel(cfg, 4);
        foreach (var (name, p) in m.NamedParameters())
            if (name.EndsWith(".bias", StringComparison.Ordinal)) p.CopyFrom(Enumerable.Range(0, p.Length).Select(i => 0.01f * i).ToArray());
        var dir = Directory.CreateTempSubdirectory("mora-qwen").FullName;
        try
        {
            MoraEngine.IO.HuggingFace.Save(m, dir);
            Assert.Contains("\"qwen2\"", File.ReadAllText(Path.Combine(dir, "config.json")));
            var back = MoraEngine.IO.HuggingFace.Load(dir);
            var ids = Enumerable.Range(0, 12).ToArray();
            using var _ = Graph.NoGrad();
            Assert.Equal(m.Forward(ids, 1, 12).ToArray(), back.Forward(ids, 1, 12).ToArray());
            Assert.Contains(back.NamedParameters(), p => p.Name == "model.layers.0.self_attn.k_proj.bias");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ParameterCount_FromTheConfig_MatchesTheBuiltModel()
    {
        foreach (var c in new[]
                 {
                     ModelConfig.Tiny, ModelConfig.SmallLlama, ModelConfig.SmallCpu with { Bias = true }, ModelConfig.Tiny with { TieEmbeddings = true },
                     new ModelConfig { Architecture = Architecture.Llama, Layout = ModelLayout.HuggingFace, VocabSize = 50, DModel = 48, Layers = 2, Heads = 6, KvHeads = 2, QkvBias = true, MlpBias = true },
                     new ModelConfig { Architecture = Architecture.Gpt2, Layout = ModelLayout.HuggingFace, VocabSize = 50, DModel = 48, Layers = 2, Heads = 6, Bias = true, TieEmbeddings = true },
                 })
            Assert.Equal(new TransformerModel(c).ParameterCount(), c.ParameterCount());
    }
}

public class AdapterTypeAgreementTests
{
    [Fact]
    public void MoraTypeInTheConfig_MustMatchTheTypeTheWeightsWereTrainedAs()
    {
        var model = new TransformerModel(ModelConfig.Tiny, 2);
        var adapted = MoraEngine.Adapters.AdaptedModel.Wrap(model, new MoraEngine.Adapters.AdapterConfig
        {
            Method = MoraEngine.Adapters.AdapterMethod.Mora, Rank = 2, MoraType = MoraEngine.Adapters.MoraType.Sharing, TargetModules = ["q"],
        });
        var dir = Directory.CreateTempSubdirectory("mora-type").FullName;
        try
        {
            adapted.Save(dir);
            var cfgPath = Path.Combine(dir, "adapter_config.json");
            File.WriteAllText(cfgPath, File.ReadAllText(cfgPath).Replace("\"mora_type\": 1", "\"mora_type\": 4"));
            var e = Assert.Throws<MoraEngine.IO.SafetensorsException>(() => MoraEngine.Adapters.AdaptedModel.Load(dir, new TransformerModel(ModelConfig.Tiny, 2)));
            Assert.Contains("type 1", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}

public class GenerationInputTests
{
    [Fact]
    public void BadOptionsAndPrompts_AreClearErrors()
    {
        var m = MoraEngine.IO.HuggingFace.Load(HfFixtures.Dir("gpt2-tiny"));
        var gen = new TextGenerator(m);
        foreach (var o in new[]
                 {
                     new GenerationOptions { Temperature = float.NaN }, new GenerationOptions { Temperature = -1 },
                     new GenerationOptions { TopP = 0 }, new GenerationOptions { TopP = 1.5f }, new GenerationOptions { TopK = -1 },
                     new GenerationOptions { MaxNewTokens = -1 },
                 })
            Assert.Throws<ArgumentException>(() => gen.Generate([1, 2], o).ToArray());
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => gen.Prefill([])).Message);
        Assert.Contains("exceed", Assert.Throws<ArgumentException>(() => gen.Prefill(new int[m.Config.Context + 1])).Message);
        Assert.Contains("outside the vocabulary", Assert.Throws<ArgumentOutOfRangeException>(() => gen.Prefill([1, 512])).Message);
        Assert.Throws<InvalidOperationException>(() => new TextGenerator(m).Step(3));
    }
}
