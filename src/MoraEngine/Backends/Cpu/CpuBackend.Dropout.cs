using System.Buffers;
using System.Numerics.Tensors;

namespace MoraEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    // ---------------------------------------------------------------- Dropout

    public void DropoutMask(Tensor mask, float p, ulong seed)
    {
        var M = mask.CpuArray;
        var mo = mask.Offset;
        var keep = 1f / (1f - p);
        CpuParallel.For(mask.Length, 1 << 16, (s, e) =>
        {
            for (var i = s; i < e; i++)
                M[mo + i] = DropoutUniform(seed, i) >= p ? keep : 0f;
        });
    }

    /// <summary>
    /// A uniform [0, 1) number for element <paramref name="i"/> (splitmix64 of seed and index): counter-based, so
    /// any thread or device can produce any element independently.
    /// </summary>
    internal static float DropoutUniform(ulong seed, long i)
    {
        var z = seed + (ulong)(i + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 40) * (1f / (1 << 24));
    }

    public void ApplyMask(Tensor x, Tensor mask, Tensor y, bool accumulate)
    {
        float[] X = x.CpuArray, M = mask.CpuArray, Y = y.CpuArray;
        int xo = x.Offset, mo = mask.Offset, yo = y.Offset;
        CpuParallel.For(x.Length, 1 << 16, (s, e) =>
        {
            var n = e - s;
            ReadOnlySpan<float> xs = X.AsSpan(xo + s, n), ms = M.AsSpan(mo + s, n);
            var ys = Y.AsSpan(yo + s, n);
            if (accumulate) Simd.MultiplyAdd(xs, ms, ys, ys);
            else Simd.Multiply(xs, ms, ys);
        });
    }
}
