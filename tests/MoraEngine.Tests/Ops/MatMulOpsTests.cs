using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class MatMulOpsTests
{
    private static readonly Rng R = new(3);

    private static double[] RefMatMul(double[] a, double[] b, int batchA, int batchB, int m, int k, int n)
    {
        var batch = Math.Max(batchA, batchB);
        var c = new double[batch * m * n];
        for (var z = 0; z < batch; z++)
            for (var i = 0; i < m; i++)
                for (var j = 0; j < n; j++)
                {
                    double s = 0;
                    for (var p = 0; p < k; p++)
                        s += a[(batchA == 1 ? 0 : z) * m * k + i * k + p] * b[(batchB == 1 ? 0 : z) * k * n + p * n + j];
                    c[(z * m + i) * n + j] = s;
                }
        return c;
    }

    private static double[] RefT(double[] x, int batch, int rows, int cols)
    {
        var y = new double[x.Length];
        for (var z = 0; z < batch; z++)
            for (var r = 0; r < rows; r++)
                for (var c = 0; c < cols; c++)
                    y[z * rows * cols + c * rows + r] = x[z * rows * cols + r * cols + c];
        return y;
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 5, 7)]
    [InlineData(7, 4, 2)]
    [InlineData(17, 9, 13)]
    public void Plain2D(int m, int k, int n)
    {
        var a = GradCheck.Rand(R, m * k);
        var b = GradCheck.Rand(R, k * n);
        GradCheck.Check([(a, [m, k]), (b, [k, n])], t => Ops.MatMul(t[0], t[1]), r => RefMatMul(r[0], r[1], 1, 1, m, k, n));
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void TransposedViews_AreReadWithoutCopies_AndDifferentiate(bool ta, bool tb)
    {
        int m = 5, k = 6, n = 3;
        // Stored layouts: transposed operands are stored [k, m] / [n, k] and viewed through .T
        var a = GradCheck.Rand(R, m * k);
        var b = GradCheck.Rand(R, k * n);
        int[] sa = ta ? [k, m] : [m, k];
        int[] sb = tb ? [n, k] : [k, n];
        GradCheck.Check([(a, sa), (b, sb)],
            t => Ops.MatMul(ta ? t[0].T : t[0], tb ? t[1].T : t[1]),
            r => RefMatMul(ta ? RefT(r[0], 1, k, m) : r[0], tb ? RefT(r[1], 1, n, k) : r[1], 1, 1, m, k, n));
    }

    [Theory]
    [InlineData(3, 3)]
    [InlineData(4, 1)]
    [InlineData(1, 2)]
    public void Batched_WithSharedOperands(int batchA, int batchB)
    {
        int m = 4, k = 5, n = 3;
        var a = GradCheck.Rand(R, batchA * m * k);
        var b = GradCheck.Rand(R, batchB * k * n);
        int[] sa = batchA == 1 && batchB > 1 ? [m, k] : [batchA, m, k];
        int[] sb = batchB == 1 ? [k, n] : [batchB, k, n];
        GradCheck.Check([(a, sa), (b, sb)], t => Ops.MatMul(t[0], t[1]), r => RefMatMul(r[0], r[1], batchA, batchB, m, k, n));
    }

    [Fact]
    public void BatchedTransposed_AttentionShape()
    {
        int batch = 2, t = 5, d = 3;
        var q = GradCheck.Rand(R, batch * t * d);
        var kk = GradCheck.Rand(R, batch * t * d);
        GradCheck.Check([(q, [batch, t, d]), (kk, [batch, t, d])],
            x => Ops.MatMul(x[0], x[1].T),
            r => RefMatMul(r[0], RefT(r[1], batch, t, d), batch, batch, t, d, t));
    }

    [Fact]
    public void Linear_MatchesXWt_WithBias()
    {
        int rows = 7, inF = 5, outF = 3;
        var x = GradCheck.Rand(R, 2 * rows * inF);
        var w = GradCheck.Rand(R, outF * inF);
        var b = GradCheck.Rand(R, outF);
        GradCheck.Check([(x, [2, rows, inF]), (w, [outF, inF]), (b, [outF])],
            t => Ops.Linear(t[0], t[1], t[2]),
            r =>
            {
                var y = RefMatMul(r[0], RefT(r[1], 1, outF, inF), 1, 1, 2 * rows, inF, outF);
                for (var i = 0; i < y.Length; i++) y[i] += r[2][i % outF];
                return y;
            });
    }

    [Fact]
    public void ShapeMismatch_NamesBothShapes()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ops.MatMul(Tensor.Zeros(2, 3), Tensor.Zeros(4, 5)));
        Assert.Contains("MatMul", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);
        Assert.Contains("[4, 5]", ex.Message);
        var ex2 = Assert.Throws<ArgumentException>(() => Ops.Linear(Tensor.Zeros(2, 3), Tensor.Zeros(4, 5)));
        Assert.Contains("Linear", ex2.Message);
        Assert.Contains("[4, 5]", ex2.Message);
    }
}
