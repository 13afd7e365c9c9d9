using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

public sealed partial class IlgpuBackend
{
    // ---------------------------------------------------------------- Dropout

    private Action<Index1D, ArrayView<float>, float, ulong>? _kDropoutMask;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? _kApplyMask;

    /// <summary>The CPU backend's counter-based uniform (splitmix64 of seed and index), bit for bit.</summary>
    private static void DropoutMaskKernel(Index1D i, ArrayView<float> mask, float p, ulong seed)
    {
        var z = seed + (ulong)((long)(int)i + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        var u = (int)(z >> 40) * (1f / (1 << 24));
        mask[i] = u >= p ? 1f / (1f - p) : 0f;
    }

    public void DropoutMask(Tensor mask, float p, ulong seed)
    {
        if (mask.Length == 0) return;
        (_kDropoutMask ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float, ulong>(DropoutMaskKernel))(mask.Length, V(mask), p, seed);
    }

    private static void ApplyMaskKernel(Index1D i, ArrayView<float> x, ArrayView<float> mask, ArrayView<float> y, int accumulate)
    {
        var v = x[i] * mask[i];
        y[i] = accumulate != 0 ? y[i] + v : v;
    }

    public void ApplyMask(Tensor x, Tensor mask, Tensor y, bool accumulate)
    {
        if (x.Length == 0) return;
        (_kApplyMask ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ApplyMaskKernel))(
            x.Length, V(x), V(mask), V(y), accumulate ? 1 : 0);
    }
}
