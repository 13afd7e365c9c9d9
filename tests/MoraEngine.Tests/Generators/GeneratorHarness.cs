using System.Collections.Immutable;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using MoraEngine.Adapters;
using MoraEngine.Generators;

namespace MoraEngine.Tests.Generators;

/// <summary>Runs <see cref="MoraKernelGenerator"/> on a small in-memory compilation with CSharpGeneratorDriver.</summary>
internal static class GeneratorHarness
{
    private static readonly Lazy<MetadataReference[]> References = new(() =>
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        return tpa.Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) == "netstandard.dll")
            .Append(typeof(MoraKernelAttribute).Assembly.Location)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToArray();
    });

    private static readonly Lazy<MetadataReference> Ilgpu = new(() => MetadataReference.CreateFromFile(typeof(ILGPU.Context).Assembly.Location));

    /// <summary>A compilation referencing the framework and MoraEngine, and ILGPU unless <paramref name="ilgpu"/> is false.</summary>
    public static CSharpCompilation Compilation(string source, string assemblyName = "Sample", bool ilgpu = true) =>
        CSharpCompilation.Create(assemblyName,
            [CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest), path: "Kernels.cs")],
            ilgpu ? References.Value.Append(Ilgpu.Value) : References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true, nullableContextOptions: NullableContextOptions.Enable));

    public static GeneratorDriver Driver(params (string Path, string? Text)[] additionalFiles) =>
        CSharpGeneratorDriver.Create(
            [new MoraKernelGenerator().AsSourceGenerator()],
            additionalFiles.Select(f => (AdditionalText)new InMemoryText(f.Path, f.Text)),
            new CSharpParseOptions(LanguageVersion.Latest),
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>Generator diagnostics, generated sources by hint name, and the compiler's errors on the whole output.</summary>
    public static (ImmutableArray<Diagnostic> Diagnostics, Dictionary<string, string> Sources, Diagnostic[] CompileErrors) Run(
        string source, params (string Path, string? Text)[] additionalFiles) => Run(Compilation(source), additionalFiles);

    public static (ImmutableArray<Diagnostic> Diagnostics, Dictionary<string, string> Sources, Diagnostic[] CompileErrors) Run(
        CSharpCompilation compilation, params (string Path, string? Text)[] additionalFiles)
    {
        var driver = Driver(additionalFiles).RunGeneratorsAndUpdateCompilation(compilation, out var output, out _);
        var result = driver.GetRunResult().Results.Single();
        var sources = result.GeneratedSources.ToDictionary(s => s.HintName, s => s.SourceText.ToString());
        var errors = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToArray();
        return (result.Diagnostics, sources, errors);
    }

    /// <summary>An additional file; null text stands for a file that cannot be read.</summary>
    private sealed class InMemoryText(string path, string? text) : AdditionalText
    {
        public override string Path => path;

        public override SourceText? GetText(CancellationToken cancellationToken = default) =>
            text == null ? null : SourceText.From(text, Encoding.UTF8);
    }
}
