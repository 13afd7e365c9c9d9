using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using MoraEngine.Examples.Paper;
using Xunit;

namespace MoraEngine.Tests.Paper;

/// <summary>The paper suite end to end at the tiny preset: files, schema, seeds, grid, cache and the command.</summary>
[Collection("Console")]
public sealed class PaperSuiteTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "mora-paper-" + Guid.NewGuid().ToString("N")[..8]);

    public PaperSuiteTests()
    {
        Directory.CreateDirectory(_dir);
        // A general text of 240 varied paragraphs (about 30 kB): no SDK needed, the same on every machine.
        var rng = new Rng(5);
        string[] words = ["the", "method", "returns", "a", "value", "that", "indicates", "whether", "stream", "buffer", "is", "empty", "when", "called", "on", "array", "index", "string", "of", "type", "object", "null", "specified", "element"];
        var sb = new StringBuilder();
        for (var p = 0; p < 240; p++)
        {
            for (var w = 0; w < 20; w++) sb.Append(words[rng.NextInt(words.Length)]).Append(w == 19 ? ".\n" : " ");
            sb.Append('\n');
        }
        File.WriteAllText(TextPath, sb.ToString());
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }

    private string TextPath => Path.Combine(_dir, "general.txt");

    private PaperSettings Tiny(PaperExperiment e) => PaperSettings.For(e, "tiny") with { TextFile = TextPath, CacheDir = Path.Combine(_dir, "cache"), Device = "cpu" };

    [Fact]
    public void Pretrain_WritesTheSchema_RunsEveryGridCellAndSeed_AndVerdictIsOneOfThree()
    {
        var s = Tiny(PaperExperiment.Pretrain);
        var r = PaperSuite.Run(s);
        Assert.Equal(s.Methods.Count * (s.GridLrs.Length + s.Seeds), r.Runs.Count);
        Assert.Equal(s.Methods.Count, r.Grid.Count);
        foreach (var g in r.Grid) Assert.Equal(g.Lrs[Array.IndexOf(g.FinalValLoss, g.FinalValLoss.Min())], g.Chosen);

        var out1 = Path.Combine(_dir, "out");
        var files = PaperReport.Write(r, out1);
        foreach (var name in new[] { "results.json", "curves.csv", "report.md", "curves.svg" })
            Assert.Contains(Path.Combine(out1, name), files);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(out1, "results.json")));
        var root = doc.RootElement;
        Assert.Equal("pretrain", root.GetProperty("experiment").GetString());
        Assert.Equal(s.Seeds, root.GetProperty("settings").GetProperty("seeds").GetInt32());
        Assert.Equal(s.GridLrs.Length, root.GetProperty("settings").GetProperty("grid_lrs").GetArrayLength());
        var runs = root.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(r.Runs.Count, runs.Count);
        foreach (var run in runs)
        {
            var method = run.GetProperty("method").GetString();
            Assert.Contains(method, new[] { "fft", "lora", "mora", "relora", "remora" });
            Assert.True(run.GetProperty("trainable_params").GetInt64() > 0);
            Assert.Equal(method is "fft" ? JsonValueKind.Null : JsonValueKind.Number, run.GetProperty("rank").ValueKind);
            Assert.Equal(method is "mora" or "remora" ? JsonValueKind.Number : JsonValueKind.Null, run.GetProperty("mora_type").ValueKind);
            var curve = run.GetProperty("curve").EnumerateArray().ToList();
            Assert.Equal(0, curve[0].GetProperty("step").GetInt32());
            Assert.Equal(s.Steps, curve[^1].GetProperty("step").GetInt32());
            Assert.Equal(curve[^1].GetProperty("val_loss").GetDouble(), run.GetProperty("final_val_loss").GetDouble());
            Assert.True(run.TryGetProperty("seed", out _));
            Assert.True(run.GetProperty("spectra").GetProperty("mean_count").GetDouble() > 0);
        }
        // The final seeds are Seed .. Seed + Seeds − 1 for every method; the grid has its own seed.
        foreach (var m in s.Methods)
            Assert.Equal(Enumerable.Range(0, s.Seeds).Select(k => s.Seed + (ulong)k), r.Final("pretrain", m.Name).Select(x => x.Seed));
        Assert.All(r.Runs.Where(x => x.Phase == "grid"), x => Assert.Equal(s.GridSeed, x.Seed));
        // Equal budgets: MoRA's adapters within 2.5% of LoRA's.
        var lora = r.Final("pretrain", "lora")[0].AdapterParams;
        var mora = r.Final("pretrain", "mora")[0].AdapterParams;
        Assert.InRange(Math.Abs(mora - lora) / (double)lora, 0, 0.025);
        var claim = Assert.Single(root.GetProperty("claims").EnumerateArray());
        Assert.Contains(claim.GetProperty("verdict").GetString(), new[] { "supported", "not supported", "inconclusive" });
        Assert.False(string.IsNullOrWhiteSpace(claim.GetProperty("evidence").GetString()));
        var csv = File.ReadAllLines(Path.Combine(out1, "curves.csv"));
        Assert.Equal("experiment,setup,phase,method,spec,lr,seed,step,val_loss", csv[0]);
        Assert.Equal(r.Runs.Sum(x => x.Curve.Count), csv.Length - 1);
        XDocument.Parse(File.ReadAllText(Path.Combine(out1, "curves.svg")));
        var report = File.ReadAllText(Path.Combine(out1, "report.md"));
        Assert.Contains("Verdict at this scale", report);
        Assert.Contains("Learning-rate grid", report);

        // Spectra reuse the pretraining runs from the cache: same numbers, nothing trained.
        var spectra = PaperSuite.Run(Tiny(PaperExperiment.Spectra));
        Assert.Equal(r.Final("pretrain", "mora").Select(x => x.Spectra!.MeanCount), spectra.Final("pretrain", "mora").Select(x => x.Spectra!.MeanCount));
        Assert.Equal("spectra", Assert.Single(spectra.Claims).Id);
        var files2 = PaperReport.Write(spectra, Path.Combine(_dir, "spectra"));
        XDocument.Parse(File.ReadAllText(Assert.Single(files2, f => f.EndsWith("spectra.svg", StringComparison.Ordinal))));
        // LoRA's ΔW has rank at most r in every layer.
        Assert.All(spectra.Final("pretrain", "lora").SelectMany(x => x.Spectra!.Layers), l => Assert.InRange(l.Count, 1, s.Rank));
    }

    [Fact]
    public void Runs_AreDeterministic_AndTheCacheReturnsThemUnchanged()
    {
        var s = Tiny(PaperExperiment.Pretrain) with { Methods = Training.MethodSpec.ParseList("lora:4,relora:4,mora:4:1,remora:4:1"), Seeds = 1, GridLrs = [1e-2f] };
        var a = PaperSuite.Run(s with { CacheDir = null });
        var b = PaperSuite.Run(s with { CacheDir = null });
        Assert.Equal(a.Runs.Select(x => x.FinalValLoss), b.Runs.Select(x => x.FinalValLoss));
        var cached1 = PaperSuite.Run(s);
        var cached2 = PaperSuite.Run(s);
        Assert.Equal(cached1.Runs.Select(x => x.FinalValLoss), cached2.Runs.Select(x => x.FinalValLoss));
        Assert.Equal(a.Runs.Select(x => x.FinalValLoss), cached2.Runs.Select(x => x.FinalValLoss));
        Assert.Equal(s.Methods.Count * 2, Directory.GetFiles(Path.Combine(s.CacheDir!, "runs"), "*.json").Length);
        // Another seed gives other numbers.
        var other = PaperSuite.Run(s with { Seed = 7, CacheDir = null });
        Assert.NotEqual(a.Final("pretrain", "lora")[0].FinalValLoss, other.Final("pretrain", "lora")[0].FinalValLoss);
    }

    [Fact]
    public void AnInterruptedSuite_KeepsItsFinishedRuns_AndTheSameCommandContinuesFromThem()
    {
        var s = Tiny(PaperExperiment.Pretrain) with { Seeds = 1, GridLrs = [1e-2f] };
        using var cts = new CancellationTokenSource();
        var finished = 0;
        var progress = new Reporter(p =>
        {
            if (p.Done && ++finished == 3) cts.Cancel();   // stop during the fourth run
        });
        Assert.ThrowsAny<OperationCanceledException>(() => PaperSuite.Run(s, progress, cts.Token));
        Assert.Equal(3, Directory.GetFiles(Path.Combine(s.CacheDir!, "runs"), "*.json").Length);
        Assert.Empty(Directory.GetFiles(Path.Combine(s.CacheDir!, "runs"), "*.tmp-*"));
        var cached = 0;
        var r = PaperSuite.Run(s, new Reporter(p => cached += p.Cached ? 1 : 0));
        Assert.Equal(3, cached);
        Assert.Equal(s.Methods.Count * 2, r.Runs.Count);
        // A damaged cache entry is trained again rather than trusted.
        var entry = Directory.GetFiles(Path.Combine(s.CacheDir!, "runs"), "*.json")[0];
        File.WriteAllText(entry, "{ not json");
        cached = 0;
        var again = PaperSuite.Run(s, new Reporter(p => cached += p.Cached ? 1 : 0));
        Assert.Equal(r.Runs.Count - 1, cached);
        Assert.Equal(r.Runs.Select(x => x.FinalValLoss), again.Runs.Select(x => x.FinalValLoss));
    }

    private sealed class Reporter(Action<PaperProgress> report) : IProgress<PaperProgress>
    {
        public void Report(PaperProgress value) => report(value);
    }

    [Fact]
    public void EveryPreset_IsValid_ForEveryExperiment()
    {
        foreach (var preset in new[] { "default", "full", "tiny" })
            foreach (var e in Enum.GetValues<PaperExperiment>())
            {
                var s = PaperSettings.For(e, preset);
                s.Validate();
                Assert.All(s.RequiredKinds, k => Assert.Contains(s.Methods, m => m.Name == k));
            }
        Assert.Equal(PaperSettings.For(PaperExperiment.Pretrain).GridLrs, PaperSettings.For(PaperExperiment.Spectra).GridLrs);
    }

    [Fact]
    public void TheGpuKernels_OnIlgpusCpuAccelerator_GiveTheSameRunsAsTheCpu()
    {
        // Restarts, merges, evaluation and spectra through the device path (what --device cuda runs).
        var s = Tiny(PaperExperiment.Spectra) with { Seeds = 1, GridLrs = [1e-2f], Steps = 2, EvalEvery = 2, RestartEvery = 1, Batch = 2, EvalRows = 2, Time = 32, CacheDir = null };
        var cpu = PaperSuite.Run(s);
        var gpu = PaperSuite.Run(s with { Device = "ilgpu-cpu" });
        foreach (var (a, b) in cpu.Runs.Zip(gpu.Runs))
        {
            Assert.Equal(a.Method, b.Method);
            Assert.Equal(a.FinalValLoss, b.FinalValLoss, 3e-4);
            Assert.Equal(a.Spectra!.Layers.Select(l => l.Count), b.Spectra!.Layers.Select(l => l.Count));
        }
    }

    [Fact]
    public void Continual_And_Tasks_ReportClozeForgettingAndAccuracy()
    {
        var c = PaperSuite.Run(Tiny(PaperExperiment.Continual));
        Assert.NotNull(c.Base);
        foreach (var run in c.Runs.Where(x => x.Phase == "final"))
        {
            Assert.InRange(run.Metrics["cloze_accuracy"], 0, 1);
            Assert.True(double.IsFinite(run.Metrics["forgetting"]));
            Assert.Equal(run.Metrics["general_val_loss"] - c.Base!.GeneralValLoss, run.Metrics["forgetting"], 9);
        }
        Assert.Equal(0, c.Final("continual", "lora")[0].TrainableParams - c.Final("continual", "lora")[0].AdapterParams);
        Assert.Equal("continual", Assert.Single(c.Claims).Id);
        PaperReport.Write(c, Path.Combine(_dir, "continual"));

        var t = PaperSuite.Run(Tiny(PaperExperiment.Tasks));
        Assert.True(t.Base!.Cached);   // the same base as the continual experiment
        Assert.Equal(PaperTasks.Names.Select(n => "task:" + n), t.Setups);
        foreach (var run in t.Runs.Where(x => x.Phase == "final")) Assert.InRange(run.Metrics["accuracy"], 0, 1);
        var files = PaperReport.Write(t, Path.Combine(_dir, "tasks"));
        Assert.Equal(PaperTasks.Names.Count, files.Count(f => Path.GetFileName(f).StartsWith("curves-", StringComparison.Ordinal)));
        Assert.Contains(Assert.Single(t.Claims).Verdict, new[] { Verdict.Supported, Verdict.NotSupported, Verdict.Inconclusive });
    }

    [Fact]
    public void Command_RunsAllExperiments_AndRejectsBadOptionsWithOneLine()
    {
        var outDir = Path.Combine(_dir, "all");
        var (code, output) = CliRunner.Run("paper", "all", "--preset", "tiny", "--text", TextPath, "--out", outDir, "--cache-dir", Path.Combine(_dir, "cli-cache"), "--device", "cpu");
        Assert.True(code == 0, output);
        foreach (var e in new[] { "pretrain", "spectra", "continual", "tasks" })
            Assert.True(File.Exists(Path.Combine(outDir, e, "results.json")), e);
        var summary = File.ReadAllText(Path.Combine(outDir, "summary.md"));
        Assert.Contains("pretrain/report.md", summary);

        var bad = Path.Combine(_dir, "bad");
        Assert.Equal(2, CliRunner.Run("paper", "pretrain", "--preset", "tiny", "--text", TextPath, "--methods", "fft,lora:4", "--out", bad).Code);
        Assert.Equal(2, CliRunner.Run("paper", "tasks", "--preset", "huge", "--out", bad).Code);
        Assert.Equal(2, CliRunner.Run("paper", "continual", "--preset", "tiny", "--text", Path.Combine(_dir, "missing.txt"), "--out", bad).Code);
        Assert.Equal(2, CliRunner.Run("paper", "pretrain", "--preset", "tiny", "--text", TextPath, "--grid-lrs", "1e-3,-1", "--out", bad).Code);
        Assert.Equal(2, CliRunner.Run("paper", "pretrain", "--preset", "tiny", "--text", TextPath, "--corpus", _dir, "--out", bad).Code);
        Assert.Equal(2, CliRunner.Run("paper", "pretrain", "--preset", "tiny", "--text", TextPath, "--rank", "64", "--out", bad).Code);

        // The messages name the problem.
        var tiny = Tiny(PaperExperiment.Pretrain);
        Assert.Contains("'relora' is missing", Assert.Throws<ArgumentException>(() => (tiny with { Methods = Training.MethodSpec.ParseList("fft,lora:4") }).Validate()).Message);
        Assert.Contains("--preset", Assert.Throws<ArgumentException>(() => PaperSettings.For(PaperExperiment.Tasks, "huge")).Message);
        Assert.Contains("r̂", Assert.Throws<ArgumentException>(() => (tiny with { Methods = Training.MethodSpec.ParseList("fft,lora:64,relora:64,mora:64:1,remora:64:1") }).Validate()).Message);
        Assert.Contains("--warmup", Assert.Throws<ArgumentException>(() => (tiny with { Warmup = 100 }).Validate()).Message);
        Assert.Contains("missing.txt", Assert.Throws<FileNotFoundException>(() => PaperSuite.Run(tiny with { TextFile = Path.Combine(_dir, "missing.txt") })).Message);
        Assert.False(Directory.Exists(Path.Combine(_dir, "bad")));
    }
}
