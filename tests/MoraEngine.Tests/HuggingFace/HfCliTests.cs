using System.Text.Json;
using MoraEngine.Cli;
using MoraEngine.IO;
using MoraEngine.Text;
using Xunit;

namespace MoraEngine.Tests.HfModels;

/// <summary>The README's "Fine-tune a Hugging Face model" commands, end to end on the fixtures.</summary>
[Collection("Console")]
public class HfCliTests
{
    private static (int Code, string Out) Run(params string[] args) => CliRunner.Run(args);

    private const string Text = """
        The quick brown fox jumps over the lazy dog. A small model learns the shape of words before their meaning.
        Tokens go in, logits come out, and the loss says how surprised the model was by the next token.
        Low-rank adapters train a few parameters; high-rank updates train the same number in a square matrix.
        """;

    [Theory]
    [InlineData("gpt2-tiny")]
    [InlineData("llama-tiny-gqa")]
    public void Generate_Json_GivesTheReferenceGreedyIds(string fixture)
    {
        // The reference continued its prompt ids; decode them to text and let generate encode it again.
        var r = HfFixtures.Load(fixture);
        var dir = HfFixtures.Dir(fixture);
        var tok = HfTokenizer.FromDirectory(dir);
        var promptIds = r.GreedyPrompt;
        if (fixture.StartsWith("llama", StringComparison.Ordinal))
        {
            // Compare on an encoded prompt: BOS plus the ids of a text.
            promptIds = [1, .. tok.Encode("the lazy dog")];
        }
        var prompt = tok.Decode(promptIds.Where(i => i != tok.BosId).ToArray());
        var (code, output) = Run("generate", "--model", dir, "--prompt", prompt, "--max-new-tokens", "6", "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output.Trim());
        var gotPrompt = doc.RootElement.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(tok.Encode(prompt), gotPrompt.Where((_, i) => !(i == 0 && gotPrompt[0] == tok.BosId && tok.BosId != tok.EosId)).ToArray());
        // Same ids as the library's own generator on the same prompt ids.
        var m = HuggingFace.Load(dir);
        var want = new MoraEngine.Generation.TextGenerator(m).Generate(gotPrompt, new() { MaxNewTokens = 6, EosTokenId = tok.EosId }).ToArray();
        Assert.Equal(want, ids);
        Assert.Equal(tok.Decode(ids.Where(i => i != tok.EosId).ToArray()), doc.RootElement.GetProperty("text").GetString());
        if (fixture == "gpt2-tiny") Assert.Equal(r.GreedyIds[..6], new MoraEngine.Generation.TextGenerator(m).Generate(r.GreedyPrompt, new() { MaxNewTokens = 6, EosTokenId = -1 }).ToArray());
    }

    [Fact]
    public void Eval_Json_MatchesTheLibrary()
    {
        var dir = HfFixtures.Dir("gpt2-tiny");
        var tmp = Directory.CreateTempSubdirectory("mora-hf-eval").FullName;
        try
        {
            var path = Path.Combine(tmp, "t.txt");
            File.WriteAllText(path, Text);
            var (code, output) = Run("eval", "--model", dir, "--text", path, "--context", "16", "--json");
            Assert.Equal(0, code);
            using var doc = JsonDocument.Parse(output.Trim());
            var tok = HfTokenizer.FromDirectory(dir);
            var ids = tok.Encode(Text);
            var want = MoraEngine.Training.Perplexity.Evaluate(HuggingFace.Load(dir), ids, 16, 1);
            Assert.Equal(ids.Length, doc.RootElement.GetProperty("tokens").GetInt64());
            Assert.Equal(want.Loss, doc.RootElement.GetProperty("loss").GetDouble(), 5);
            Assert.Equal(1.0, doc.RootElement.GetProperty("perplexity").GetDouble() / Math.Exp(want.Loss), 5);
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Theory]
    [InlineData("gpt2-tiny", "lora", "c_attn,c_proj")]
    [InlineData("llama-tiny-gqa", "mora", "q_proj,v_proj")]
    public void FineTune_Jsonl_SavesAPeftAdapter_ThatEvalGenerateAndMergeUse(string fixture, string method, string targets)
    {
        var dir = HfFixtures.Dir(fixture);
        var tmp = Directory.CreateTempSubdirectory("mora-hf-ft").FullName;
        try
        {
            var jsonl = Path.Combine(tmp, "data.jsonl");
            File.WriteAllLines(jsonl, Enumerable.Range(0, 12).Select(i =>
                JsonSerializer.Serialize(new { prompt = $"Q: what is {i} plus {i}? A:", completion = $" {2 * i}." })));
            var outDir = Path.Combine(tmp, "run");
            var (code, output) = Run("train", "--init", dir, "--method", method, "--rank", "2", "--target", targets, "--jsonl", jsonl,
                "--steps", "6", "--batch", "2", "--lr", "1e-2", "--warmup", "1", "--seq-len", "24", "--eval-every", "3", "--out", outDir);
            Assert.True(code == 0, output);
            Assert.Contains("held-out loss", output, StringComparison.OrdinalIgnoreCase);
            var adapter = Path.Combine(outDir, "adapter");
            var header = Safetensors.ReadHeader(Path.Combine(adapter, "adapter_model.safetensors"));
            var layer0 = fixture.StartsWith("gpt2", StringComparison.Ordinal) ? "base_model.model.transformer.h.0.attn.c_attn" : "base_model.model.model.layers.0.self_attn.q_proj";
            Assert.Contains($"{layer0}.lora_A.weight", header.Keys);

            var text = Path.Combine(tmp, "t.txt");
            File.WriteAllText(text, Text);
            var (c1, evalBase) = Run("eval", "--model", dir, "--text", text, "--json");
            var (c2, evalAdapted) = Run("eval", "--model", dir, "--adapter", adapter, "--text", text, "--json");
            Assert.Equal(0, c1);
            Assert.Equal(0, c2);
            Assert.NotEqual(evalBase, evalAdapted);
            Assert.Equal(0, Run("generate", "--model", dir, "--adapter", adapter, "--prompt", "Q: what is 3 plus 3? A:", "--max-new-tokens", "4", "--json").Code);

            var merged = Path.Combine(tmp, "merged");
            Assert.Equal(0, Run("merge", "--model", dir, "--adapter", adapter, "--out", merged).Code);
            Assert.True(File.Exists(Path.Combine(merged, "config.json")));
            var (c3, evalMerged) = Run("eval", "--model", merged, "--text", text, "--json");
            Assert.Equal(0, c3);
            double Loss(string json) => JsonDocument.Parse(json.Trim()).RootElement.GetProperty("loss").GetDouble();
            Assert.Equal(Loss(evalAdapted), Loss(evalMerged), 4);

            // Resume continues from the checkpoint with the same tokenizer and data.
            var (c4, _) = Run("train", "--init", dir, "--method", method, "--rank", "2", "--target", targets, "--jsonl", jsonl,
                "--steps", "8", "--batch", "2", "--warmup", "1", "--seq-len", "24", "--out", outDir, "--resume", "--extend");
            Assert.Equal(0, c4);
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void Export_WritesAnHfDirectory_ThatLoadsToTheSameLogits()
    {
        var dir = HfFixtures.Dir("llama-tiny-tied-bf16-sharded");
        var tmp = Directory.CreateTempSubdirectory("mora-hf-export").FullName;
        try
        {
            var outDir = Path.Combine(tmp, "out");
            Assert.Equal(0, Run("export", "--model", dir, "--out", outDir).Code);
            Assert.True(File.Exists(Path.Combine(outDir, "tokenizer.model")));
            var a = HuggingFace.Load(dir);
            var b = HuggingFace.Load(outDir);
            var ids = Enumerable.Range(0, 10).ToArray();
            using var _ = MoraEngine.Autograd.Graph.NoGrad();
            Assert.Equal(a.Forward(ids, 1, 10).ToArray(), b.Forward(ids, 1, 10).ToArray());
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Theory]
    [InlineData("{\"prompt\": \"a\"}", "expected \"text\", or \"prompt\" and \"completion\"")]
    [InlineData("{\"text\": 5}", "'text' must be a string")]
    [InlineData("not json", "not valid JSON")]
    [InlineData("{\"text\": \"a\", \"prompt\": \"b\", \"completion\": \"c\"}", "not both")]
    public void BadData_IsAnErrorNamingFileAndLine_AndNothingTrains(string secondLine, string expected)
    {
        var dir = HfFixtures.Dir("gpt2-tiny");
        var tmp = Directory.CreateTempSubdirectory("mora-hf-bad").FullName;
        try
        {
            var path = Path.Combine(tmp, "d.jsonl");
            File.WriteAllText(path, "{\"text\": \"fine\"}\n" + secondLine + "\n");
            var tok = HfTokenizer.FromDirectory(dir);
            var e = Assert.Throws<InvalidDataException>(() => MoraEngine.Training.TokenDataset.FromJsonl(path, new(tok.Encode, 511, null, 16, 512)));
            Assert.Contains("d.jsonl:2", e.Message);
            Assert.Contains(expected, e.Message);
            var (code, _) = Run("train", "--init", dir, "--method", "lora", "--jsonl", path, "--steps", "2", "--out", Path.Combine(tmp, "o"));
            Assert.Equal(2, code);
            Assert.False(File.Exists(Path.Combine(tmp, "o", "checkpoint.safetensors")));
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void PromptCompletionRows_ScoreTheCompletionAndEosOnly()
    {
        var tmp = Directory.CreateTempSubdirectory("mora-hf-rows").FullName;
        try
        {
            var path = Path.Combine(tmp, "d.jsonl");
            File.WriteAllText(path, "{\"prompt\": \"ab\", \"completion\": \"cd\"}\n\n{\"text\": \"xyz\"}\n");
            // A character-level stand-in tokenizer makes the expected rows easy to write down.
            int[] Encode(string s) => s.Select(c => (int)c).ToArray();
            var d = MoraEngine.Training.TokenDataset.FromJsonl(path, new(Encode, 3, 1, 6, 256));
            Assert.Equal(2, d.Count);
            var (ids, targets) = d.Row(0);
            Assert.Equal(new[] { 1, 'a', 'b', 'c', 'd', 3 }, ids);
            Assert.Equal(new[] { -100, -100, 'c', 'd', 3, -100 }, targets);
            (ids, targets) = d.Row(1);
            Assert.Equal(new[] { 1, 'x', 'y', 'z', 3, 3 }, ids);
            Assert.Equal(new[] { 'x', 'y', 'z', 3, -100, -100 }, targets);
        }
        finally { Directory.Delete(tmp, true); }
    }
}
