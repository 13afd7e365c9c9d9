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

    /// <summary>A trained 16×16 MoRA M (type 1 on a 64×64 layer) whose ΔW once produced a NaN spectrum.</summary>
    private static readonly float[] TrainedSharingM =
    [
        0.007905407f, -0.0063579665f, 0.0071619563f, 0.0069423122f, -0.0040864698f, -0.007283098f, -0.004785318f, -0.007602785f,
        0.0061364127f, 0.005516846f, 0.007785595f, -0.005882875f, -0.0074656685f, 0.0004196295f, 0.004436631f, -0.00812613f,
        -0.0031690174f, 0.0027763536f, -0.0031920746f, -0.0037107524f, 0.0010933387f, 0.0030054678f, 0.004963704f, 0.0033070082f,
        -0.0069819014f, -0.00456379f, -0.002933859f, 0.0028113886f, 0.00059182715f, -0.0003206029f, -0.0010886483f, 0.00342613f,
        -0.0065927934f, 0.0067944354f, -0.006898201f, -0.006829947f, -0.0019505043f, 0.00661612f, 0.004818766f, 0.0068806196f,
        -0.005402193f, -0.006633496f, -0.006834359f, 0.0061458754f, 0.0062923036f, 0.0024210794f, -0.006651895f, 0.0066167014f,
        -0.0031655815f, 0.0011926366f, -0.001745587f, -0.0022412862f, 0.006101051f, 0.0018404558f, 0.0021361306f, 0.0029179743f,
        -0.005130154f, -0.0023404248f, -0.0021079225f, 0.00024956907f, 6.4164255E-05f, -0.0035302835f, 0.0008344409f, 0.0035791742f,
        -0.0007086553f, -0.0019811005f, 5.6196586E-07f, 5.4078933E-05f, 0.0008998628f, -0.00072042935f, -0.0048216116f, -0.00019089511f,
        0.0008612126f, 0.0035111415f, 0.0013902015f, 0.00022998953f, 0.00097217894f, -0.0014194573f, -0.00053046533f, 0.0030369502f,
        0.0029767319f, -0.0043356232f, 0.0046296148f, 0.0030943775f, 0.0076640225f, -0.0047251727f, -0.005170353f, -0.003640029f,
        -0.0015505804f, 0.0045801518f, 0.0045260848f, -0.002013452f, -0.0055712475f, -0.0021422158f, 0.0037860824f, -0.0022904878f,
        0.0055281674f, -0.0054203128f, 0.0053670797f, 0.0057299803f, -0.007205161f, -0.0049409186f, -0.004822383f, -0.0056337905f,
        0.0061717103f, 0.0050932476f, 0.005368712f, -0.0039704996f, -0.004145629f, -0.004077346f, 0.00575402f, -0.006610109f,
        0.0074501312f, -0.0074583218f, 0.0075193346f, 0.0076647457f, 0.0038327659f, -0.007378972f, -0.0072247535f, -0.0074779503f,
        0.0069661876f, 0.006958889f, 0.0073682955f, -0.0071034366f, -0.007331524f, -0.0040413104f, 0.007855013f, -0.0077578677f,
        -0.0038636613f, 0.0022500353f, -0.0034092893f, -0.0044291494f, 0.004842361f, 0.0027245816f, 0.00014173455f, 0.003475402f,
        -0.0071910284f, -0.0019276517f, -0.0032880395f, 0.0024905088f, 0.0029493945f, 0.0031743613f, -0.0045726164f, 0.0051583406f,
        -0.0070013306f, 0.006754978f, -0.0069520716f, -0.0064483266f, -0.004264858f, 0.006918641f, 0.006976165f, 0.0068330048f,
        -0.0058672926f, -0.0062640924f, -0.0066208257f, 0.0045691766f, 0.007128577f, 0.003643245f, -0.006569513f, 0.0064253123f,
        0.0047778925f, 0.0037390953f, 0.00061519933f, 0.001753156f, -0.007856311f, 0.0021964272f, 0.0030009467f, -0.0020078518f,
        0.005282602f, -0.0036137453f, -0.0018899303f, 0.00093318016f, 0.00017224916f, -0.0017552758f, 0.0036338274f, -0.007869327f,
        -0.0051395097f, 0.0023223208f, -0.0029090894f, -0.0037073803f, 0.00245139f, 0.002378555f, 0.0042921407f, 0.0032610837f,
        -0.0072027138f, -0.002977565f, -0.0023161704f, 0.005195871f, 0.00410235f, -0.0023983822f, -0.0039444156f, 0.0059461463f,
        -0.0012542976f, -0.0042625917f, 0.0025223168f, 0.00085711473f, 0.0047302847f, -0.0031306595f, -0.006186577f, -0.0019986797f,
        -0.0014043001f, 0.006710749f, 0.003173418f, 0.005873642f, -0.00429043f, -0.0056398395f, 0.004727097f, 0.00037021603f,
        0.0032113881f, -0.0032717446f, 0.0029591878f, 0.0035077084f, 0.005795682f, -0.003067841f, -0.0019494285f, -0.002864697f,
        0.00010969699f, 0.0023947991f, 0.0034427827f, -0.0078107743f, -0.0027501911f, 0.0043170396f, 0.000106897496f, -0.002900348f,
        0.00043508195f, 0.0022883436f, -0.0012966318f, -0.0006678291f, -0.0016797913f, 0.0019975072f, 0.0041414713f, 0.0011007373f,
        0.0022194767f, -0.0038379957f, -0.0023194442f, -0.0017306511f, 0.0011342261f, 0.0036186515f, -0.0011296899f, -0.0018212844f,
        0.00094492215f, 0.00013702038f, 0.0013404235f, 0.0003325718f, -0.00086576765f, -0.0009677551f, 0.0013376281f, -0.00072742335f,
        -0.00039842125f, -0.0007071639f, 0.00086075533f, 0.0021466843f, -0.0019505599f, -0.0013161378f, 0.002556822f, -0.0023628443f,
    ];

    /// <summary>
    /// MoRA's sharing operator gives ΔW with exactly repeated columns (each column four times here); Jacobi drives
    /// the copies to subnormal dust, which once made α·β underflow to 0 with γ = 0, so ζ = 0/0 turned the whole
    /// spectrum into NaN.
    /// </summary>
    [Fact]
    public void RepeatedColumns_OfAMoraDelta_ConvergeWithoutNaN_AndKeepTheRank()
    {
        var op = new MoraEngine.Adapters.MoraOperator(64, 64, 16, MoraEngine.Adapters.MoraType.Sharing);
        var delta = op.DeltaWeight(TrainedSharingM);
        var s = Svd.SingularValues(delta, 64, 64);
        Assert.All(s, v => Assert.True(double.IsFinite(v), $"singular value {v}"));
        Assert.InRange(s[0], 0.2, 0.3);
        Assert.Equal(16, Svd.SignificantCount(s, 1e-6));   // rank ≤ r̂ = 16: four copies of each column
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
