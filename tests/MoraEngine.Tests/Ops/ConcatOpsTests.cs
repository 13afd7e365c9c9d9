using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class ConcatOpsTests
{
    /// <summary>Float64 concat along the last axis of [rows, w_i] matrices.</summary>
    private static double[] RefConcat(int rows, int[] widths, params double[][] xs)
    {
        var total = 0;
        foreach (var w in widths) total += w;
        var y = new double[rows * total];
        for (var r = 0; r < rows; r++)
        {
            var col = 0;
            for (var i = 0; i < xs.Length; i++)
            {
                for (var c = 0; c < widths[i]; c++) y[r * total + col + c] = xs[i][r * widths[i] + c];
                col += widths[i];
            }
        }
        return y;
    }

    /// <summary>Float64 slice of columns [start, start + w) of a [rows, total] matrix.</summary>
    private static double[] RefColumns(double[] x, int rows, int total, int start, int w)
    {
        var y = new double[rows * w];
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < w; c++) y[r * w + c] = x[r * total + start + c];
        return y;
    }

    [Fact]
    public void GradCheck_Concat()
    {
        var rng = new Rng(1);
        int[] widths = [1, 4, 3];
        GradCheck.Check(
            [(GradCheck.Rand(rng, 6 * 1), new[] { 2, 3, 1 }), (GradCheck.Rand(rng, 6 * 4), new[] { 2, 3, 4 }), (GradCheck.Rand(rng, 6 * 3), new[] { 2, 3, 3 })],
            t => Ops.Concat(t[0], t[1], t[2]),
            r => RefConcat(6, widths, r[0], r[1], r[2]));
    }

    [Fact]
    public void GradCheck_ConcatSameTensorTwice()
    {
        var rng = new Rng(2);
        GradCheck.Check(
            [(GradCheck.Rand(rng, 10), new[] { 5, 2 })],
            t => Ops.Concat(t[0], t[0]),
            r => RefConcat(5, [2, 2], r[0], r[0]));
    }

    [Fact]
    public void GradCheck_Split_UnusedAndReusedPieces()
    {
        // Piece 1 is unused (its gradient columns must be zero), piece 2 is used twice (gradients add).
        var rng = new Rng(3);
        const int rows = 6, total = 7;
        GradCheck.Check(
            [(GradCheck.Rand(rng, rows * total), new[] { 3, 2, total })],
            t =>
            {
                var p = Ops.Split(t[0], 2, 4, 1);
                return Ops.Concat(p[2], p[0], p[2]);
            },
            r => RefConcat(rows, [1, 2, 1],
                RefColumns(r[0], rows, total, 6, 1), RefColumns(r[0], rows, total, 0, 2), RefColumns(r[0], rows, total, 6, 1)));
    }

    [Fact]
    public void SplitThenConcat_RoundTrips()
    {
        var rng = new Rng(4);
        var x = GradCheck.Rand(rng, 4 * 3 * 9);
        var parts = Ops.Split(Tensor.FromArray(x, 4, 3, 9), 3, 0, 5, 1);
        Assert.Equal(4, parts.Length);
        Assert.Equal(new[] { 4, 3, 0 }, parts[1].Shape.ToArray());
        Assert.Equal(new[] { 4, 3, 5 }, parts[2].Shape.ToArray());
        Assert.Equal(x, Ops.Concat(parts).ToArray());

        var a = GradCheck.Rand(rng, 2 * 3);
        var b = GradCheck.Rand(rng, 2 * 5);
        var back = Ops.Split(Ops.Concat(Tensor.FromArray(a, 2, 3), Tensor.FromArray(b, 2, 5)), 3, 5);
        Assert.Equal(a, back[0].ToArray());
        Assert.Equal(b, back[1].ToArray());
    }

    [Fact]
    public void Concat_ReadsTransposedViews()
    {
        var a = Tensor.FromArray([1, 2, 3, 4, 5, 6], 3, 2); // aᵀ = [[1, 3, 5], [2, 4, 6]]
        var b = Tensor.FromArray([7, 8], 2, 1);
        Assert.Equal(new float[] { 1, 3, 5, 7, 2, 4, 6, 8 }, Ops.Concat(a.T, b).ToArray());
    }

    [Fact]
    public void Concat_MismatchedShapes_ThrowsNamingShapes()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ops.Concat(Tensor.Zeros(2, 3), Tensor.Zeros(3, 3)));
        Assert.Contains("Concat", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);
        Assert.Contains("[3, 3]", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.Concat(Tensor.Zeros(2, 3), Tensor.Zeros(2, 1, 3)));
        Assert.Contains("[2, 1, 3]", ex.Message);

        Assert.Throws<ArgumentException>(() => Ops.Concat());
    }

    [Fact]
    public void Split_BadSizes_ThrowsNamingShape()
    {
        var x = Tensor.Zeros(2, 5);
        var ex = Assert.Throws<ArgumentException>(() => Ops.Split(x, 2, 2));
        Assert.Contains("Split", ex.Message);
        Assert.Contains("[2, 5]", ex.Message);
        Assert.Contains("[2, 2]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Ops.Split(x, 6, -1));
        Assert.Contains("Split", ex.Message);
    }
}
