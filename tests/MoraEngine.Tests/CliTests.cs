using MoraEngine.Cli;
using Xunit;

namespace MoraEngine.Tests;

[CollectionDefinition("Console", DisableParallelization = true)]
public class ConsoleCollection;

[Collection("Console")]
public class CliTests
{
    private static (int Code, string Out) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void Train_CopyTask_WritesCheckpointAndWeights_ThenResumes()
    {
        var dir = Directory.CreateTempSubdirectory("mora-cli").FullName;
        try
        {
            var (code, _) = Run("train", "--steps", "6", "--batch", "4", "--copy-length", "4", "--checkpoint-every", "3", "--out", dir);
            Assert.Equal(0, code);
            Assert.True(File.Exists(Path.Combine(dir, "checkpoint.safetensors")));
            Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
            Assert.Contains("\"d_model\"", File.ReadAllText(Path.Combine(dir, "config.json")));
            var (code2, _) = Run("train", "--steps", "8", "--batch", "4", "--copy-length", "4", "--out", dir, "--resume", "--extend");
            Assert.Equal(0, code2);
            var step = MoraEngine.IO.Safetensors.Load(Path.Combine(dir, "checkpoint.safetensors")).Metadata["step"];
            Assert.Equal("8", step);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Train_Diverging_ExitsNonZero_AndKeepsTheLastGoodCheckpoint()
    {
        var dir = Directory.CreateTempSubdirectory("mora-cli").FullName;
        try
        {
            var (code, _) = Run("train", "--steps", "30", "--batch", "4", "--copy-length", "4", "--lr", "1e30", "--warmup", "0", "--checkpoint-every", "1", "--out", dir);
            Assert.Equal(3, code);
            Assert.False(File.Exists(Path.Combine(dir, "model.safetensors")));
            // The first step starts from finite weights, so at least its checkpoint exists; it holds no NaN or Inf.
            var ckpt = Path.Combine(dir, "checkpoint.safetensors");
            Assert.True(File.Exists(ckpt));
            foreach (var t in MoraEngine.IO.Safetensors.Load(ckpt).Tensors.Values)
                Assert.All(t.Data, v => Assert.True(float.IsFinite(v), $"{t.Name} holds a non-finite value"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void BadInput_IsOneLineErrorWithExitCode2()
    {
        Assert.Equal(2, Run("train", "--text", "/nonexistent/file.txt", "--steps", "1").Code);
        Assert.Equal(2, Run("train", "--steps", "0").Code);
        Assert.Equal(2, Run("train", "--steps", "1", "--lr", "NaN").Code);
        Assert.Equal(2, Run("train", "--steps", "1", "--lr", "Infinity").Code);
        Assert.Equal(2, Run("bench", "step", "--config", "no-such-preset").Code);
    }

    /// <summary>
    /// <c>bench step --against</c> times a second set-up in the same process: both medians, and the per-step differences'
    /// and ratios with their quartiles, in order, with no buffer allocated while the steps are timed; the method itself
    /// or an unknown one is refused.
    /// </summary>
    [Fact]
    public void BenchStep_Against_ReportsThePairedDifference()
    {
        var (code, output) = Run("bench", "step", "--config", "small-cpu", "--batch", "2", "--seq", "16", "--method", "lora", "--against", "frozen",
            "--steps", "5", "--warmup", "1", "--device", "cpu", "--json");
        Assert.Equal(0, code);
        using var doc = System.Text.Json.JsonDocument.Parse(output.Trim());
        var e = doc.RootElement;
        double D(string name) => e.GetProperty(name).GetDouble();
        Assert.Equal("lora", e.GetProperty("method").GetString());
        Assert.Equal("frozen", e.GetProperty("against").GetString());
        Assert.True(D("against_min_ms") > 0 && D("against_min_ms") <= D("against_ms_per_step"));
        Assert.True(D("delta_q25_ms") <= D("delta_ms") && D("delta_ms") <= D("delta_q75_ms"), output);
        Assert.True(D("ratio") > 0 && D("ratio_q25") <= D("ratio") && D("ratio") <= D("ratio_q75"), output);
        // A step that trains the adapters does more than the floor's: the ratio cannot sit far below 1.
        Assert.True(D("ratio_q75") > 0.5, output);
        // The two models' buffers are both kept: nothing is allocated once the steps are timed.
        Assert.Equal(e.GetProperty("pool_buffers_after_warmup").GetInt64(), e.GetProperty("pool_buffers_at_end").GetInt64());
        Assert.Equal(2, Run("bench", "step", "--config", "small-cpu", "--method", "lora", "--against", "lora").Code);
        Assert.Equal(2, Run("bench", "step", "--config", "small-cpu", "--method", "lora", "--against", "nonsense").Code);
    }

    [Fact]
    public void BenchOps_Json_TimesEveryOp()
    {
        var (code, output) = Run("bench", "ops", "--config", "tiny", "--batch", "2", "--repeats", "1", "--device", "cpu", "--json");
        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // 10 ops, then 3 layer shapes × (frozen, LoRA, MoRA types 1 and 6).
        Assert.Equal(22, lines.Length);
        foreach (var line in lines)
        {
            using var doc = System.Text.Json.JsonDocument.Parse(line);
            Assert.Equal("ops", doc.RootElement.GetProperty("benchmark").GetString());
            Assert.True(doc.RootElement.GetProperty("ms").GetDouble() > 0);
            Assert.True(doc.RootElement.GetProperty("min_ms").GetDouble() <= doc.RootElement.GetProperty("ms").GetDouble());
        }
        Assert.Contains("mora type 6", output);
        Assert.Contains("MoRA type 6", output); // the adapted layers (the ops are lowercase)
        Assert.Contains("frozen (floor)", output);
    }

    [Fact]
    public void BenchGemm_Json_IsOneObjectPerLine()
    {
        var (code, output) = Run("bench", "gemm", "--size", "64", "96", "--repeats", "1", "--json");
        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var doc = System.Text.Json.JsonDocument.Parse(lines[1]);
        Assert.Equal("gemm", doc.RootElement.GetProperty("benchmark").GetString());
        Assert.Equal(96, doc.RootElement.GetProperty("size").GetInt32());
        Assert.True(doc.RootElement.GetProperty("gflops").GetDouble() > 0);
    }
}

[Collection("Console")]
public class CliAdapterTests
{
    private static int Run(params string[] args) => CliRunner.Run(args).Code;

    [Fact]
    public void FineTuneWithMora_ThenMergeAndAnalyze()
    {
        var dir = Directory.CreateTempSubdirectory("mora-cli-adapter").FullName;
        try
        {
            var baseDir = Path.Combine(dir, "base");
            Assert.Equal(0, Run("train", "--steps", "4", "--batch", "4", "--copy-length", "4", "--out", baseDir));
            var baseModel = Path.Combine(baseDir, "model.safetensors");
            var ftDir = Path.Combine(dir, "ft");
            Assert.Equal(0, Run("train", "--init", baseModel, "--method", "mora", "--rank", "2", "--mora-type", "1",
                "--steps", "5", "--batch", "4", "--copy-length", "4", "--out", ftDir, "--checkpoint-every", "2"));
            // ReMoRA restarts run too (their adapter then holds only the update since the last restart).
            Assert.Equal(0, Run("train", "--init", baseModel, "--method", "mora", "--rank", "2", "--restart-every", "2",
                "--steps", "5", "--batch", "4", "--copy-length", "4", "--out", Path.Combine(dir, "remora")));
            var adapterDir = Path.Combine(ftDir, "adapter");
            Assert.True(File.Exists(Path.Combine(adapterDir, "adapter_config.json")));

            // The merged model written by merge equals the fine-tuned model written by train.
            var merged = Path.Combine(dir, "merged.safetensors");
            Assert.Equal(0, Run("merge", "--model", baseModel, "--adapter", adapterDir, "--out", merged));
            var a = MoraEngine.IO.Safetensors.Load(merged);
            var b = MoraEngine.IO.Safetensors.Load(Path.Combine(ftDir, "model.safetensors"));
            var w = "blocks.0.attn.q.weight";
            var wa = a.Get(w).Data;
            var wb = b.Get(w).Data;
            for (var i = 0; i < wa.Length; i++) Assert.Equal(wb[i], wa[i], 5);

            var json = Path.Combine(dir, "spectra.json");
            Assert.Equal(0, Run("analyze", "--model", baseModel, "--adapter", adapterDir, "--json", json));
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
            Assert.Equal("mora", doc.RootElement.GetProperty("method").GetString());
            Assert.True(doc.RootElement.GetProperty("layers").GetArrayLength() > 0);

            Assert.Equal(2, Run("merge", "--model", baseModel, "--adapter", Path.Combine(dir, "missing"), "--out", merged));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
