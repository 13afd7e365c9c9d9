using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;

namespace MoraEngine.Generators
{
    /// <summary>
    /// Turns declarations into plain <see cref="KernelRequest"/> records and diagnostics; keeps no symbols or syntax,
    /// so the incremental pipeline can cache on value equality.
    /// </summary>
    internal static class MoraKernelParser
    {
        public const string AttributeName = "MoraEngine.Adapters.MoraKernelAttribute";

        /// <summary>Config files the generator reads: AdditionalFiles whose name ends with this.</summary>
        public const string ConfigSuffix = ".mora.json";

        private static readonly int[] KnownTypes = MoraEngine.Shared.MoraShapes.KnownTypes;
        private static readonly string[] KnownTargets = MoraEngine.Shared.MoraShapes.KnownTargets;
        private static readonly string[] DefaultTargets = { "q", "k", "v", "o", "up", "down" };
        private static readonly int[] DefaultTypes = { 1, 6 };
        private const int DefaultRank = 8;

        /// <summary>
        /// r̂ for a LoRA rank r, exactly as <c>MoraOperator.RankHat</c>: ⌊√((in + out)·r) + 0.5⌋, rounded down to even
        /// for RoPE (type 6), r itself for truncation (type 0).
        /// </summary>
        public static int RankHat(int inFeatures, int outFeatures, int loraRank, int type) =>
            MoraEngine.Shared.MoraShapes.RankHat(inFeatures, outFeatures, loraRank, type);

        /// <summary>One <c>[assembly: MoraKernel(...)]</c> application.</summary>
        public static ParseResult ParseAttribute(AttributeData attribute, CancellationToken ct)
        {
            ct.ThrowIfCancellationRequested();
            int inF = 0, outF = 0, rank = 0, type = 1;
            foreach (var arg in attribute.NamedArguments)
            {
                if (arg.Value.Value is not int v) continue;
                switch (arg.Key)
                {
                    case "InFeatures": inF = v; break;
                    case "OutFeatures": outF = v; break;
                    case "Rank": rank = v; break;
                    case "Type": type = v; break;
                }
            }
            var syntax = attribute.ApplicationSyntaxReference;
            var location = syntax is null ? null : LocationInfo.From(syntax.SyntaxTree.GetLocation(syntax.Span));
            var line = location is null ? "" : $":{location.LineSpan.Start.Line + 1}";
            var source = $"[assembly: MoraKernel] in {FileName(location?.FilePath)}{line}";
            var what = $"({inF} → {outF}, rank {rank}, type {type})";
            var diagnostics = new List<DiagnosticInfo>();
            var request = Validate(inF, outF, rank, type, source, what, location, diagnostics);
            return new ParseResult(
                EquatableArray.From(request is null ? Array.Empty<KernelRequest>() : new[] { request }),
                EquatableArray.From(diagnostics));
        }

        /// <summary>
        /// One model config file: the <c>ModelConfig.ToJson()</c> fields (architecture, d_model, ff_hidden, ...) plus
        /// optional <c>rank</c> (int or list, default 8), <c>mora_type</c> (int or list, default [1, 6]) and
        /// <c>target_modules</c> (default q, k, v, o, up, down). Every distinct (in, out) of the targeted layers, for
        /// every rank and type, becomes a request.
        /// </summary>
        public static ParseResult ParseConfig(string path, string? text, CancellationToken ct)
        {
            ct.ThrowIfCancellationRequested();
            var name = FileName(path);
            var location = LocationInfo.File(path);
            var diagnostics = new List<DiagnosticInfo>();
            ParseResult Fail(string id, string message)
            {
                diagnostics.Add(new DiagnosticInfo(id, location, EquatableArray.From(new[] { name, message })));
                return new ParseResult(EquatableArray.Empty<KernelRequest>(), EquatableArray.From(diagnostics));
            }

            if (text is null) return Fail("MORA004", "the file could not be read");
            object? root;
            try
            {
                root = MiniJson.Parse(text);
            }
            catch (FormatException e)
            {
                return Fail("MORA004", $"invalid JSON ({e.Message})");
            }
            if (root is not Dictionary<string, object?> o) return Fail("MORA004", "the JSON is not an object");

            var arch = "gpt2";
            if (o.TryGetValue("architecture", out var a))
            {
                if (a is not string s || (s.ToLowerInvariant() != "gpt2" && s.ToLowerInvariant() != "llama"))
                    return Fail("MORA006", $"architecture must be \"Gpt2\" or \"Llama\", got {Show(a)}");
                arch = s.ToLowerInvariant();
            }
            if (!o.TryGetValue("d_model", out var dv) || !IsInt(dv, out var d) || d <= 0)
                return Fail("MORA006", $"d_model must be a positive integer, got {(o.ContainsKey("d_model") ? Show(dv) : "nothing")}");
            var ffHidden = 0;
            if (o.TryGetValue("ff_hidden", out var fv) && fv is not null && (!IsInt(fv, out ffHidden) || ffHidden < 0))
                return Fail("MORA006", $"ff_hidden must be a non-negative integer, got {Show(fv)}");
            if (o.TryGetValue("layers", out var lv) && (!IsInt(lv, out var layers) || layers <= 0))
                return Fail("MORA006", $"layers must be a positive integer, got {Show(lv)}");
            var huggingFace = false;
            if (o.TryGetValue("layout", out var lay) && lay is not null)
            {
                if (lay is not string ls || (ls.ToLowerInvariant() != "engine" && ls.ToLowerInvariant() != "huggingface"))
                    return Fail("MORA006", $"layout must be \"Engine\" or \"HuggingFace\", got {Show(lay)}");
                huggingFace = ls.ToLowerInvariant() == "huggingface";
            }
            var heads = 0;
            if (o.TryGetValue("heads", out var hv) && hv is not null && (!IsInt(hv, out heads) || heads <= 0 || d % heads != 0))
                return Fail("MORA006", $"heads must be a positive integer dividing d_model, got {Show(hv)}");
            var kvHeads = 0;
            if (o.TryGetValue("kv_heads", out var kvv) && kvv is not null && (!IsInt(kvv, out kvHeads) || kvHeads < 0 || kvHeads > 0 && (heads == 0 || heads % kvHeads != 0)))
                return Fail("MORA006", $"kv_heads must be 0 or divide heads, got {Show(kvv)}");
            var kvWidth = kvHeads > 0 ? kvHeads * (d / heads) : d;

            if (!IntList(o, "rank", new[] { DefaultRank }, out var ranks, out var error)) return Fail("MORA006", error);
            if (!IntList(o, "mora_type", DefaultTypes, out var types, out error)) return Fail("MORA006", error);
            var targets = huggingFace ? KnownTargets : DefaultTargets;
            if (o.TryGetValue("target_modules", out var tv))
            {
                if (tv is not List<object?> list || list.Count == 0 || list.Any(t => t is not string))
                    return Fail("MORA006", $"target_modules must be a non-empty list of names, got {Show(tv)}");
                targets = list.Cast<string>().ToArray();
                var unknown = targets.FirstOrDefault(t => Array.IndexOf(KnownTargets, t) < 0);
                if (unknown is not null)
                    return Fail("MORA006", $"unknown target module '{unknown}' (known: {string.Join(", ", KnownTargets)})");
            }

            // (in, out) exactly as AdapterBudget.TargetShapes: the same shared shape math, deduplicated.
            var llama = arch == "llama";
            var ff = MoraEngine.Shared.MoraShapes.FfHidden(llama, d, ffHidden);
            var shapes = new List<(int In, int Out)>();
            foreach (var (_, _, i, j) in MoraEngine.Shared.MoraShapes.BlockShapes(llama, huggingFace, d, ff, kvWidth, targets))
                if (!shapes.Contains((i, j))) shapes.Add((i, j));

            var requests = new List<KernelRequest>();
            foreach (var (i, j) in shapes)
                foreach (var r in ranks)
                    foreach (var type in types)
                    {
                        var request = Validate(i, j, r, type, name, $"({i} → {j}, rank {r}, type {type}) from '{name}'", location, diagnostics);
                        if (request is not null) requests.Add(request);
                    }
            return new ParseResult(EquatableArray.From(requests), EquatableArray.From(diagnostics));
        }

        private static KernelRequest? Validate(int inF, int outF, int rank, int type, string source, string what,
            LocationInfo? location, List<DiagnosticInfo> diagnostics)
        {
            DiagnosticInfo Diag(string id, params object[] args) =>
                new(id, location, EquatableArray.From(args.Select(x => Convert.ToString(x, System.Globalization.CultureInfo.InvariantCulture) ?? "")));

            var ok = true;
            if (inF <= 0 || outF <= 0) { diagnostics.Add(Diag("MORA005", what)); ok = false; }
            if (rank <= 0) { diagnostics.Add(Diag("MORA001", what, rank)); ok = false; }
            if (Array.IndexOf(KnownTypes, type) < 0) { diagnostics.Add(Diag("MORA003", what, type)); ok = false; }
            if (!ok) return null;
            var rHat = RankHat(inF, outF, rank, type);
            if (rHat > Math.Min(inF, outF) || rHat <= 0)
            {
                diagnostics.Add(Diag("MORA002", what, rHat, rank, Math.Min(inF, outF)));
                return null;
            }
            return new KernelRequest(inF, outF, rank, type, source);
        }

        private static bool IntList(Dictionary<string, object?> o, string key, int[] defaults, out int[] values, out string error)
        {
            values = defaults;
            error = "";
            if (!o.TryGetValue(key, out var v) || v is null) return true;
            if (IsInt(v, out var one))
            {
                values = new[] { one };
                return true;
            }
            if (v is List<object?> list && list.Count > 0)
            {
                var result = new int[list.Count];
                for (var i = 0; i < list.Count; i++)
                    if (!IsInt(list[i], out result[i]))
                    {
                        error = $"{key} must be an integer or a list of integers, got {Show(list[i])} in the list";
                        return false;
                    }
                values = result;
                return true;
            }
            error = $"{key} must be an integer or a non-empty list of integers, got {Show(v)}";
            return false;
        }

        private static bool IsInt(object? v, out int value)
        {
            value = 0;
            if (v is not double d || d != Math.Floor(d) || d < int.MinValue || d > int.MaxValue) return false;
            value = (int)d;
            return true;
        }

        private static string Show(object? v) => v switch
        {
            null => "null",
            string s => $"\"{s}\"",
            double d => d.ToString(System.Globalization.CultureInfo.InvariantCulture),
            bool b => b ? "true" : "false",
            List<object?> => "a list",
            _ => "an object",
        };

        /// <summary>File names only: emitted headers must not depend on where the repository is checked out.</summary>
        public static string FileName(string? path) => string.IsNullOrEmpty(path) ? "?" : Path.GetFileName(path);
    }
}
