using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoraEngine.Backends.Cpu;

// Register-blocked micro-kernels. Each computes one MR×NR tile of C from an MR-row micro-panel of
// packed A and an NR-column micro-panel of packed B:
//     acc = Σ_p a[p·MR + i] · b[p·NR + j]            (one FMA chain per element, ascending p)
//     C   = alpha·acc + beta·C   (beta == 0: C is not read)
// Rows are broadcast from A and columns are vectors of B, so each accumulator row is a row segment
// of C and is stored with plain vector loads/stores. Edge tiles (mr < MR or nr < NR) are computed
// in full against the zero padding of the packed panels, written to a scratch tile and merged.
internal static unsafe partial class Sgemm
{
    // AVX-512: 8×32 tile = 16 zmm accumulators + 2 B vectors + 1 broadcast, well inside the 32
    // registers. Per k step: 2 vector loads + 8 broadcasts feed 16 FMAs, enough independent chains to
    // cover FMA latency on both pipes.
    private const int Mr512 = 8, Nr512 = 32;
    // AVX2: the classic 6×16 tile = 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16 registers.
    private const int Mr256 = 6, Nr256 = 16;
    private const int MrScalar = 4, NrScalar = 8;
    private const int MaxTile = 8 * 32;

    /// <summary>The packed micro-kernel: <see cref="KernelStrided512{TPrefetch}"/> over packed panels (MR and NR values per step).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel512(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta,
        int mr, int nr, float* tile) =>
        KernelStrided512<NoPrefetch>(kc, a, Mr512, b, Nr512, c, ldc, alpha, beta, mr, nr, tile);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* dst, Vector512<float> x0, Vector512<float> x1, float alpha, float beta)
    {
        var va = Vector512.Create(alpha);
        if (beta == 0f)
        {
            Vector512.Store(x0 * va, dst);
            Vector512.Store(x1 * va, dst + 16);
        }
        else
        {
            var vb = Vector512.Create(beta);
            Vector512.Store(Avx512F.FusedMultiplyAdd(x0, va, Vector512.Load(dst) * vb), dst);
            Vector512.Store(Avx512F.FusedMultiplyAdd(x1, va, Vector512.Load(dst + 16) * vb), dst + 16);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta,
        int mr, int nr, float* tile)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default;

        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> av = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            av = Vector256.Create(a[4]);
            c40 = Fma.MultiplyAdd(av, b0, c40); c41 = Fma.MultiplyAdd(av, b1, c41);
            av = Vector256.Create(a[5]);
            c50 = Fma.MultiplyAdd(av, b0, c50); c51 = Fma.MultiplyAdd(av, b1, c51);
            a += 6;
            b += 16;
        }

        bool full = mr == Mr256 && nr == Nr256;
        float* dst = full ? c : tile;
        nint ld = full ? ldc : Nr256;
        float al = full ? alpha : 1f, bt = full ? beta : 0f;
        Store256(dst, c00, c01, al, bt);
        Store256(dst + ld, c10, c11, al, bt);
        Store256(dst + 2 * ld, c20, c21, al, bt);
        Store256(dst + 3 * ld, c30, c31, al, bt);
        Store256(dst + 4 * ld, c40, c41, al, bt);
        Store256(dst + 5 * ld, c50, c51, al, bt);
        if (!full) MergeTile(tile, Nr256, c, ldc, alpha, beta, mr, nr);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* dst, Vector256<float> x0, Vector256<float> x1, float alpha, float beta)
    {
        var va = Vector256.Create(alpha);
        if (beta == 0f)
        {
            Vector256.Store(x0 * va, dst);
            Vector256.Store(x1 * va, dst + 8);
        }
        else
        {
            var vb = Vector256.Create(beta);
            Vector256.Store(Fma.MultiplyAdd(x0, va, Vector256.Load(dst) * vb), dst);
            Vector256.Store(Fma.MultiplyAdd(x1, va, Vector256.Load(dst + 8) * vb), dst + 8);
        }
    }

    /// <summary>Portable kernel: same packing and accumulation order, scalar FMA per element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelScalar(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta,
        int mr, int nr, float* tile)
    {
        float* acc = stackalloc float[MrScalar * NrScalar];
        new Span<float>(acc, MrScalar * NrScalar).Clear();
        for (int p = 0; p < kc; p++, a += MrScalar, b += NrScalar)
        {
            for (int i = 0; i < MrScalar; i++)
            {
                float ai = a[i];
                float* row = acc + i * NrScalar;
                for (int j = 0; j < NrScalar; j++) row[j] = MathF.FusedMultiplyAdd(ai, b[j], row[j]);
            }
        }

        MergeTile(acc, NrScalar, c, ldc, alpha, beta, mr, nr);
    }

    /// <summary>
    /// C[0..mr, 0..nr] = alpha·tile + beta·C with the same rounding as the vector stores
    /// (fma(acc, alpha, beta·C)); C is not read when beta == 0.
    /// </summary>
    private static void MergeTile(float* tile, nint ldt, float* c, nint ldc, float alpha, float beta, int mr, int nr)
    {
        for (int i = 0; i < mr; i++, tile += ldt, c += ldc)
        {
            if (beta == 0f)
                for (int j = 0; j < nr; j++) c[j] = tile[j] * alpha;
            else
                for (int j = 0; j < nr; j++) c[j] = MathF.FusedMultiplyAdd(tile[j], alpha, c[j] * beta);
        }
    }
}
