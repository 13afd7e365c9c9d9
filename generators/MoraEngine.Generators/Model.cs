using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace System.Runtime.CompilerServices
{
    /// <summary>Lets netstandard2.0 compile <c>init</c> accessors and records.</summary>
    internal static class IsExternalInit;
}

namespace MoraEngine.Generators
{
    /// <summary>
    /// One specialisation: the kernels for a layer in → out with an r̂ × r̂ matrix and a MoRA type. The registry key.
    /// <see cref="LoraRank"/> and <see cref="Sources"/> only feed the emitted header.
    /// </summary>
    internal sealed record KernelSpec(int In, int Out, int RHat, int Type, int LoraRank, EquatableArray<string> Sources)
    {
        public (int, int, int, int) Key => (In, Out, RHat, Type);
    }

    /// <summary>Where generated code goes and whether it can include ILGPU kernels.</summary>
    internal sealed record EmitTarget(string Namespace, bool Device);

    /// <summary>A validated request for kernels: a layer shape, a LoRA rank and a type, with where it came from.</summary>
    internal sealed record KernelRequest(int In, int Out, int LoraRank, int Type, string Source);

    /// <summary>What the parser made of one <c>[assembly: MoraKernel]</c> or one config file.</summary>
    internal sealed record ParseResult(EquatableArray<KernelRequest> Requests, EquatableArray<DiagnosticInfo> Diagnostics);

    /// <summary>A diagnostic without symbols or syntax trees, so parse results stay cacheable.</summary>
    internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Arguments)
    {
        public Diagnostic ToDiagnostic() =>
            Diagnostic.Create(MoraDiagnostics.ById(Id), Location?.ToLocation() ?? Microsoft.CodeAnalysis.Location.None,
                Arguments.AsArray().Cast<object?>().ToArray());
    }

    /// <summary>A source location as plain values.</summary>
    internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
    {
        public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

        public static LocationInfo? From(Location? location) =>
            location is null || location.SourceTree is null
                ? null
                : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);

        /// <summary>The start of an additional file (JSON errors carry no reliable span).</summary>
        public static LocationInfo File(string path) =>
            new(path, new TextSpan(0, 0), new LinePositionSpan(LinePosition.Zero, LinePosition.Zero));
    }

    /// <summary>An immutable array compared by its items, so records holding one compare by value.</summary>
    internal readonly struct EquatableArray<T> : IEquatable<EquatableArray<T>>, IEnumerable<T>
        where T : IEquatable<T>
    {
        private readonly T[]? _items;

        public EquatableArray(IEnumerable<T> items) => _items = items.ToArray();

        public int Count => _items?.Length ?? 0;

        public T this[int i] => _items![i];

        public T[] AsArray() => _items ?? Array.Empty<T>();

        public bool Equals(EquatableArray<T> other)
        {
            var a = AsArray();
            var b = other.AsArray();
            if (a.Length != b.Length) return false;
            for (var i = 0; i < a.Length; i++)
                if (!EqualityComparer<T>.Default.Equals(a[i], b[i])) return false;
            return true;
        }

        public override bool Equals(object? obj) => obj is EquatableArray<T> other && Equals(other);

        public override int GetHashCode()
        {
            var h = 17;
            foreach (var item in AsArray()) h = h * 31 + (item?.GetHashCode() ?? 0);
            return h;
        }

        public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)AsArray()).GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    internal static class EquatableArray
    {
        public static EquatableArray<T> From<T>(IEnumerable<T> items) where T : IEquatable<T> => new(items);

        public static EquatableArray<T> Empty<T>() where T : IEquatable<T> => new(ImmutableArray<T>.Empty);
    }
}
