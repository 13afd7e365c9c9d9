using Microsoft.CodeAnalysis;
using MoraEngine.Generators;
using Xunit;

namespace MoraEngine.Tests.Generators;

public class MoraKernelGeneratorTests
{
    private const string Usings = "using MoraEngine.Adapters;\n";

    private static string Attr(int inF, int outF, int rank, string type) =>
        $"[assembly: MoraKernel(InFeatures = {inF}, OutFeatures = {outF}, Rank = {rank}, Type = {type})]\n";

    // ---------------------------------------------------------------- snapshots of the emitted source

    [Theory]
    [InlineData(512, 2048, 8, "MoraType.Sharing", "MoraKernels.512x2048.r143.Sharing.g.cs")]
    [InlineData(100, 40, 2, "MoraType.Rope", "MoraKernels.100x40.r16.Rope.g.cs")]
    [InlineData(90, 50, 2, "MoraType.Interleave", "MoraKernels.90x50.r17.Interleave.g.cs")]
    [InlineData(32, 64, 4, "MoraType.Truncation", "MoraKernels.32x64.r4.Truncation.g.cs")]
    public void EmittedKernels_MatchSnapshot_AndCompile(int inF, int outF, int rank, string type, string hint)
    {
        var (diagnostics, sources, errors) = GeneratorHarness.Run(Usings + Attr(inF, outF, rank, type));
        Assert.Empty(diagnostics);
        Assert.Empty(errors);
        Assert.Contains(hint, sources.Keys);
        Snapshot.Verify(sources[hint], hint.Replace(".g.cs", ""));
    }

    [Fact]
    public void DeviceKernels_AreEmittedOnlyWhenIlgpuIsReferenced()
    {
        var source = Usings + Attr(512, 2048, 8, "MoraType.Rope");
        const string hint = "MoraKernels.512x2048.r142.Rope.g.cs";
        var (_, with, withErrors) = GeneratorHarness.Run(GeneratorHarness.Compilation(source));
        var (_, without, withoutErrors) = GeneratorHarness.Run(GeneratorHarness.Compilation(source, ilgpu: false));
        Assert.Empty(withErrors);
        Assert.Empty(withoutErrors);
        Assert.Contains("IMoraDeviceKernels", with[hint]);
        Assert.Contains("private static void CompressBackwardDevice(Index1D index", with[hint]);
        Assert.DoesNotContain("IMoraDeviceKernels", without[hint]);
        Assert.DoesNotContain("ILGPU", without[hint]);
    }

    [Fact]
    public void Registration_ListsEveryKernelOnce_MatchSnapshot()
    {
        var source = Usings + Attr(512, 2048, 8, "MoraType.Sharing") + Attr(512, 2048, 8, "MoraType.Rope") + Attr(512, 2048, 8, "MoraType.Sharing");
        var (diagnostics, sources, errors) = GeneratorHarness.Run(source);
        Assert.Empty(diagnostics);
        Assert.Empty(errors);
        Assert.Equal(3, sources.Count); // two kernels (the repeated declaration merges) and the registration
        Snapshot.Verify(sources["MoraKernelRegistration.g.cs"], "MoraKernelRegistration");
    }

    [Fact]
    public void ConfigFile_GetsKernelsForEveryDistinctTargetedShape()
    {
        const string config = """
            { "architecture": "Llama", "d_model": 96, "layers": 2, "heads": 4, "rank": 4, "mora_type": 1,
              "target_modules": ["q", "v", "gate", "up", "down"] }
            """;
        var (diagnostics, sources, errors) = GeneratorHarness.Run("", ("model.mora.json", config), ("other.json", "not ours"));
        Assert.Empty(diagnostics);
        Assert.Empty(errors);
        // ff = ⌈(8/3·96)/32⌉·32 = 256: q, v → 96×96; gate, up → 96→256; down → 256→96 (r̂ from rank 4).
        Assert.Equal(
            new[] { "MoraKernelRegistration.g.cs", "MoraKernels.256x96.r38.Sharing.g.cs", "MoraKernels.96x256.r38.Sharing.g.cs", "MoraKernels.96x96.r28.Sharing.g.cs" },
            sources.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Contains("// Requested by model.mora.json.", sources["MoraKernels.96x96.r28.Sharing.g.cs"]);
    }

    [Fact]
    public void HuggingFaceLayoutConfig_GetsTheShapesTheRuntimeAdapts()
    {
        // A GPT-2 in HF's layout: the fused c_attn is d → 3d, the two c_proj are d → d and 4d → d, c_fc d → 4d.
        const string gpt2 = """{ "architecture": "Gpt2", "layout": "HuggingFace", "d_model": 64, "heads": 4, "rank": 2, "mora_type": 1 }""";
        var (diagnostics, sources, errors) = GeneratorHarness.Run("", ("gpt2.mora.json", gpt2));
        Assert.Empty(diagnostics);
        Assert.Empty(errors);
        var cfg = new MoraEngine.Nn.ModelConfig { Architecture = MoraEngine.Nn.Architecture.Gpt2, Layout = MoraEngine.Nn.ModelLayout.HuggingFace, DModel = 64, Heads = 4 };
        var expected = MoraEngine.Adapters.AdapterBudget.TargetShapes(cfg).Select(t => (t.In, t.Out)).Distinct()
            .Select(t => $"MoraKernels.{t.In}x{t.Out}.r{MoraEngine.Adapters.MoraOperator.RankHat(t.In, t.Out, 2, MoraEngine.Adapters.MoraType.Sharing)}.Sharing.g.cs");
        Assert.Equal(expected.Append("MoraKernelRegistration.g.cs").Order(StringComparer.Ordinal), sources.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("MoraKernels.64x192.r23.Sharing.g.cs", sources.Keys);
        // A LLaMA with grouped-query attention: k_proj and v_proj are d → kv_heads·head_dim.
        const string llama = """{ "architecture": "Llama", "layout": "HuggingFace", "d_model": 64, "heads": 4, "kv_heads": 2, "rank": 2, "mora_type": 1, "target_modules": ["k_proj"] }""";
        (diagnostics, sources, _) = GeneratorHarness.Run("", ("llama.mora.json", llama));
        Assert.Empty(diagnostics);
        Assert.Contains("MoraKernels.64x32.r14.Sharing.g.cs", sources.Keys);
    }

    [Fact]
    public void ConfigFile_DefaultsToRank8AndTypes1And6()
    {
        var (diagnostics, sources, _) = GeneratorHarness.Run("", ("tiny.mora.json", """{ "architecture": "Gpt2", "d_model": 64 }"""));
        Assert.Empty(diagnostics);
        Assert.Contains("MoraKernels.64x64.r32.Sharing.g.cs", sources.Keys);
        Assert.Contains("MoraKernels.64x64.r32.Rope.g.cs", sources.Keys);
        Assert.Contains("MoraKernels.64x256.r51.Sharing.g.cs", sources.Keys);
        Assert.Contains("MoraKernels.256x64.r50.Rope.g.cs", sources.Keys);
    }

    // ---------------------------------------------------------------- diagnostics, one per ID

    [Theory]
    [InlineData("[assembly: MoraKernel(InFeatures = 64, OutFeatures = 64, Rank = 0)]", "MORA001")]
    [InlineData("[assembly: MoraKernel(InFeatures = 64, OutFeatures = 64, Rank = -3, Type = MoraType.Rope)]", "MORA001")]
    [InlineData("[assembly: MoraKernel(InFeatures = 16, OutFeatures = 4096, Rank = 8)]", "MORA002")]
    [InlineData("[assembly: MoraKernel(InFeatures = 64, OutFeatures = 64, Rank = 8, Type = (MoraType)5)]", "MORA003")]
    [InlineData("[assembly: MoraKernel(OutFeatures = 64, Rank = 8)]", "MORA005")]
    [InlineData("[assembly: MoraKernel(InFeatures = -1, OutFeatures = 64, Rank = 8)]", "MORA005")]
    public void InvalidAttribute_IsACompileError_WithItsId(string attribute, string id)
    {
        var (diagnostics, sources, _) = GeneratorHarness.Run(Usings + attribute);
        var d = Assert.Single(diagnostics);
        Assert.Equal(id, d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal("Kernels.cs", d.Location.GetLineSpan().Path); // points at the declaration
        Assert.Empty(sources); // nothing generated for an invalid declaration
    }

    [Theory]
    [InlineData(null, "MORA004")]
    [InlineData("{ \"d_model\": 64, ", "MORA004")]
    [InlineData("[1, 2]", "MORA004")]
    [InlineData("{ \"architecture\": \"Bert\", \"d_model\": 64 }", "MORA006")]
    [InlineData("{ \"d_model\": 0 }", "MORA006")]
    [InlineData("{ \"d_model\": 64, \"target_modules\": [\"qkv\"] }", "MORA006")]
    [InlineData("{ \"d_model\": 64, \"rank\": \"eight\" }", "MORA006")]
    [InlineData("{ \"d_model\": 64, \"rank\": 0, \"mora_type\": 1, \"target_modules\": [\"q\"] }", "MORA001")]
    [InlineData("{ \"d_model\": 8, \"rank\": 8, \"mora_type\": 1, \"target_modules\": [\"q\"] }", "MORA002")]
    [InlineData("{ \"d_model\": 64, \"mora_type\": 7, \"target_modules\": [\"q\"] }", "MORA003")]
    public void InvalidConfig_IsACompileError_WithItsId(string? json, string id)
    {
        var (diagnostics, _, _) = GeneratorHarness.Run("", ("bad.mora.json", json));
        var d = Assert.Single(diagnostics);
        Assert.Equal(id, d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal("bad.mora.json", d.Location.GetLineSpan().Path);
    }

    // ---------------------------------------------------------------- incremental caching

    [Fact]
    public void RerunOnUnchangedInput_ReportsCachedOutputs()
    {
        var compilation = GeneratorHarness.Compilation(Usings + Attr(256, 1024, 8, "MoraType.Sharing"));
        var driver = GeneratorHarness.Driver(("m.mora.json", """{ "d_model": 64, "mora_type": 1, "target_modules": ["q"] }"""));
        driver = driver.RunGenerators(compilation);
        // An unrelated edit: a new syntax tree changes the compilation, not the declarations.
        var edited = compilation.AddSyntaxTrees(Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText("class Unrelated { }"));
        driver = driver.RunGenerators(edited);
        var result = driver.GetRunResult().Results.Single();

        foreach (var step in new[] { MoraKernelGenerator.AttributesStep, MoraKernelGenerator.ConfigsStep, MoraKernelGenerator.SpecsStep })
            Assert.All(result.TrackedSteps[step].SelectMany(s => s.Outputs), o =>
                Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {o.Reason}"));
        var outputs = result.TrackedOutputSteps.SelectMany(kv => kv.Value).SelectMany(s => s.Outputs).ToArray();
        Assert.NotEmpty(outputs);
        Assert.All(outputs, o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
    }

    [Fact]
    public void ChangingOneDeclaration_RegeneratesOnlyWhatChanged()
    {
        var driver = GeneratorHarness.Driver().RunGenerators(
            GeneratorHarness.Compilation(Usings + Attr(256, 1024, 8, "MoraType.Sharing") + Attr(64, 64, 8, "MoraType.Sharing")));
        driver = driver.RunGenerators(
            GeneratorHarness.Compilation(Usings + Attr(256, 1024, 8, "MoraType.Sharing") + Attr(64, 64, 8, "MoraType.Rope")));
        var result = driver.GetRunResult().Results.Single();
        var names = result.GeneratedSources.Select(s => s.HintName).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(new[] { "MoraKernelRegistration.g.cs", "MoraKernels.256x1024.r101.Sharing.g.cs", "MoraKernels.64x64.r32.Rope.g.cs" }, names);
        Assert.Contains(result.TrackedOutputSteps.SelectMany(kv => kv.Value).SelectMany(s => s.Outputs),
            o => o.Reason == IncrementalStepRunReason.Cached); // the unchanged 256 → 1024 kernels
    }
}
