using MoraEngine.Adapters;
using MoraEngine.Autograd;
using MoraEngine.IO;
using MoraEngine.Nn;
using Xunit;

namespace MoraEngine.Tests.HfModels;

/// <summary>
/// PEFT-format adapters (LoRA on GPT-2's Conv1D layers and on LLaMA, MoRA types 1 and 6 in the official MoRA code's
/// layout) on the HF fixtures give the logits that the reference forward computed (bench/hf/make_peft_fixtures.py).
/// </summary>
public class PeftAdapterTests
{
    public static TheoryData<string, string> Cases() => new()
    {
        { "gpt2-lora", "gpt2-tiny" },
        { "llama-lora", "llama-tiny-gqa" },
        { "llama-mora1", "llama-tiny-gqa" },
        { "gpt2-mora6", "gpt2-tiny" },
    };

    private static string AdapterDir(string name) => Path.Combine(AppContext.BaseDirectory, "TestData", "hf", "adapters", name);

    private static float[] Logits(TransformerModel m, int[] ids)
    {
        using var _ = Graph.NoGrad();
        using var scope = MemoryScope.Begin();
        m.Eval();
        return m.Forward(ids, 2, 16).ToArray();
    }

    private static float MaxDiff(float[] a, float[] b) => a.Zip(b, (x, y) => MathF.Abs(x - y)).Max();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Adapter_GivesTheReferenceLogits_AttachedAndMerged(string adapter, string baseModel)
    {
        var reference = Safetensors.Load(Path.Combine(AdapterDir(adapter), "reference.safetensors"));
        var ids = reference.Get("input_ids").Data.Select(v => (int)v).ToArray();
        var want = reference.Get("logits").Data;
        var m = HuggingFace.Load(HfFixtures.Dir(baseModel));
        var plain = Logits(m, ids);
        Assert.True(MaxDiff(want, plain) > 1e-3f, "the adapter must change the output");
        var adapted = AdaptedModel.Load(AdapterDir(adapter), m);
        Assert.Equal(adapter.Contains("mora") ? AdapterMethod.Mora : AdapterMethod.Lora, adapted.Config.Method);
        var got = Logits(m, ids);
        Assert.True(MaxDiff(want, got) <= 5e-6f, $"{adapter}: max |Δ| {MaxDiff(want, got):G3}");
        adapted.Merge();
        Assert.True(MaxDiff(want, Logits(m, ids)) <= 5e-6f, $"{adapter} merged: max |Δ| {MaxDiff(want, Logits(m, ids)):G3}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Adapter_SavedAgain_KeepsPeftKeys_AndLoadsBack(string adapter, string baseModel)
    {
        var m = HuggingFace.Load(HfFixtures.Dir(baseModel));
        var adapted = AdaptedModel.Load(AdapterDir(adapter), m);
        var dir = Directory.CreateTempSubdirectory("mora-peft").FullName;
        try
        {
            adapted.Save(dir);
            var original = Safetensors.ReadHeader(Path.Combine(AdapterDir(adapter), "adapter_model.safetensors"));
            var saved = Safetensors.ReadHeader(Path.Combine(dir, "adapter_model.safetensors"));
            Assert.Equal(original.Keys.Order(), saved.Keys.Order());
            foreach (var k in original.Keys) Assert.Equal(original[k].Shape, saved[k].Shape);
            var cfg = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json"))).RootElement;
            Assert.Equal(baseModel.StartsWith("gpt2", StringComparison.Ordinal), cfg.GetProperty("fan_in_fan_out").GetBoolean());
            var again = HuggingFace.Load(HfFixtures.Dir(baseModel));
            AdaptedModel.Load(dir, again);
            var ids = Enumerable.Range(0, 32).Select(i => i * 11 % 512).ToArray();
            Assert.Equal(Logits(m, ids), Logits(again, ids));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
