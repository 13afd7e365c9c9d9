using MoraEngine.Backends.Ilgpu;
using Xunit;

namespace MoraEngine.Tests.Ilgpu;

/// <summary>
/// The tiled SGEMM on ILGPU's CPU accelerator against a double-precision reference: every transpose variant, sizes
/// that leave partial tiles and partial k slices, operands that are 16-byte aligned (128-bit load/store paths) and
/// ones that start one float off (scalar paths), batches, beta, and split-k.
/// </summary>
[Trait("Backend", "Ilgpu")]
[Collection("Ilgpu")]
public class IlgpuGemmTests
{
    public static TheoryData<int, int, int, int, bool, bool, int> Cases()
    {
        var data = new TheoryData<int, int, int, int, bool, bool, int>();
        foreach (var (ta, tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
        {
            // batch, m, n, k, transA, transB, operand offset in floats (0 and 4: aligned; 1: not)
            data.Add(1, 132, 136, 44, ta, tb, 0);
            data.Add(1, 132, 136, 44, ta, tb, 1);
            data.Add(1, 130, 129, 37, ta, tb, 0);
            data.Add(2, 68, 140, 20, ta, tb, 4);
            data.Add(1, 100, 124, 600, ta, tb, 0);
        }
        // MoRA's gM = gŷᵀ·x̂: one partial tile, a very long k, more than 16 slices where the accelerator allows.
        data.Add(1, 90, 90, 4500, true, false, 0);
        data.Add(1, 18, 22, 5100, true, false, 1);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Tiled_MatchesReference(int batch, int m, int n, int k, bool ta, bool tb, int offset)
    {
        var be = (IlgpuBackend)IlgpuFixture.Device.Backend;
        var rng = new Rng((ulong)(1000 + m * 7 + n * 3 + k + (ta ? 1 : 0) + (tb ? 2 : 0) + offset));
        long sA = (long)m * k, sB = (long)k * n, sC = (long)m * n;
        var a = Rand(rng, offset + batch * sA);
        var b = Rand(rng, offset + batch * sB);
        var c0 = Rand(rng, offset + batch * sC);
        const float alpha = 0.75f, beta = 0.5f;

        var expect = (float[])c0.Clone();
        for (var z = 0; z < batch; z++)
            for (var i = 0; i < m; i++)
                for (var j = 0; j < n; j++)
                {
                    double s = 0;
                    for (var p = 0; p < k; p++)
                    {
                        var av = a[offset + z * sA + (ta ? (long)p * m + i : (long)i * k + p)];
                        var bv = b[offset + z * sB + (tb ? (long)j * k + p : (long)p * n + j)];
                        s += (double)av * bv;
                    }
                    var at = offset + z * sC + (long)i * n + j;
                    expect[at] = (float)(alpha * s + beta * c0[at]);
                }

        var dev = IlgpuFixture.Device;
        Tensor View(float[] x) => Tensor.FromArray(x, x.Length).To(dev).ViewOf(offset, [x.Length - offset], false);
        var ta_ = View(a);
        var tb_ = View(b);
        var tcFull = Tensor.FromArray(c0, c0.Length).To(dev);
        var tc = tcFull.ViewOf(offset, [c0.Length - offset], false);
        var keep = be.ForceTiledGemm;
        be.ForceTiledGemm = true;
        // Long-k cases: aim for as many groups as a GPU would (264 on an H200), so split-k takes more than 16 slices.
        if (k >= 3000) be.SplitTargetGroups = 264;
        try
        {
            be.Gemm(batch, m, n, k, alpha, ta_, ta, sA, tb_, tb, sB, beta, tc, sC);
        }
        finally
        {
            be.ForceTiledGemm = keep;
            be.SplitTargetGroups = 0;
        }
        var got = tcFull.ToArray();

        var args = be.LastTiledArgs;
        var aligned = offset % 4 == 0 ? 1 : 0;
        Assert.Equal(aligned != 0 && (ta ? m : k) % 4 == 0 ? 1 : 0, args.VecA);
        Assert.Equal(aligned != 0 && (tb ? k : n) % 4 == 0 ? 1 : 0, args.VecB);
        if (args.KSplit == 1) Assert.Equal(aligned != 0 && n % 4 == 0 ? 1 : 0, args.VecC);
        if (k >= 512) Assert.True(args.KSplit > 1, "the k = 600 case should take the split-k path");
        if (k >= 3000) Assert.True(args.KSplit > 16, "a long-k product should take more than 16 slices");

        var tol = 2e-5 * Math.Max(8, Math.Sqrt(k));
        for (var i = 0; i < got.Length; i++)
            Assert.True(Math.Abs(got[i] - expect[i]) <= tol * Math.Max(1, Math.Abs(expect[i])),
                $"element {i}: got {got[i]}, expected {expect[i]}");
    }

    private static float[] Rand(Rng rng, long n)
    {
        var x = new float[n];
        for (var i = 0; i < n; i++) x[i] = rng.NextFloat() - 0.5f;
        return x;
    }
}
