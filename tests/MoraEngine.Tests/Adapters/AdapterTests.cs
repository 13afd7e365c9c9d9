using MoraEngine;
using MoraEngine.Adapters;
using MoraEngine.Autograd;
using MoraEngine.IO;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;
using Xunit;

namespace MoraEngine.Tests;

public class AdapterTests
{
    private static readonly Rng R = new(21);

    private static ModelConfig Small => new() { Architecture = Architecture.Gpt2, VocabSize = 24, DModel = 40, Layers = 2, Heads = 4, Context = 16 };

    public static TheoryData<string, int> Methods => new()
    {
        { "lora", 0 }, { "mora", 0 }, { "mora", 1 }, { "mora", 2 }, { "mora", 3 }, { "mora", 4 }, { "mora", 6 },
    };

    private static AdapterConfig Config(string method, int type, int rank = 4) => new()
    {
        Method = method == "lora" ? AdapterMethod.Lora : AdapterMethod.Mora,
        Rank = rank,
        MoraType = (MoraType)type,
        TargetModules = ["q", "k", "v", "o", "up", "down"],
    };

    /// <summary>Gives every adapter parameter random values (a trained-looking, non-zero update).</summary>
    private static void Randomise(AdaptedModel m, float scale = 0.05f)
    {
        foreach (var p in m.AdapterParameters()) p.CopyFrom(GradCheck.Rand(R, p.Length, scale));
    }

    private static float[] Logits(TransformerModel m, int[] ids)
    {
        using (Graph.NoGrad())
            return m.Forward(ids, 2, ids.Length / 2).ToArray();
    }

    private static readonly int[] Ids = [1, 5, 7, 2, 9, 3, 4, 8, 11, 6, 0, 2];

    private static void AssertClose(float[] expected, float[] actual, float tol = 2e-4f)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"[{i}] {expected[i]} vs {actual[i]}");
    }

    /// <summary>The same fixed batch every step: any method that trains at all must drive its loss down.</summary>
    private sealed class FixedBatch(int vocab, int rows, int time, ulong seed) : IBatchSource
    {
        private readonly int[] _tokens = Enumerable.Range(0, rows * (time + 1)).Select(_ => 0).ToArray();
        private bool _filled;

        public int VocabSize => vocab;

        public void Next(Batch batch)
        {
            if (!_filled)
            {
                var rng = new Rng(seed);
                for (var i = 0; i < _tokens.Length; i++) _tokens[i] = rng.NextInt(vocab);
                _filled = true;
            }
            for (var b = 0; b < rows; b++)
                for (var t = 0; t < time; t++)
                {
                    batch.Ids[b * time + t] = _tokens[b * (time + 1) + t];
                    batch.Targets[b * time + t] = _tokens[b * (time + 1) + t + 1];
                }
        }

        public uint[] GetState() => [];

        public void SetState(uint[] state)
        {
        }
    }

    [Fact]
    public void LoraDelta_GradientsOfXAandB()
    {
        int rows = 5, inF = 7, outF = 6, r = 3;
        var x = GradCheck.Rand(R, rows * inF);
        var a = GradCheck.Rand(R, r * inF);
        var b = GradCheck.Rand(R, outF * r);
        var y = GradCheck.Rand(R, rows * outF);
        GradCheck.Check([(x, [rows, inF]), (a, [r, inF]), (b, [outF, r]), (y, [rows, outF])],
            t => Ops.LoraDelta(t[0], t[1], t[2], 0.75f, t[3]),
            v =>
            {
                var o = (double[])v[3].Clone();
                for (var i = 0; i < rows; i++)
                    for (var q = 0; q < r; q++)
                    {
                        double h = 0;
                        for (var j = 0; j < inF; j++) h += v[0][i * inF + j] * v[1][q * inF + j];
                        for (var k = 0; k < outF; k++) o[i * outF + k] += 0.75 * h * v[2][k * r + q];
                    }
                return o;
            });
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void FreshAdapter_LeavesOutputUnchanged_AndMergeEqualsAdapted(string method, int type)
    {
        var model = new TransformerModel(Small, 3);
        var before = Logits(model, Ids);
        var adapted = AdaptedModel.Wrap(model, Config(method, type));
        Assert.Equal(before, Logits(model, Ids));   // B = 0 / M = 0: training starts from the base model exactly

        Randomise(adapted);
        var withAdapter = Logits(model, Ids);
        Assert.NotEqual(before, withAdapter);
        adapted.Merge();
        AssertClose(withAdapter, Logits(model, Ids));
        adapted.Unmerge();
        AssertClose(withAdapter, Logits(model, Ids));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Restart_KeepsTheFunction_AndResetsTheUpdate(string method, int type)
    {
        var model = new TransformerModel(Small, 4);
        var adapted = AdaptedModel.Wrap(model, Config(method, type));
        Randomise(adapted);
        var before = Logits(model, Ids);
        var next = type is >= 1 and <= 4 ? MoraType.Interleave : (MoraType?)null;
        adapted.Restart(method == "mora" ? next : null);
        AssertClose(before, Logits(model, Ids));
        foreach (var l in adapted.Layers)
            Assert.All(l.Adapter.DeltaWeight().ToArray(), v => Assert.Equal(0f, v));
        if (method == "mora" && next != null) Assert.All(adapted.Layers, l => Assert.Equal(next, ((MoraAdapter)l.Adapter).Type));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void SaveLoad_RoundTrip_UsesPeftNames(string method, int type)
    {
        var dir = Directory.CreateTempSubdirectory("mora-adapter").FullName;
        try
        {
            var model = new TransformerModel(Small, 5);
            var adapted = AdaptedModel.Wrap(model, Config(method, type));
            Randomise(adapted);
            var expected = Logits(model, Ids);
            adapted.Save(dir);

            var header = Safetensors.ReadHeader(Path.Combine(dir, AdaptedModel.WeightsFileName));
            Assert.Contains("base_model.model.blocks.0.attn.q.lora_A.weight", header.Keys);
            // LoRA's B; MoRA's M saved a second time, as the official MoRA code's PEFT save does (its lora_B is lora_A).
            Assert.True(header.ContainsKey("base_model.model.blocks.0.attn.q.lora_B.weight"));
            var json = File.ReadAllText(Path.Combine(dir, AdaptedModel.ConfigFileName));
            Assert.Contains("\"lora_alpha\"", json);
            Assert.Contains("\"target_modules\"", json);
            Assert.Contains($"\"use_mora\": {(method == "mora" ? "true" : "false")}", json);

            var fresh = new TransformerModel(Small, 5);
            AdaptedModel.Load(dir, fresh);
            Assert.Equal(expected, Logits(fresh, Ids));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Load_IntoAnotherModelSize_IsClearError()
    {
        var dir = Directory.CreateTempSubdirectory("mora-adapter").FullName;
        try
        {
            var adapted = AdaptedModel.Wrap(new TransformerModel(Small, 5), Config("mora", 1));
            adapted.Save(dir);
            var other = new TransformerModel(Small with { DModel = 48 }, 5);
            var ex = Assert.Throws<SafetensorsException>(() => AdaptedModel.Load(dir, other));
            Assert.Contains("lora_A.weight", ex.Message);
            Assert.Contains("does not fit", ex.Message);
            Assert.All(other.Linears(), l => Assert.Null(l.Layer.Adapter));   // nothing left half-attached
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void BadConfigs_AreClearErrors()
    {
        var model = new TransformerModel(Small, 1);
        Assert.Contains("rank", Assert.Throws<ArgumentException>(() => AdaptedModel.Wrap(model, Config("lora", 0, rank: 0))).Message);
        Assert.Contains("unknown target", Assert.Throws<ArgumentException>(() => AdaptedModel.Wrap(model, Config("lora", 0) with { TargetModules = ["q", "attn_proj"] })).Message);
        Assert.Contains("gate", Assert.Throws<ArgumentException>(() => AdaptedModel.Wrap(model, Config("lora", 0) with { TargetModules = ["gate"] })).Message);
        // r̂ = ⌊√((40+40)·25)+0.5⌋ = 45 > min(in, out) = 40
        var ex = Assert.ThrowsAny<ArgumentException>(() => AdaptedModel.Wrap(model, Config("mora", 1, rank: 25)));
        Assert.Contains("blocks.0.attn.q", ex.Message);
        Assert.All(model.Linears(), l => Assert.Null(l.Layer.Adapter));
    }

    [Fact]
    public void TrainableCounts_FollowTheFormulas_OnSmallCpu()
    {
        var c = ModelConfig.SmallCpu;
        var lora = AdapterBudget.LoraParameters(c, 8);
        var model = new TransformerModel(c, 1);
        var adapted = AdaptedModel.Wrap(model, new AdapterConfig { Method = AdapterMethod.Lora, Rank = 8 });
        Assert.Equal(lora, adapted.TrainableParameterCount());
        foreach (var t in new[] { 1, 2, 3, 4 })
        {
            var mora = AdapterBudget.MoraParameters(c, 8, (MoraType)t);
            Assert.InRange(Math.Abs(mora - lora) / (double)lora, 0, 0.01);
        }
        var rope = AdapterBudget.MoraParameters(c, 8, MoraType.Rope);
        Assert.InRange(Math.Abs(rope - lora) / (double)lora, 0, 0.025);
        var m2 = new TransformerModel(c, 1);
        Assert.Equal(rope, AdaptedModel.Wrap(m2, new AdapterConfig { Method = AdapterMethod.Mora, Rank = 8, MoraType = MoraType.Rope }).TrainableParameterCount());
    }

    public static TheoryData<string, int, int> TrainingMethods => new()
    {
        { "lora", 0, 0 }, { "mora", 1, 0 }, { "mora", 6, 0 }, { "lora", 0, 40 }, { "mora", 1, 40 },
    };

    /// <summary>Each method, restarts included, must actually learn: the loss on the fixed batch falls clearly.</summary>
    [Theory]
    [MemberData(nameof(TrainingMethods))]
    public void FineTuning_ReducesLoss(string method, int type, int restartEvery)
    {
        var task = new FixedBatch(Small.VocabSize, 8, 12, 3);
        var model = new TransformerModel(Small, 8);
        var adapted = AdaptedModel.Wrap(model, Config(method, type, rank: 4) with { Alpha = 8 });
        var opt = new AdamW(adapted.TrainableParameters(), 2e-2f, weightDecay: 0f);
        var sched = new WarmupCosineLr(2e-2f, 5, 160, 2e-3f, restartWarmup: 3);
        var trainer = new Trainer(model, opt, sched, task, new TrainerOptions { BatchSize = 8, Time = 12 });
        if (restartEvery > 0) trainer.Callbacks.Add(new AdapterRestarts(adapted, restartEvery));
        var frozenBefore = model.StateDict()["blocks.0.mlp.up.weight"].ToArray();
        var first = Enumerable.Range(0, 5).Average(_ => trainer.TrainStep());
        for (var i = 0; i < 150; i++) trainer.TrainStep();
        var last = Enumerable.Range(0, 5).Average(_ => trainer.TrainStep());
        // A frozen random base limits how far adapters alone can go (≈ 3.1 → 2.5 here for every method), but a
        // method that trained nothing would stay at the start: demand a clear drop.
        Assert.True(first - last > 0.3, $"{method}: loss {first:F3} → {last:F3}");
        if (restartEvery == 0) Assert.Equal(frozenBefore, model.StateDict()["blocks.0.mlp.up.weight"].ToArray());
        else Assert.NotEqual(frozenBefore, model.StateDict()["blocks.0.mlp.up.weight"].ToArray());   // restarts merged into W
    }
}

public class AdapterConfigStrictnessTests
{
    [Theory]
    [InlineData("{\"r\": \"4\"}", "'r' must be an integer")]
    [InlineData("{\"r\": 4, \"mora_type\": \"1\", \"use_mora\": true}", "'mora_type' must be an integer")]
    [InlineData("{\"r\": 4, \"use_mora\": \"yes\"}", "'use_mora' must be true or false")]
    [InlineData("{\"r\": 4, \"lora_alpha\": \"16\"}", "'lora_alpha' must be a finite number")]
    [InlineData("{\"r\": 4, \"target_modules\": [1, 2]}", "'target_modules' must be a list")]
    [InlineData("{\"r\": 4, \"peft_type\": \"IA3\"}", "peft_type")]
    [InlineData("{\"r\": 4, \"use_mora\": true, \"mora_type\": 5, \"target_modules\": [\"q\"]}", "unknown MoRA type 5")]
    public void WrongTypes_AreErrors_NotDefaults(string json, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => MoraEngine.Adapters.AdapterConfig.FromPeftJson(json, "x/adapter_config.json"));
        Assert.Contains(expected, e.Message);
        Assert.Contains("x/adapter_config.json", e.Message);
    }
}

public class AdapterInPlaceTests
{
    /// <summary>
    /// A layer hands its fresh output to its adapter, which adds into it and passes the gradient through without
    /// copies: outputs and every gradient equal the public ops' (which copy the base output) bit for bit.
    /// </summary>
    [Theory]
    [InlineData("lora")]
    [InlineData("mora")]
    public void OwnedBaseOutput_GivesTheSameValuesAndGradients_AsTheCopyingOp(string method)
    {
        var rng = new Rng(4);
        var layer = new MoraEngine.Nn.Linear(24, 40, true, rng);
        MoraEngine.Nn.LinearAdapter adapter = method == "lora"
            ? new LoraAdapter(24, 40, 4, 2f, 0f, rng)
            : new MoraAdapter(24, 40, 4, MoraType.Rope, 0f, rng);
        layer.SetAdapter(adapter);
        foreach (var p in adapter.Parameters()) p.CopyFrom(Enumerable.Range(0, p.Length).Select(i => MathF.Sin(i * 0.7f) * 0.1f).ToArray());
        var x = Tensor.FromArray(Enumerable.Range(0, 3 * 5 * 24).Select(i => MathF.Cos(i * 0.3f)).ToArray(), 3, 5, 24);
        x.RequiresGrad = true;
        var weights = Tensor.FromArray(Enumerable.Range(0, 3 * 5 * 40).Select(i => MathF.Sin(i * 0.11f)).ToArray(), 3, 5, 40);

        float[][] Run(Func<Tensor> forward)
        {
            foreach (var p in layer.Parameters()) p.Grad = null;
            x.Grad = null;
            using var scope = MemoryScope.Begin();
            var y = forward();
            var values = y.ToArray();
            Ops.SumAll(Ops.Mul(y, weights)).Backward();
            return [values, x.Grad!.ToArray(), .. layer.Parameters().Where(p => p.RequiresGrad).Select(p => p.Grad!.ToArray())];
        }

        var owned = Run(() => adapter.ForwardOwned(x, Ops.Linear(x, layer.Weight, layer.Bias)));
        var copying = Run(() => adapter.Forward(x, Ops.Linear(x, layer.Weight, layer.Bias)));
        Assert.Equal(copying.Length, owned.Length);
        for (var i = 0; i < owned.Length; i++) Assert.Equal(copying[i], owned[i]);
        // The layer itself joins the update to its GEMM (LinearLora along K; LinearMora merged into a working weight
        // for this many tokens), which sums in another order, so it agrees to float rounding.
        var layerRun = Run(() => layer.Forward(x));
        for (var i = 0; i < owned.Length; i++)
        {
            var scale = Math.Max(1e-6f, copying[i].Max(MathF.Abs));
            for (var j = 0; j < owned[i].Length; j++)
                Assert.True(MathF.Abs(layerRun[i][j] - copying[i][j]) <= 2e-6f * scale, $"{method} tensor {i}[{j}]: {layerRun[i][j]} vs {copying[i][j]}");
        }
    }
}
