using System.Text.Json;
using System.Text.RegularExpressions;
using MoraEngine.Adapters;
using MoraEngine.Cli;
using MoraEngine.Examples.Uuid;
using MoraEngine.Nn;
using MoraEngine.Training;
using Xunit;

namespace MoraEngine.Tests.Uuid;

public class UuidDataTests
{
    [Fact]
    public void NewUuid_IsVersion4_AndRoundTripsThroughTokens()
    {
        var rng = new Rng(5);
        var re = new Regex("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
        for (var i = 0; i < 200; i++)
        {
            var u = UuidVocab.NewUuid(rng);
            Assert.Matches(re, u);
            Assert.Equal(u, UuidVocab.Decode(UuidVocab.Encode(u)));
        }
    }

    [Fact]
    public void Rows_AreBosKeySepValueEos_AndOnlyValueAndEosAreScored()
    {
        var pairs = new UuidPairs(3, 9);
        var batch = new Batch(3, UuidVocab.Time);
        new FixedPairsSource(pairs, 1).Next(batch);
        var t = UuidVocab.Time;
        for (var b = 0; b < 3; b++)
        {
            var ids = batch.Ids.AsSpan(b * t, t);
            var targets = batch.Targets.AsSpan(b * t, t);
            Assert.Equal(UuidVocab.Bos, ids[0]);
            Assert.Equal(UuidVocab.Sep, ids[UuidVocab.SepPosition]);
            var key = UuidVocab.Decode(ids.Slice(1, 36));
            var p = Array.IndexOf(pairs.Keys, key);
            Assert.True(p >= 0);
            for (var i = 0; i < UuidVocab.SepPosition; i++) Assert.Equal(-100, targets[i]);
            Assert.Equal(pairs.Values[p], UuidVocab.Decode(targets.Slice(UuidVocab.SepPosition, 36)));
            Assert.Equal(UuidVocab.Eos, targets[t - 1]);
        }
    }

    [Fact]
    public void FixedPairs_EachEpochVisitsEveryPairOnce_AndStateResumes()
    {
        var pairs = new UuidPairs(10, 3);
        var src = new FixedPairsSource(pairs, 4);
        var batch = new Batch(5, UuidVocab.Time);
        var seen = new List<string>();
        for (var k = 0; k < 2; k++)
        {
            src.Next(batch);
            for (var b = 0; b < 5; b++) seen.Add(UuidVocab.Decode(batch.Ids.AsSpan(b * UuidVocab.Time + 1, 36)));
        }
        Assert.Equal(pairs.Keys.Order(), seen.Order());
        src.Next(batch);
        var state = src.GetState();
        var expected = new Batch(5, UuidVocab.Time);
        src.Next(expected);
        var other = new FixedPairsSource(pairs, 99);
        other.SetState(state);
        other.Next(batch);
        Assert.Equal(expected.Ids, batch.Ids);
    }

    [Fact]
    public void Methods_And_LearningRates_Parse_WithClearErrors()
    {
        var ms = MethodSpec.ParseList("fft,lora:8,mora:8:1,mora:8:6,remora:4,relora");
        Assert.Equal(["fft", "lora:8", "mora:8:1", "mora:8:6", "remora:4:1", "relora:8"], ms.Select(m => m.Spec));
        Assert.Contains("Unknown method 'dora:8'", Assert.Throws<ArgumentException>(() => MethodSpec.Parse("dora:8")).Message);
        Assert.Contains("MoRA type '5'", Assert.Throws<ArgumentException>(() => MethodSpec.Parse("mora:8:5")).Message);
        Assert.Contains("rank", Assert.Throws<ArgumentException>(() => MethodSpec.Parse("lora:0")).Message);
        Assert.Throws<ArgumentException>(() => MethodSpec.ParseList("lora:8,lora:8"));

        var lr = UuidLearningRates.Parse("mora=2e-3,lora=1e-3,mora:8:6=5e-3");
        Assert.Equal(2e-3f, lr.For(ms[2]));
        Assert.Equal(5e-3f, lr.For(ms[3]));
        Assert.Equal(1e-3f, lr.For(ms[1]));
        Assert.Equal(UuidLearningRates.Defaults[MethodKind.Fft], lr.For(ms[0]));
        Assert.Equal(UuidLearningRates.MoraRopeDefault, UuidLearningRates.Default.For(ms[3]));
        Assert.Equal(UuidLearningRates.Defaults[MethodKind.Mora], UuidLearningRates.Default.For(ms[2]));
        Assert.Equal(7e-4f, UuidLearningRates.Parse("7e-4").For(ms[0]));
        Assert.Throws<ArgumentException>(() => UuidLearningRates.Parse("mora=fast"));
        Assert.Throws<ArgumentException>(() => UuidLearningRates.Parse("dora=1e-3"));
        Assert.Throws<ArgumentException>(() => UuidLearningRates.Parse("-1"));
        Assert.Throws<ArgumentException>(() => UuidLearningRates.Parse("=1e-3"));
    }

    [Fact]
    public void DefaultBudgets_FollowTheRankHatFormula()
    {
        // d 128, 2 layers, targets q k v o up down: LoRA r = 8 has 8·(in + out) per layer.
        var cfg = new UuidSettings().ModelConfig;
        long Count(AdapterMethod method, MoraType type)
        {
            var model = new TransformerModel(cfg, 1);
            return AdaptedModel.Wrap(model, new AdapterConfig { Method = method, Rank = 8, MoraType = type }).TrainableParameterCount();
        }
        var lora = Count(AdapterMethod.Lora, MoraType.Sharing);
        var mora1 = Count(AdapterMethod.Mora, MoraType.Sharing);
        var mora6 = Count(AdapterMethod.Mora, MoraType.Rope);
        Assert.Equal(36864, lora);
        Assert.Equal(2 * (4 * 45 * 45 + 2 * 72 * 72), mora1);   // r̂ = ⌊√(256·8) + ½⌋ = 45, ⌊√(640·8) + ½⌋ = 72
        Assert.Equal(2 * (4 * 44 * 44 + 2 * 72 * 72), mora6);   // type 6 rounds r̂ down to even: 44
        Assert.InRange(Math.Abs(mora1 - lora) / (double)lora, 0, 0.025);
        Assert.InRange(Math.Abs(mora6 - lora) / (double)lora, 0, 0.025);
    }
}

public class UuidEvaluationTests
{
    [Fact]
    public void Metrics_OnValuesTheModelItselfDecodes_AreExactlyOne()
    {
        // Whatever greedy decoding writes is, by definition, what teacher forcing's argmax predicts at each step:
        // pairs made of the model's own greedy outputs must score 100% char accuracy and exact match.
        var s = new UuidSettings { DModel = 32, Layers = 1, Heads = 2 };
        var model = new TransformerModel(s.ModelConfig, 3);
        var random = new UuidPairs(6, 8);
        var own = new UuidPairs(random.KeyTokens, UuidEvaluation.GreedyDecodeTokens(model, random.KeyTokens));
        var e = UuidEvaluation.Evaluate(model, own, 0);
        Assert.Equal(1.0, e.CharAccuracy);
        Assert.Equal(1.0, e.ExactMatch);
        var r = UuidEvaluation.Evaluate(model, random, 0);
        Assert.True(r.CharAccuracy < 0.5);
        Assert.Equal(0.0, r.ExactMatch);
    }

}

[Collection("Console")]
public class UuidEndToEndTests
{
    private static readonly string[] Tiny =
        ["--pairs", "8", "--steps", "4", "--batch", "4", "--format-steps", "3", "--eval-every", "2", "--d-model", "32", "--layers", "1", "--heads", "2", "--warmup", "1", "--seeds", "1"];

    private static int Run(params string[] args)
    {
        var old = Console.Out;
        Console.SetOut(new StringWriter());
        try
        {
            return MoraCli.Build().Parse(["uuid", .. args]).Invoke();
        }
        finally
        {
            Console.SetOut(old);
        }
    }

    [Fact]
    public void TinyRun_WritesResultsCurvesAndPlot_WithTheSchema_AndCachesTheBase()
    {
        var dir = Directory.CreateTempSubdirectory("mora-uuid").FullName;
        try
        {
            var outDir = Path.Combine(dir, "out");
            var cache = Path.Combine(dir, "cache");
            string[] Args(string outDir) =>
                [.. Tiny, "--methods", "fft,lora:2,mora:2:1,mora:2:6,remora:2,relora:2", "--restart-every", "2", "--lr", "fft=1e-3,lora=3e-3", "--out", outDir, "--cache-dir", cache];
            var args = Args(outDir);
            Assert.Equal(0, Run(args));
            foreach (var f in new[] { "results.json", "curves.csv", "char_accuracy.svg" }) Assert.True(File.Exists(Path.Combine(outDir, f)), f);
            Assert.Empty(Directory.GetFiles(outDir, "*.tmp"));
            Assert.Single(Directory.GetFiles(cache, "base-*.safetensors"));

            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")));
            var root = doc.RootElement;
            var settings = root.GetProperty("settings");
            Assert.Equal(8, settings.GetProperty("pairs").GetInt32());
            Assert.Equal(4, settings.GetProperty("steps").GetInt32());
            Assert.Equal(0.001, settings.GetProperty("lr").GetProperty("fft").GetDouble(), 6);
            Assert.False(root.GetProperty("base").GetProperty("cached").GetBoolean());
            var runs = root.GetProperty("runs").EnumerateArray().ToArray();
            Assert.Equal(["fft", "lora", "mora", "mora", "remora", "relora"], runs.Select(r => r.GetProperty("method").GetString()));
            Assert.Equal(JsonValueKind.Null, runs[0].GetProperty("rank").ValueKind);
            Assert.Equal(JsonValueKind.Null, runs[0].GetProperty("mora_type").ValueKind);
            Assert.Equal(2, runs[1].GetProperty("rank").GetInt32());
            Assert.Equal(JsonValueKind.Null, runs[1].GetProperty("mora_type").ValueKind);
            Assert.Equal(1, runs[2].GetProperty("mora_type").GetInt32());
            Assert.Equal(6, runs[3].GetProperty("mora_type").GetInt32());
            Assert.Equal(1, runs[4].GetProperty("mora_type").GetInt32());
            var cfg = new UuidSettings { DModel = 32, Layers = 1, Heads = 2 }.ModelConfig;
            Assert.Equal(AdapterBudget.LoraParameters(cfg, 2), runs[1].GetProperty("trainable_params").GetInt64());
            Assert.Equal(AdapterBudget.MoraParameters(cfg, 2, MoraType.Sharing), runs[2].GetProperty("trainable_params").GetInt64());
            Assert.Equal(AdapterBudget.MoraParameters(cfg, 2, MoraType.Rope), runs[3].GetProperty("trainable_params").GetInt64());
            Assert.Equal(new TransformerModel(cfg).ParameterCount(), runs[0].GetProperty("trainable_params").GetInt64());
            foreach (var r in runs)
            {
                Assert.True(r.GetProperty("seconds").GetDouble() >= 0);
                var curve = r.GetProperty("curve").EnumerateArray().ToArray();
                Assert.Equal([0, 2, 4], curve.Select(p => p.GetProperty("step").GetInt32()));
                foreach (var p in curve)
                {
                    Assert.InRange(p.GetProperty("char_accuracy").GetDouble(), 0, 1);
                    Assert.InRange(p.GetProperty("exact_match").GetDouble(), 0, 1);
                    Assert.True(p.GetProperty("loss").GetDouble() > 0);
                }
            }

            var csv = File.ReadAllLines(Path.Combine(outDir, "curves.csv"));
            Assert.Equal("seed,method,rank,mora_type,step,char_accuracy,exact_match,loss", csv[0]);
            Assert.Equal(1 + 6 * 3, csv.Length);
            Assert.Single(csv, l => l.StartsWith("1,mora,2,6,4,", StringComparison.Ordinal));
            var summary = root.GetProperty("summary").EnumerateArray().ToArray();
            Assert.Equal(["fft", "lora:2", "mora:2:1", "mora:2:6", "remora:2:1", "relora:2"], summary.Select(m => m.GetProperty("method").GetString()));
            Assert.Equal(1, summary[0].GetProperty("seeds").GetInt32());
            Assert.Equal(runs[0].GetProperty("curve").EnumerateArray().Last().GetProperty("char_accuracy").GetDouble(),
                summary[0].GetProperty("char_accuracy").GetProperty("mean").GetDouble());
            Assert.Equal(0, summary[0].GetProperty("char_accuracy").GetProperty("std").GetDouble());
            Assert.False(root.TryGetProperty("grid", out _));
            var svg = File.ReadAllText(Path.Combine(outDir, "char_accuracy.svg"));
            Assert.StartsWith("<svg", svg);
            Assert.Equal(6, Regex.Matches(svg, "<polyline").Count);
            System.Xml.Linq.XDocument.Parse(svg);   // well-formed

            // Second run: the base comes from the cache, and the numbers are the same.
            var outDir2 = Path.Combine(dir, "out2");
            Assert.Equal(0, Run(Args(outDir2)));
            using var doc2 = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir2, "results.json")));
            Assert.True(doc2.RootElement.GetProperty("base").GetProperty("cached").GetBoolean());
            Assert.Equal(File.ReadAllText(Path.Combine(outDir, "curves.csv")), File.ReadAllText(Path.Combine(outDir2, "curves.csv")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void SameSeed_GivesBitIdenticalResults_AnotherSeedDoesNot()
    {
        UuidResults Go(ulong seed) => UuidExperiment.Run(new UuidSettings
        {
            Pairs = 8, Steps = 4, Batch = 4, FormatSteps = 3, EvalEvery = 2, DModel = 32, Layers = 1, Heads = 2, Warmup = 1,
            Methods = MethodSpec.ParseList("fft,lora:2,mora:2:6"), Seed = seed, CacheDir = null, Seeds = 1,
        });
        static string Numbers(UuidResults r) => string.Join(";", r.Runs.Select(run =>
            run.TrainableParams + ":" + run.GreedyExactMatch.ToString("R") + ":" + string.Join(",", run.Curve.Select(p => $"{p.Step}/{p.CharAccuracy:R}/{p.ExactMatch:R}/{p.Loss:R}"))));
        var a = Go(7);
        var b = Go(7);
        Assert.Equal(Numbers(a), Numbers(b));
        Assert.Equal(a.ToCsv(), b.ToCsv());
        Assert.NotEqual(Numbers(a), Numbers(Go(8)));
    }

    [Fact]
    public void BadOptions_AreOneLineErrors_WithExitCode2()
    {
        var dir = Path.Combine(Path.GetTempPath(), "mora-uuid-never-written");
        Assert.Equal(2, Run([.. Tiny, "--methods", "fft,dora:8", "--out", dir]));
        Assert.Equal(2, Run([.. Tiny, "--lr", "mora=fast", "--out", dir]));
        Assert.Equal(2, Run([.. Tiny, "--lr", "mora:=1e-3", "--out", dir]));
        Assert.Equal(2, Run([.. Tiny, "--lr", "relora=1e-3", "--out", dir]));   // not among --methods
        Assert.Equal(2, Run(["--pairs", "0", "--out", dir]));
        Assert.Equal(2, Run(["--steps", "-1", "--out", dir]));
        Assert.Equal(2, Run(["--device", "tpu", "--out", dir]));
        Assert.Equal(2, Run(["--d-model", "30", "--heads", "4", "--out", dir]));
        Assert.Equal(2, Run(["--seeds", "0", "--out", dir]));
        Assert.Equal(2, Run(["--grid-lrs", "1e-3,fast", "--out", dir]));
        Assert.Equal(2, Run(["--grid-format-lrs", "-1", "--out", dir]));
        Assert.Equal(2, Run(["--format-schedule", "linear", "--out", dir]));
        Assert.Equal(2, Run(["--format-wd", "-0.1", "--out", dir]));
        Assert.False(Directory.Exists(dir));
    }

    private static UuidSettings TinySettings(ulong seed) => new()
    {
        Pairs = 8, Steps = 4, Batch = 4, FormatSteps = 3, EvalEvery = 2, DModel = 32, Layers = 1, Heads = 2, Warmup = 1,
        Methods = MethodSpec.ParseList("fft,lora:2,mora:2:6"), Seed = seed, CacheDir = null, Seeds = 1,
    };

    [Fact]
    public void Seeds_RunEachSeedAsItsOwnRun_AndSummariseMeanAndSpread()
    {
        var both = UuidExperiment.Run(TinySettings(7) with { Seeds = 2 });
        Assert.Equal(6, both.Runs.Count);
        Assert.Equal([7UL, 7, 7, 8, 8, 8], both.Runs.Select(r => r.Seed));
        Assert.Equal(2, both.Bases!.Count);
        // The second seed's runs are exactly a one-seed run at that seed.
        var eight = UuidExperiment.Run(TinySettings(8));
        for (var i = 0; i < 3; i++)
            Assert.Equal(eight.Runs[i].Curve, both.Runs[3 + i].Curve);
        var lora = both.Summary[1];
        Assert.Equal("lora:2", lora.Method.Spec);
        var accs = new[] { both.Runs[1].Final.CharAccuracy, both.Runs[4].Final.CharAccuracy };
        Assert.Equal(accs.Average(), lora.CharAccuracy.Mean, 12);
        Assert.Equal(Math.Abs(accs[0] - accs[1]) / Math.Sqrt(2), lora.CharAccuracy.Std, 12);
        Assert.Equal(accs.Min(), lora.CharAccuracy.Min);
        Assert.Equal(accs.Max(), lora.CharAccuracy.Max);
        Assert.Equal(1 + 6 * 3, both.ToCsv().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(3, System.Text.RegularExpressions.Regex.Matches(UuidPlot.Svg(both), "<polygon").Count);   // one band per method
    }

    [Fact]
    public void GridRule_PicksEachMethodsBestRate_AndTheFormatRateWithTheBestMeanOfThose()
    {
        var fft = MethodSpec.Parse("fft");
        var lora = MethodSpec.Parse("lora:8");
        UuidGridEntry E(float f, MethodSpec m, float lr, double acc, double loss = 1) => new(f, m, lr, acc, 0, loss);
        var g = new UuidGrid([1e-3f, 3e-3f], [1e-3f, 1e-2f], 1,
        [
            E(1e-3f, fft, 1e-3f, 0.90), E(1e-3f, fft, 1e-2f, 0.95), E(1e-3f, lora, 1e-3f, 0.60), E(1e-3f, lora, 1e-2f, 0.50),
            // Higher best accuracy for FFT, but a lower mean of the methods' best (0.99 + 0.40 < 0.95 + 0.60).
            E(3e-3f, fft, 1e-3f, 0.99), E(3e-3f, fft, 1e-2f, 0.97), E(3e-3f, lora, 1e-3f, 0.40), E(3e-3f, lora, 1e-2f, 0.40, loss: 0.5),
        ]);
        Assert.Equal(0.775, g.Score(1e-3f), 12);
        Assert.Equal(0.695, g.Score(3e-3f), 12);
        Assert.Equal(1e-3f, g.ChosenFormatLr);
        Assert.Equal(1e-2f, g.ChosenLrs["fft"]);
        Assert.Equal(1e-3f, g.ChosenLrs["lora:8"]);
        Assert.Equal(1e-2f, g.Best(3e-3f, lora).Lr);   // a tie in accuracy goes to the lower loss
        var applied = g.Apply(TinySettings(1) with { GridFormatLrs = [1e-3f, 3e-3f] });
        Assert.Null(applied.GridFormatLrs);
        Assert.Equal(1e-3f, applied.FormatLr);
        Assert.Equal(1e-3f, applied.LearningRates.For(lora));
    }

    [Fact]
    public void Grid_TriesEveryRateForEveryMethod_ThenRunsTheChoice()
    {
        var s = TinySettings(3) with { GridFormatLrs = [1e-3f, 3e-3f], GridLrs = [1e-3f, 1e-2f], Methods = MethodSpec.ParseList("fft,lora:2") };
        var r = UuidExperiment.Run(s);
        var g = Assert.IsType<UuidGrid>(r.Grid);
        Assert.Equal(2 * 2 * 2, g.Entries.Count);
        Assert.Equal(g.ChosenFormatLr, r.Settings.FormatLr);
        foreach (var run in r.Runs) Assert.Equal(g.ChosenLrs[run.Method.Spec], run.LearningRate);
        // The grid cell that matches the final run's settings is the same run.
        var cell = g.Entries.Single(e => e.FormatLr == g.ChosenFormatLr && e.Method.Spec == "lora:2" && e.Lr == g.ChosenLrs["lora:2"]);
        Assert.Equal(cell.CharAccuracy, r.Runs[1].Final.CharAccuracy);
        using var doc = JsonDocument.Parse(r.ToJson());
        var grid = doc.RootElement.GetProperty("grid");
        Assert.Equal(8, grid.GetProperty("runs").GetArrayLength());
        Assert.Equal(g.ChosenFormatLr, grid.GetProperty("chosen").GetProperty("format_lr").GetSingle());
    }
}
