using System.Text;

namespace MoraEngine;

/// <summary>Shape arithmetic and the wording of shape errors.</summary>
internal static class ShapeUtil
{
    public static int Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        if (n > int.MaxValue) throw new ArgumentException($"Shape {Format(shape)} has more than {int.MaxValue} elements.");
        return (int)n;
    }

    public static void Validate(ReadOnlySpan<int> shape, string op)
    {
        foreach (var d in shape)
            if (d < 0) throw new ArgumentException($"{op}: negative dimension in shape {Format(shape)}.");
        Count(shape);
    }

    public static string Format(ReadOnlySpan<int> shape)
    {
        var sb = new StringBuilder("[");
        for (var i = 0; i < shape.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(shape[i]);
        }
        return sb.Append(']').ToString();
    }

    public static int Axis(int axis, int rank, string op)
    {
        var a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) throw new ArgumentOutOfRangeException(nameof(axis), $"{op}: axis {axis} is out of range for a tensor of rank {rank}.");
        return a;
    }

    public static bool Equal(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    /// <summary>Product of dims [from, to).</summary>
    public static int Prod(ReadOnlySpan<int> shape, int from, int to)
    {
        var n = 1;
        for (var i = from; i < to; i++) n *= shape[i];
        return n;
    }
}
