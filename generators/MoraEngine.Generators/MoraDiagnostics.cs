using Microsoft.CodeAnalysis;

namespace MoraEngine.Generators
{
    /// <summary>
    /// The generator's diagnostics. IDs are stable: tests, suppressions and docs refer to them. Every invalid
    /// declaration is a compile-time error, never a runtime exception.
    /// </summary>
    internal static class MoraDiagnostics
    {
        private const string Category = "MoraEngine.Kernels";

        public static readonly DiagnosticDescriptor RankNotPositive = new(
            "MORA001", "MoRA kernel rank must be positive",
            "MoRA kernel {0}: the LoRA rank must be positive, got {1}",
            Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        public static readonly DiagnosticDescriptor RankHatTooLarge = new(
            "MORA002", "MoRA r̂ larger than the layer",
            "MoRA kernel {0}: r̂ = {1} (from LoRA rank {2}) exceeds min(in, out) = {3}; use a smaller rank for this layer",
            Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        public static readonly DiagnosticDescriptor UnknownType = new(
            "MORA003", "Unknown MoRA type",
            "MoRA kernel {0}: unknown MoRA type {1} (known: 0, 1, 2, 3, 4, 6)",
            Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        public static readonly DiagnosticDescriptor UnreadableConfig = new(
            "MORA004", "Unreadable MoRA kernel config file",
            "MoRA kernel config '{0}' cannot be read: {1}",
            Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        public static readonly DiagnosticDescriptor SizeNotPositive = new(
            "MORA005", "MoRA kernel layer size must be positive",
            "MoRA kernel {0}: InFeatures and OutFeatures must both be set and positive",
            Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        public static readonly DiagnosticDescriptor InvalidConfigField = new(
            "MORA006", "Invalid field in a MoRA kernel config file",
            "MoRA kernel config '{0}': {1}",
            Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        public static DiagnosticDescriptor ById(string id) => id switch
        {
            "MORA001" => RankNotPositive,
            "MORA002" => RankHatTooLarge,
            "MORA003" => UnknownType,
            "MORA004" => UnreadableConfig,
            "MORA005" => SizeNotPositive,
            _ => InvalidConfigField,
        };
    }
}
