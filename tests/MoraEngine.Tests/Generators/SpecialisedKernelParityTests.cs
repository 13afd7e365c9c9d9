using System.Runtime.Intrinsics;
using MoraEngine.Adapters;
using Xunit;

namespace MoraEngine.Tests.Generators;

/// <summary>
/// Every generated kernel (the library's shipped shapes and this assembly's, see GoldenKernels.cs) against the generic
/// CPU kernels on random inputs: the four operations, both accumulate modes, and for RoPE both the active and the full
/// chunk count; then the fused MoraDelta forward and backward through each path.
/// </summary>
public class SpecialisedKernelParityTests
{
    private const double Tolerance = 2e-6;

    public static IEnumerable<object[]> Kernels() =>
        MoraKernelRegistry.Loaded.Select(k => new object[] { k.In, k.Out, k.RHat, (int)k.Type });

    [Fact]
    public void Registry_HoldsTheLibraryAndTestAssemblyKernels()
    {
        var loaded = MoraKernelRegistry.Loaded.Select(k => (k.In, k.Out, k.RHat, k.Type)).ToHashSet();
        Assert.Contains((256, 1024, 101, MoraType.Sharing), loaded);    // small-cpu.mora.json
        Assert.Contains((512, 2048, 142, MoraType.Rope), loaded);       // small-gpu.mora.json
        Assert.Contains((128, 512, 72, MoraType.Sharing), loaded);      // uuid-demo.mora.json
        Assert.Contains((1024, 1024, 128, MoraType.Sharing), loaded);   // MoraKernels.Shipped.cs
        Assert.Contains((100, 40, 16, MoraType.Rope), loaded);          // GoldenKernels.cs in this assembly
        Assert.True(MoraKernelRegistry.Loaded.Count >= 30);
    }

    [Fact]
    public void Operator_PicksUpItsSpecialisation_AndFallsBackWithoutOne()
    {
        var op = new MoraOperator(256, 1024, 101, MoraType.Sharing);
        Assert.Equal(Vector256.IsHardwareAccelerated, op.Kernels != null);
        Assert.Null(new MoraOperator(256, 1024, 100, MoraType.Sharing).Kernels); // no kernels for this r̂
        Assert.Null(new MoraOperator(256, 1024, 101, MoraType.Sharing, specialise: false).Kernels);
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void SpecialisedKernels_EqualGeneric(int inF, int outF, int rHat, int typeValue)
    {
        var type = (MoraType)typeValue;
        var fast = new MoraOperator(inF, outF, rHat, type);
        var slow = new MoraOperator(inF, outF, rHat, type, specialise: false);
        if (!Vector256.IsHardwareAccelerated) return; // the registry hands out nothing here; the generic path is all there is
        Assert.NotNull(fast.Kernels);
        var label = fast.ToString();
        var rng = new Rng((ulong)(inF * 31 + outF * 7 + rHat + typeValue));
        const int rows = 5;
        foreach (var chunks in new[] { fast.ActiveChunks, fast.Chunks }.Distinct())
        {
            var w = chunks * rHat;
            var x = Tensor.RandN(rng, 1f, rows, inF);
            var yh = Tensor.RandN(rng, 1f, rows, w);
            var gy = Tensor.RandN(rng, 1f, rows, outF);
            var baseY = Tensor.RandN(rng, 1f, rows, outF);
            var baseGx = Tensor.RandN(rng, 1f, rows, inF);
            var be = x.Device.Backend;

            Tensor Run(MoraOperator op, Action<MoraOperator, Tensor> kernel, Tensor start)
            {
                var t = Tensor.FromArray(start.ToArray(), start.ShapeArray);
                kernel(op, t);
                return t;
            }

            var zc = Tensor.Zeros(rows, w);
            Close(Run(fast, (op, t) => be.MoraCompress(op, x, t, rows, chunks), zc), Run(slow, (op, t) => be.MoraCompress(op, x, t, rows, chunks), zc), $"{label} compress, {chunks} chunks");
            Close(Run(fast, (op, t) => be.MoraDecompressAdd(op, yh, t, rows, chunks), baseY), Run(slow, (op, t) => be.MoraDecompressAdd(op, yh, t, rows, chunks), baseY), $"{label} decompress, {chunks} chunks");
            Close(Run(fast, (op, t) => be.MoraDecompressBackward(op, gy, t, rows, chunks), zc), Run(slow, (op, t) => be.MoraDecompressBackward(op, gy, t, rows, chunks), zc), $"{label} decompress backward, {chunks} chunks");
            foreach (var acc in new[] { false, true })
                Close(Run(fast, (op, t) => be.MoraCompressBackward(op, yh, t, rows, chunks, acc), baseGx), Run(slow, (op, t) => be.MoraCompressBackward(op, yh, t, rows, chunks, acc), baseGx), $"{label} compress backward, {chunks} chunks, accumulate {acc}");
        }

        // The fused op, forward and backward, through each path.
        var xin = Tensor.RandN(rng, 1f, 2, 3, inF);
        var m = Tensor.RandN(rng, 0.1f, rHat, rHat);
        var b = Tensor.RandN(rng, 1f, 2, 3, outF);
        (float[] Y, float[] Gx, float[] Gm) Fused(MoraOperator op)
        {
            var xx = Tensor.FromArray(xin.ToArray(), xin.ShapeArray);
            var mm = Tensor.FromArray(m.ToArray(), m.ShapeArray);
            xx.RequiresGrad = mm.RequiresGrad = true;
            var y = Ops.MoraDelta(xx, mm, op, b);
            Ops.SumAll(Ops.Mul(y, y)).Backward();
            return (y.ToArray(), xx.Grad!.ToArray(), mm.Grad!.ToArray());
        }
        var (y1, gx1, gm1) = Fused(fast);
        var (y2, gx2, gm2) = Fused(slow);
        Close(y1, y2, $"{label} MoraDelta y");
        Close(gx1, gx2, $"{label} MoraDelta gx");
        Close(gm1, gm2, $"{label} MoraDelta gM");
    }

    private static void Close(Tensor a, Tensor b, string what) => Close(a.ToArray(), b.ToArray(), what);

    private static void Close(float[] a, float[] b, string what)
    {
        Assert.Equal(b.Length, a.Length);
        double err = 0, scale = 1e-30;
        var at = -1;
        for (var i = 0; i < a.Length; i++)
        {
            var e = Math.Abs((double)a[i] - b[i]);
            if (e > err) { err = e; at = i; }
            scale = Math.Max(scale, Math.Abs((double)b[i]));
        }
        Assert.True(err / scale < Tolerance, $"{what}: relative error {err / scale:E3} at {at} (specialised {(at >= 0 ? a[at] : 0)}, generic {(at >= 0 ? b[at] : 0)})");
    }
}
