using MoraEngine.IO;
using Xunit;

namespace MoraEngine.Tests.HfModels;

/// <summary>The tiny HF models in TestData/hf and the outputs their reference implementations produced.</summary>
internal static class HfFixtures
{
    public static readonly string[] Names = ["gpt2-tiny", "gpt2-tiny-noprefix-f16", "llama-tiny-gqa", "llama-tiny-tied-bf16-sharded"];

    public static string Dir(string name)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "TestData", "hf", name);
        Assert.True(Directory.Exists(dir), $"fixture {dir} is missing (bench/hf/make-hf-fixtures.sh writes it)");
        return dir;
    }

    public sealed record Reference(int[] Ids, int Batch, int Time, float[] Logits, float Loss, int[] GreedyPrompt, int[] GreedyIds);

    public static Reference Load(string name)
    {
        var f = Safetensors.Load(Path.Combine(Dir(name), "reference.safetensors"));
        var ids = f.Get("input_ids");
        return new Reference(
            ids.Data.Select(v => (int)v).ToArray(), ids.Shape[0], ids.Shape[1], f.Get("logits").Data, f.Get("loss").Data[0],
            f.Get("greedy_prompt").Data.Select(v => (int)v).ToArray(), f.Get("greedy_ids").Data.Select(v => (int)v).ToArray());
    }

    /// <summary>A copy of a fixture in a fresh temporary directory, for tests that corrupt it.</summary>
    public static string CopyToTemp(string name)
    {
        var dst = Path.Combine(Path.GetTempPath(), "mora-hf-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(Dir(name))) File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
        return dst;
    }
}
