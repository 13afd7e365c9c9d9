using System.Text.Json;
using MoraEngine.Cli;
using Xunit;

namespace MoraEngine.Tests.Generators;

[Collection("Console")]
public class KernelCliTests
{
    private static (int Code, string Out) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void Info_ListsLoadedSpecialisations()
    {
        // `mora info` prints this list in its table (through Spectre.Console, which does not write to Console.Out).
        var lines = MoraEngine.Cli.Commands.InfoCommand.MoraKernels().ToArray();
        Assert.Contains("specialisations loaded", lines[0]);
        Assert.Contains("512 → 2048, r̂ 143, type 1 Sharing (cpu, ilgpu)", lines);
        Assert.Equal(MoraEngine.Adapters.MoraKernelRegistry.Loaded.Count + 1, lines.Length);
    }

    [Fact]
    public void BenchKernels_Json_IsOneObjectPerCase()
    {
        var (code, output) = Run("bench", "kernels", "--tokens", "16", "--repeats", "1", "--json");
        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(6, lines.Length);
        using var doc = JsonDocument.Parse(lines[0]);
        var e = doc.RootElement;
        Assert.Equal("kernels", e.GetProperty("benchmark").GetString());
        Assert.Equal(512, e.GetProperty("in").GetInt32());
        Assert.Equal(2048, e.GetProperty("out").GetInt32());
        Assert.Equal(8, e.GetProperty("rank").GetInt32());
        Assert.Equal(1, e.GetProperty("mora_type").GetInt32());
        Assert.Equal(16, e.GetProperty("tokens").GetInt32());
        foreach (var f in new[] { "generic_us", "specialised_us", "lora_us", "kernels_generic_us", "kernels_specialised_us",
                     "kernels_hot_generic_us", "kernels_hot_specialised_us", "stream_gbps", "kernels_floor_us" })
            Assert.True(e.GetProperty(f).GetDouble() > 0, f);
        Assert.True(e.GetProperty("specialised").GetBoolean());
        Assert.Equal("cpu", e.GetProperty("device").GetString());
    }

    [Fact]
    public void BenchGemm_Tf32_NeedsAGpu() => Assert.Equal(2, Run("bench", "gemm", "--size", "8", "--device", "cpu", "--tf32").Code);

    [Fact]
    public void BenchKernels_RejectsAnUnknownDevice() => Assert.Equal(2, Run("bench", "kernels", "--device", "tpu", "--json").Code);

    [Fact]
    public void BenchKernels_RejectsBadArguments() => Assert.Equal(2, Run("bench", "kernels", "--tokens", "0").Code);
}
