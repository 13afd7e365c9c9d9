using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoraEngine.Adapters;

/// <summary>
/// Short names for the loads, stores and checks that generated MoRA kernels use, so the emitted code reads like
/// the math. Not meant to be called by hand.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class MoraKernelSimd
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(ref float p, int i) => Vector512.LoadUnsafe(ref p, (nuint)i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store16(ref float p, int i, Vector512<float> v) => v.StoreUnsafe(ref p, (nuint)i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(ref float p, int i) => Vector256.LoadUnsafe(ref p, (nuint)i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store8(ref float p, int i, Vector256<float> v) => v.StoreUnsafe(ref p, (nuint)i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load4(ref float p, int i) => Vector128.LoadUnsafe(ref p, (nuint)i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store4(ref float p, int i, Vector128<float> v) => v.StoreUnsafe(ref p, (nuint)i);

    /// <summary>chunks·r̂ after checking chunks: 1 for every type but RoPE, 1 ..= G for RoPE.</summary>
    public static int CompressedWidth(int chunks, int maxChunks, int rHat, string kernel)
    {
        if (chunks < 1 || chunks > maxChunks)
            throw new ArgumentOutOfRangeException(nameof(chunks), $"MoRA kernel {kernel}: chunks must be in [1, {maxChunks}], got {chunks}.");
        return chunks * rHat;
    }

    /// <summary>Both spans hold at least rows rows of their widths (the kernels index them without bounds checks).</summary>
    public static void CheckRows(string kernel, int rows, int srcLength, int srcWidth, int dstLength, int dstWidth)
    {
        if (rows < 0 || (long)rows * srcWidth > srcLength || (long)rows * dstWidth > dstLength)
            throw new ArgumentException($"MoRA kernel {kernel}: {rows} rows need {(long)rows * srcWidth} source and {(long)rows * dstWidth} destination values, got {srcLength} and {dstLength}.");
    }
}
