using MoraEngine.Cli;
using Xunit;

namespace MoraEngine.Tests;

[CollectionDefinition("Console", DisableParallelization = true)]
public class ConsoleCollection;

[Collection("Console")]
public class CliTests
{
    private static (int Code, string Out) Run(params string[] args)
    {
        var old = Console.Out;
        var sw = new StringWriter();
        Console.SetOut(sw);
        try
        {
            var code = MoraCli.Build().Parse(args).Invoke();
            return (code, sw.ToString());
        }
        finally
        {
            Console.SetOut(old);
        }
    }

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
            var (code2, _) = Run("train", "--steps", "8", "--batch", "4", "--copy-length", "4", "--out", dir, "--resume");
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
    public void BadInput_IsOneLineErrorWithExitCode2()
    {
        Assert.Equal(2, Run("train", "--text", "/nonexistent/file.txt", "--steps", "1").Code);
        Assert.Equal(2, Run("train", "--steps", "0").Code);
        Assert.Equal(2, Run("bench", "step", "--config", "no-such-preset").Code);
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
