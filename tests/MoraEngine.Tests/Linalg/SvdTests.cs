using MoraEngine.Linalg;
using Xunit;

namespace MoraEngine.Tests;

public class SvdTests
{
    private static double[] RandomMatrix(Random rng, int rows, int cols)
    {
        var a = new double[rows * cols];
        for (var i = 0; i < a.Length; i++) a[i] = rng.NextDouble() * 2 - 1;
        return a;
    }

    /// <summary>n×k row-major matrix with orthonormal columns: Gram–Schmidt (two passes) on random columns.</summary>
    private static double[] RandomOrthonormal(Random rng, int n, int k)
    {
        var q = RandomMatrix(rng, n, k);
        for (var j = 0; j < k; j++)
        {
            for (var pass = 0; pass < 2; pass++)
                for (var p = 0; p < j; p++)
                {
                    double dot = 0;
                    for (var i = 0; i < n; i++) dot += q[i * k + p] * q[i * k + j];
                    for (var i = 0; i < n; i++) q[i * k + j] -= dot * q[i * k + p];
                }
            double norm = 0;
            for (var i = 0; i < n; i++) norm += q[i * k + j] * q[i * k + j];
            norm = Math.Sqrt(norm);
            for (var i = 0; i < n; i++) q[i * k + j] /= norm;
        }
        return q;
    }

    /// <summary>U·diag(s)·Vᵀ with U rows×k, V cols×k row-major.</summary>
    private static double[] Compose(double[] u, double[] s, double[] v, int rows, int cols)
    {
        var k = s.Length;
        var a = new double[rows * cols];
        for (var i = 0; i < rows; i++)
        for (var j = 0; j < cols; j++)
        {
            double sum = 0;
            for (var p = 0; p < k; p++) sum += u[i * k + p] * s[p] * v[j * k + p];
            a[i * cols + j] = sum;
        }
        return a;
    }

    /// <summary>Largest |QᵀQ − I| entry for an n×k row-major Q.</summary>
    private static double OrthonormalityError(double[] q, int n, int k)
    {
        var worst = 0.0;
        for (var p = 0; p < k; p++)
        for (var r = 0; r < k; r++)
        {
            double dot = 0;
            for (var i = 0; i < n; i++) dot += q[i * k + p] * q[i * k + r];
            worst = Math.Max(worst, Math.Abs(dot - (p == r ? 1 : 0)));
        }
        return worst;
    }

    private static void AssertClose(double[] expected, double[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance,
                $"index {i}: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tolerance:R})");
    }

    [Fact]
    public void Diagonal_GivesAbsoluteValuesDescending()
    {
        double[] a =
        [
            3, 0, 0, 0,
            0, -7, 0, 0,
            0, 0, 0.5, 0,
            0, 0, 0, 2,
        ];
        AssertClose([7, 3, 2, 0.5], Svd.SingularValues(a, 4, 4), 1e-15);
    }

    [Fact]
    public void RectangularDiagonal_BothOrientations()
    {
        // 5×3 with diagonal (-1, 4, 2), and its 3×5 transpose.
        var tall = new double[15];
        tall[0 * 3 + 0] = -1; tall[1 * 3 + 1] = 4; tall[2 * 3 + 2] = 2;
        var wide = new double[15];
        wide[0 * 5 + 0] = -1; wide[1 * 5 + 1] = 4; wide[2 * 5 + 2] = 2;
        AssertClose([4, 2, 1], Svd.SingularValues(tall, 5, 3), 1e-15);
        AssertClose([4, 2, 1], Svd.SingularValues(wide, 3, 5), 1e-15);
    }

    [Fact]
    public void TwoByTwo_KnownValues()
    {
        // AᵀA = [[25, 20], [20, 25]]: eigenvalues 45 and 5.
        AssertClose([Math.Sqrt(45), Math.Sqrt(5)], Svd.SingularValues([3.0, 0, 4, 5], 2, 2), 1e-14);
    }

    [Fact]
    public void RankOneOuterProduct_HasOneNonzeroValue()
    {
        var rng = new Random(11);
        int m = 30, n = 12;
        var u = RandomMatrix(rng, m, 1);
        var v = RandomMatrix(rng, n, 1);
        var a = new double[m * n];
        for (var i = 0; i < m; i++)
        for (var j = 0; j < n; j++) a[i * n + j] = u[i] * v[j];
        var expected = Math.Sqrt(u.Sum(x => x * x)) * Math.Sqrt(v.Sum(x => x * x));

        var s = Svd.SingularValues(a, m, n);
        Assert.Equal(n, s.Length);
        Assert.Equal(expected, s[0], 1e-12 * expected);
        for (var i = 1; i < n; i++) Assert.True(s[i] < 1e-13 * expected, $"s[{i}] = {s[i]:R}");
    }

    [Theory]
    [InlineData(37, 13)]
    [InlineData(13, 37)]
    [InlineData(40, 40)]
    [InlineData(9, 1)]
    [InlineData(1, 9)]
    public void PrescribedSpectrum_IsRecovered(int rows, int cols)
    {
        var rng = new Random(rows * 1000 + cols);
        var k = Math.Min(rows, cols);
        // Spread over six decades, so small values must come out accurately next to large ones.
        var s = Enumerable.Range(0, k).Select(i => 100 * Math.Pow(1e-6, i / Math.Max(1.0, k - 1))).ToArray();
        var a = Compose(RandomOrthonormal(rng, rows, k), s, RandomOrthonormal(rng, cols, k), rows, cols);

        AssertClose(s, Svd.SingularValues(a, rows, cols), 1e-12 * s[0]);
    }

    [Fact]
    public void SumOfSquares_EqualsFrobeniusNorm()
    {
        var rng = new Random(5);
        var a = RandomMatrix(rng, 50, 21);
        var frobenius2 = a.Sum(x => x * x);
        var s = Svd.SingularValues(a, 50, 21);
        Assert.Equal(frobenius2, s.Sum(x => x * x), 1e-12 * frobenius2);
        for (var i = 1; i < s.Length; i++) Assert.True(s[i - 1] >= s[i], "not sorted descending");
    }

    [Fact]
    public void FloatOverload_MatchesDouble()
    {
        var rng = new Random(6);
        var f = new float[23 * 17];
        for (var i = 0; i < f.Length; i++) f[i] = (float)(rng.NextDouble() * 2 - 1);
        var d = Array.ConvertAll(f, x => (double)x);
        Assert.Equal(Svd.SingularValues(d, 23, 17), Svd.SingularValues(f, 23, 17));
        Assert.Equal(Svd.SingularValues(d, 17, 23), Svd.SingularValues(f, 17, 23));
    }

    [Theory]
    [InlineData(37, 13)]
    [InlineData(13, 37)]
    [InlineData(20, 20)]
    [InlineData(1, 1)]
    [InlineData(1, 6)]
    [InlineData(6, 1)]
    public void Decompose_ReconstructsWithOrthonormalFactors(int rows, int cols)
    {
        var rng = new Random(rows * 31 + cols);
        var a = RandomMatrix(rng, rows, cols);
        var (u, s, v) = Svd.Decompose(a, rows, cols);
        var k = Math.Min(rows, cols);

        Assert.Equal(rows * k, u.Length);
        Assert.Equal(k, s.Length);
        Assert.Equal(cols * k, v.Length);
        AssertClose(a, Compose(u, s, v, rows, cols), 1e-10);
        Assert.True(OrthonormalityError(u, rows, k) < 1e-10, "U columns not orthonormal");
        Assert.True(OrthonormalityError(v, cols, k) < 1e-10, "V columns not orthonormal");
        AssertClose(Svd.SingularValues(a, rows, cols), s, 0);
    }

    [Fact]
    public void Decompose_RankDeficient_CompletesU()
    {
        // 8×5 of rank 2 with an all-zero column: three zero singular values whose U columns must still be orthonormal.
        var rng = new Random(8);
        var a = Compose(RandomOrthonormal(rng, 8, 2), [3, 1], RandomOrthonormal(rng, 5, 2), 8, 5);
        for (var i = 0; i < 8; i++) a[i * 5 + 4] = 0;
        var (u, s, v) = Svd.Decompose(a, 8, 5);

        Assert.True(s[2] < 1e-14, $"s[2] = {s[2]:R}");
        AssertClose(a, Compose(u, s, v, 8, 5), 1e-12);
        Assert.True(OrthonormalityError(u, 8, 5) < 1e-10, "U columns not orthonormal");
        Assert.True(OrthonormalityError(v, 5, 5) < 1e-10, "V columns not orthonormal");
    }

    [Fact]
    public void ZeroColumn_GivesZeroSingularValue()
    {
        double[] a = [1, 0, 2, 3, 0, 4, 5, 0, 6];
        var s = Svd.SingularValues(a, 3, 3);
        Assert.Equal(0, s[2]);
        var expected = Svd.SingularValues([1.0, 2, 3, 4, 5, 6], 3, 2);
        AssertClose(expected, s[..2], 1e-14);
    }

    [Fact]
    public void ZeroMatrix()
    {
        Assert.Equal([0.0, 0, 0], Svd.SingularValues(new double[12], 3, 4));
        Assert.Equal([0.0, 0, 0], Svd.SingularValues(new float[12], 4, 3));
        var (u, s, v) = Svd.Decompose(new double[12], 4, 3);
        Assert.Equal([0.0, 0, 0], s);
        Assert.True(OrthonormalityError(u, 4, 3) < 1e-15, "U columns not orthonormal");
        Assert.True(OrthonormalityError(v, 3, 3) < 1e-15, "V columns not orthonormal");
    }

    [Fact]
    public void SmallShapes()
    {
        Assert.Equal([4.0], Svd.SingularValues([-4.0], 1, 1));
        Assert.Equal([5.0], Svd.SingularValues([3.0, -4], 1, 2));
        Assert.Equal([13.0], Svd.SingularValues([3.0, 4, 12], 3, 1));
    }

    [Theory]
    [InlineData(1e300)]
    [InlineData(1e-300)]
    public void ExtremeScale_NeitherOverflowsNorUnderflows(double scale)
    {
        double[] a = [3 * scale, 0, 4 * scale, 5 * scale];
        var s = Svd.SingularValues(a, 2, 2);
        Assert.Equal(Math.Sqrt(45) * scale, s[0], 1e-14 * scale);
        Assert.Equal(Math.Sqrt(5) * scale, s[1], 1e-14 * scale);
    }

    [Fact]
    public void ZeroSweeps_ReturnsColumnNorms()
    {
        // No rotation at all: the estimate is the sorted column norms of the (fewer-column) working matrix.
        double[] a = [3, 0, 4, 5];
        AssertClose([Math.Sqrt(25), Math.Sqrt(25)], Svd.SingularValues(a, 2, 2, maxSweeps: 0), 1e-15);
    }

    [Fact]
    public void SignificantCount_OnConstructedSpectrum()
    {
        double[] s = [10, 5, 0.5, 0.11, 0.1, 0.05, 0];
        Assert.Equal(4, Svd.SignificantCount(s, 0.01)); // threshold 0.1: 0.1 itself does not exceed it
        Assert.Equal(2, Svd.SignificantCount(s, 0.1));
        Assert.Equal(6, Svd.SignificantCount(s, 0));
        Assert.Equal(4, Svd.SignificantCount([0.1, 10, 0.11, 5, 0.5], 0.01)); // order does not matter
        Assert.Equal(0, Svd.SignificantCount([], 0.01));
        Assert.Equal(0, Svd.SignificantCount([0.0, 0], 0.01));
        Assert.Throws<ArgumentOutOfRangeException>(() => Svd.SignificantCount(s, double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => Svd.SignificantCount(s, -0.1));
        Assert.Throws<ArgumentException>(() => Svd.SignificantCount([1, -1], 0.01));
    }

    [Fact]
    public void SignificantCount_OfComputedSpectrum()
    {
        // Rank 3 plus noise at 1e-4 of the largest value: three values above 1%.
        var rng = new Random(9);
        var a = Compose(RandomOrthonormal(rng, 30, 3), [10, 2, 0.5], RandomOrthonormal(rng, 20, 3), 30, 20);
        for (var i = 0; i < a.Length; i++) a[i] += 1e-4 * (rng.NextDouble() - 0.5);
        Assert.Equal(3, Svd.SignificantCount(Svd.SingularValues(a, 30, 20), 0.01));
    }

    [Theory]
    [InlineData(0, 4, 0)]
    [InlineData(3, -1, 0)]
    [InlineData(3, 4, 11)]
    [InlineData(3, 4, 13)]
    public void BadShape_Throws(int rows, int cols, int length)
    {
        var ex = Assert.Throws<ArgumentException>(() => Svd.SingularValues(new double[length], rows, cols));
        Assert.Contains($"{rows}×{cols}", ex.Message);
        Assert.Contains(length.ToString(), ex.Message);
        Assert.Throws<ArgumentException>(() => Svd.SingularValues(new float[length], rows, cols));
        Assert.Throws<ArgumentException>(() => Svd.Decompose(new double[length], rows, cols));
    }

    [Fact]
    public void NonFiniteEntry_ThrowsWithPosition()
    {
        var a = new double[12];
        a[1 * 4 + 2] = double.NaN;
        a[2 * 4 + 3] = double.PositiveInfinity;
        var ex = Assert.Throws<ArgumentException>(() => Svd.SingularValues(a, 3, 4));
        Assert.Contains("(1, 2)", ex.Message);

        var f = new float[12];
        f[2 * 3 + 0] = float.NegativeInfinity;
        ex = Assert.Throws<ArgumentException>(() => Svd.SingularValues(f, 4, 3));
        Assert.Contains("(2, 0)", ex.Message);

        Assert.Throws<ArgumentException>(() => Svd.Decompose(a, 3, 4));
    }

    [Fact]
    public void BadTolerance_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Svd.SingularValues([1.0], 1, 1, tolerance: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Svd.SingularValues([1.0], 1, 1, tolerance: double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => Svd.SingularValues([1.0], 1, 1, maxSweeps: -1));
    }
}
