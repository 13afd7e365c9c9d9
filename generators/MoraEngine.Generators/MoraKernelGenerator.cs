using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace MoraEngine.Generators
{
    /// <summary>
    /// Specialised MoRA compress/decompress kernels per (in, out, r̂, type). Inputs: <c>[assembly: MoraKernel(...)]</c>
    /// attributes and model config files (AdditionalFiles named <c>*.mora.json</c>). Pipeline: parse each input into
    /// equatable records (<see cref="MoraKernelParser"/>), merge them into distinct <see cref="KernelSpec"/>s, emit one
    /// file per spec (<see cref="MoraKernelEmitter"/>) plus a module initializer that registers them all.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class MoraKernelGenerator : IIncrementalGenerator
    {
        /// <summary>Tracking names, for tests of incremental caching.</summary>
        public const string AttributesStep = "MoraKernelAttributes";
        public const string ConfigsStep = "MoraKernelConfigs";
        public const string SpecsStep = "MoraKernelSpecs";

        /// <summary>ILGPU kernels are emitted when the compilation sees both of these (MoraEngine and ILGPU referenced).</summary>
        internal const string DeviceInterfaceName = "MoraEngine.Adapters.IMoraDeviceKernels";
        internal const string IlgpuViewName = "ILGPU.ArrayView`1";

        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var fromAttributes = context.SyntaxProvider
                .ForAttributeWithMetadataName(
                    MoraKernelParser.AttributeName,
                    static (node, _) => node is CompilationUnitSyntax,
                    static (ctx, ct) =>
                    {
                        // Assembly attributes: keep the ones written in this file, so each is parsed exactly once.
                        var results = ctx.Attributes
                            .Where(a => a.ApplicationSyntaxReference?.SyntaxTree == ctx.TargetNode.SyntaxTree)
                            .Select(a => MoraKernelParser.ParseAttribute(a, ct))
                            .ToArray();
                        return new ParseResult(
                            EquatableArray.From(results.SelectMany(r => r.Requests)),
                            EquatableArray.From(results.SelectMany(r => r.Diagnostics)));
                    })
                .WithTrackingName(AttributesStep);

            var fromConfigs = context.AdditionalTextsProvider
                .Where(static t => t.Path.EndsWith(MoraKernelParser.ConfigSuffix, StringComparison.OrdinalIgnoreCase))
                .Select(static (t, ct) => MoraKernelParser.ParseConfig(t.Path, t.GetText(ct)?.ToString(), ct))
                .WithTrackingName(ConfigsStep);

            context.RegisterSourceOutput(fromAttributes, static (spc, r) => Report(spc, r));
            context.RegisterSourceOutput(fromConfigs, static (spc, r) => Report(spc, r));

            var specs = fromAttributes.Collect()
                .Combine(fromConfigs.Collect())
                .Select(static (pair, _) => Merge(pair.Left.Concat(pair.Right)))
                .WithTrackingName(SpecsStep);

            // Plain values from the compilation, so a source edit re-runs nothing downstream unless they change.
            var target = context.CompilationProvider.Select(static (c, _) => new EmitTarget(
                MoraKernelEmitter.Namespace(c.AssemblyName),
                c.GetTypeByMetadataName(DeviceInterfaceName) != null && c.GetTypeByMetadataName(IlgpuViewName) != null));

            context.RegisterSourceOutput(specs.SelectMany(static (s, _) => s.AsArray().ToImmutableArray()).Combine(target),
                static (spc, pair) => spc.AddSource(MoraKernelEmitter.HintName(pair.Left),
                    MoraKernelEmitter.EmitKernels(pair.Left, pair.Right.Namespace, pair.Right.Device)));

            context.RegisterSourceOutput(specs.Combine(target), static (spc, pair) =>
            {
                if (pair.Left.Count > 0) spc.AddSource("MoraKernelRegistration.g.cs", MoraKernelEmitter.EmitRegistration(pair.Left, pair.Right.Namespace));
            });
        }

        private static void Report(SourceProductionContext spc, ParseResult r)
        {
            foreach (var d in r.Diagnostics) spc.ReportDiagnostic(d.ToDiagnostic());
        }

        /// <summary>Distinct (in, out, r̂, type), in a stable order, each with every declaration that asked for it.</summary>
        internal static EquatableArray<KernelSpec> Merge(IEnumerable<ParseResult> results) =>
            EquatableArray.From(results
                .SelectMany(r => r.Requests)
                .GroupBy(q => (q.In, q.Out, RHat: MoraKernelParser.RankHat(q.In, q.Out, q.LoraRank, q.Type), q.Type))
                .OrderBy(g => g.Key.In).ThenBy(g => g.Key.Out).ThenBy(g => g.Key.RHat).ThenBy(g => g.Key.Type)
                .Select(g => new KernelSpec(g.Key.In, g.Key.Out, g.Key.RHat, g.Key.Type, g.Min(q => q.LoraRank),
                    EquatableArray.From(g.Select(q => q.Source).Distinct().OrderBy(s => s, StringComparer.Ordinal)))));
    }
}
