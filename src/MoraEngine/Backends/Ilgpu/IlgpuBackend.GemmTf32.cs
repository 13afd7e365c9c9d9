using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace MoraEngine.Backends.Ilgpu;

/// <summary>
/// Opt-in TF32 tensor-core SGEMM (<see cref="Tf32"/>, or <c>MORA_TF32=1</c>): the tiled kernel's loading pipeline
/// (128×128 tile of C per 256 threads, k in slices of 8 through double-buffered k-major shared tiles, transposed
/// operands read in place, split-k) with the multiply done by <c>mma.sync.aligned.m16n8k8</c> on TF32 operands
/// and float32 accumulators. Each warp owns a 64×32 block of the tile (2 warps along m, 4 along n) as 4 × 4 mma
/// tiles of 16×8. Operands are rounded to TF32 (cvt.rna: 10 mantissa bits, as cuBLAS and PyTorch do with TF32
/// allowed) when staged into shared memory; products are exact in float32 and accumulate in float32, so results
/// differ from float32 SGEMM by the input rounding only (about 1e-3 relative).
/// On accelerators other than CUDA (ILGPU's CPU accelerator in the tests) the mma is emulated with warp shuffles
/// using the same fragment layout, so the kernel's indexing is tested without a GPU.
/// </summary>
public sealed partial class IlgpuBackend
{
    /// <summary>Row stride of the TF32 kernel's k-major shared tiles: 128 + 8, so fragment loads (bank 8·t + g) are conflict-free.</summary>
    internal const int Tf32Stride = TileM + 8;

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? _kGemmTf32;

    /// <summary>
    /// Large matrix products use TF32 tensor cores (faster, about 1e-3 relative error instead of float32's 1e-7).
    /// Off unless set here or by the environment variable <c>MORA_TF32=1</c>; needs 32-lane warps.
    /// </summary>
    public bool Tf32 { get; set; } = Environment.GetEnvironmentVariable("MORA_TF32") == "1";

    /// <summary>Whether the next large GEMM takes the TF32 kernel.</summary>
    private bool UseTf32 => Tf32 && _acc.WarpSize == 32;

    /// <summary>The four accumulators (c0..c3) of one 16×8 mma tile: rows g and g + 8, columns 2t and 2t + 1.</summary>
    private struct MmaTile
    {
        public float C0, C1, C2, C3;
    }

    /// <summary>A warp's 64×32 block: mma tiles Tij, i along m (16 rows each), j along n (8 columns each).</summary>
    private struct MmaAcc
    {
        public MmaTile T00, T01, T02, T03, T10, T11, T12, T13, T20, T21, T22, T23, T30, T31, T32, T33;
    }

    /// <summary>x rounded to TF32 (round to nearest, ties away from zero), kept in a float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float RoundTf32(float x)
    {
        if (CudaAsm.IsSupported)
        {
            Input<float> input = x;
            Output<uint> bits = default;
            CudaAsm.EmitRef("cvt.rna.tf32.f32 %0, %1;", ref bits, ref input);
            return Interop.IntAsFloat(bits.Value);
        }
        var u = Interop.FloatAsInt(x);
        if ((u & 0x7F800000u) == 0x7F800000u) return x; // inf and NaN stay as they are
        return Interop.IntAsFloat((u + 0x1000u) & 0xFFFFE000u);
    }

    /// <summary>
    /// d = a·b + c for one warp: a 16×8 TF32 tile of A (row-major fragments a0..a3: (g, t), (g + 8, t), (g, t + 4),
    /// (g + 8, t + 4)), an 8×8 tile of B (b0, b1: (t, g), (t + 4, g)) and a 16×8 float tile of C, with
    /// g = lane / 4 and t = lane mod 4. Every lane of the warp must call it together.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static MmaTile Mma(MmaTile c, float a0, float a1, float a2, float a3, float b0, float b1)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> d0 = c.C0, d1 = c.C1, d2 = c.C2, d3 = c.C3;
            Input<uint> x0 = Interop.FloatAsInt(a0), x1 = Interop.FloatAsInt(a1), x2 = Interop.FloatAsInt(a2), x3 = Interop.FloatAsInt(a3);
            Input<uint> y0 = Interop.FloatAsInt(b0), y1 = Interop.FloatAsInt(b1);
            CudaAsm.EmitRef("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
                ref d0, ref d1, ref d2, ref d3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
            c.C0 = d0.Value;
            c.C1 = d1.Value;
            c.C2 = d2.Value;
            c.C3 = d3.Value;
            return c;
        }
        // Emulation: each lane gathers its two rows of A and two columns of B from the lanes holding them.
        var lane = Warp.LaneIdx;
        int g = lane >> 2, t = lane & 3;
        for (var k = 0; k < 4; k++)
        {
            var fromA = g * 4 + k;
            var fromB0 = t * 8 + k;     // column 2t: lane 2t·4 + k
            var fromB1 = t * 8 + 4 + k; // column 2t + 1
            float r0k = Warp.Shuffle(a0, fromA), r1k = Warp.Shuffle(a1, fromA);
            float r0k4 = Warp.Shuffle(a2, fromA), r1k4 = Warp.Shuffle(a3, fromA);
            float bk0 = Warp.Shuffle(b0, fromB0), bk1 = Warp.Shuffle(b0, fromB1);
            float bk40 = Warp.Shuffle(b1, fromB0), bk41 = Warp.Shuffle(b1, fromB1);
            c.C0 += r0k * bk0 + r0k4 * bk40;
            c.C1 += r0k * bk1 + r0k4 * bk41;
            c.C2 += r1k * bk0 + r1k4 * bk40;
            c.C3 += r1k * bk1 + r1k4 * bk41;
        }
        return c;
    }

    /// <summary>One k slice of 8 from shared memory (float offset <paramref name="at"/>): 4 A and 4 B fragments, 16 mma.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static MmaAcc MmaSlice(MmaAcc acc, ArrayView<float> sA, ArrayView<float> sB, int at, int wm, int wn, int g, int t)
    {
        var ra = at + t * Tf32Stride + wm + g;
        var rb = at + t * Tf32Stride + wn + g;
        const int k4 = 4 * Tf32Stride;
        float a00 = sA[ra + 0], a01 = sA[ra + 8], a02 = sA[ra + k4 + 0], a03 = sA[ra + k4 + 8];
        float a10 = sA[ra + 16], a11 = sA[ra + 24], a12 = sA[ra + k4 + 16], a13 = sA[ra + k4 + 24];
        float a20 = sA[ra + 32], a21 = sA[ra + 40], a22 = sA[ra + k4 + 32], a23 = sA[ra + k4 + 40];
        float a30 = sA[ra + 48], a31 = sA[ra + 56], a32 = sA[ra + k4 + 48], a33 = sA[ra + k4 + 56];
        float b00 = sB[rb + 0], b01 = sB[rb + k4 + 0];
        float b10 = sB[rb + 8], b11 = sB[rb + k4 + 8];
        float b20 = sB[rb + 16], b21 = sB[rb + k4 + 16];
        float b30 = sB[rb + 24], b31 = sB[rb + k4 + 24];
        acc.T00 = Mma(acc.T00, a00, a01, a02, a03, b00, b01);
        acc.T01 = Mma(acc.T01, a00, a01, a02, a03, b10, b11);
        acc.T02 = Mma(acc.T02, a00, a01, a02, a03, b20, b21);
        acc.T03 = Mma(acc.T03, a00, a01, a02, a03, b30, b31);
        acc.T10 = Mma(acc.T10, a10, a11, a12, a13, b00, b01);
        acc.T11 = Mma(acc.T11, a10, a11, a12, a13, b10, b11);
        acc.T12 = Mma(acc.T12, a10, a11, a12, a13, b20, b21);
        acc.T13 = Mma(acc.T13, a10, a11, a12, a13, b30, b31);
        acc.T20 = Mma(acc.T20, a20, a21, a22, a23, b00, b01);
        acc.T21 = Mma(acc.T21, a20, a21, a22, a23, b10, b11);
        acc.T22 = Mma(acc.T22, a20, a21, a22, a23, b20, b21);
        acc.T23 = Mma(acc.T23, a20, a21, a22, a23, b30, b31);
        acc.T30 = Mma(acc.T30, a30, a31, a32, a33, b00, b01);
        acc.T31 = Mma(acc.T31, a30, a31, a32, a33, b10, b11);
        acc.T32 = Mma(acc.T32, a30, a31, a32, a33, b20, b21);
        acc.T33 = Mma(acc.T33, a30, a31, a32, a33, b30, b31);
        return acc;
    }

    /// <summary>
    /// Stores four fetched values, rounded to TF32, into a k-major shared tile (stride <see cref="Tf32Stride"/>) at
    /// (row, p): four consecutive k at one row when <paramref name="kAlongVector"/>, else four consecutive rows at one k.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTf32(ArrayView<float> s, int at, int row, int p, F4 v, bool kAlongVector)
    {
        if (kAlongVector)
        {
            var o = at + p * Tf32Stride + row;
            s[o] = RoundTf32(v.X);
            s[o + Tf32Stride] = RoundTf32(v.Y);
            s[o + 2 * Tf32Stride] = RoundTf32(v.Z);
            s[o + 3 * Tf32Stride] = RoundTf32(v.W);
        }
        else
        {
            var o = at + p * Tf32Stride + row;
            s[o] = RoundTf32(v.X);
            s[o + 1] = RoundTf32(v.Y);
            s[o + 2] = RoundTf32(v.Z);
            s[o + 3] = RoundTf32(v.W);
        }
    }

    /// <summary>The TF32 kernel: grid, loaders, split-k and the output rules of <see cref="GemmTiledKernel"/>.</summary>
    internal static void GemmTf32Kernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g)
    {
        var sA = SharedMemory.Allocate<float>(2 * TileK * Tf32Stride);
        var sB = SharedMemory.Allocate<float>(2 * TileK * Tf32Stride);
        var a4 = a.Cast<F4>();
        var b4 = b.Cast<F4>();
        var t = Group.IdxX;
        var tile = PlanTile(g, t);
        int row0 = tile.Row0, col0 = tile.Col0, kBegin = tile.KBegin, kEnd = tile.KEnd;
        int aRow = tile.ARow, aP = tile.AP, bP = tile.BP, bCol = tile.BCol;
        long ao = tile.Ao, bo = tile.Bo;
        var lane = t & 31;
        var warp = t >> 5;
        var wm = (warp >> 2) * 64;
        var wn = (warp & 3) * 32;
        int gq = lane >> 2, tq = lane & 3;

        MmaAcc acc = default;
        var ra = FetchA(a, a4, ao, g, row0 + aRow, kBegin + aP, kEnd);
        var rb = FetchB(b, b4, bo, g, kBegin + bP, col0 + bCol, kEnd);
        StoreTf32(sA, 0, aRow, aP, ra, g.TransA == 0);
        StoreTf32(sB, 0, bCol, bP, rb, g.TransB != 0);
        Group.Barrier();

        var buf = 0;
        for (var k0 = kBegin; k0 < kEnd; k0 += TileK)
        {
            var next = k0 + TileK;
            var more = next < kEnd;
            if (more)
            {
                ra = FetchA(a, a4, ao, g, row0 + aRow, next + aP, kEnd);
                rb = FetchB(b, b4, bo, g, next + bP, col0 + bCol, kEnd);
            }
            acc = MmaSlice(acc, sA, sB, buf * TileK * Tf32Stride, wm, wn, gq, tq);
            if (more)
            {
                var other = (1 - buf) * TileK * Tf32Stride;
                StoreTf32(sA, other, aRow, aP, ra, g.TransA == 0);
                StoreTf32(sB, other, bCol, bP, rb, g.TransB != 0);
            }
            Group.Barrier();
            buf = 1 - buf;
        }

        var (co, ldc, alpha, beta) = OutputPlan(g, tile);
        var r = row0 + wm + gq;
        var col = col0 + wn + 2 * tq;
        StoreMmaTile(c, co, ldc, r + 0, col + 0, g, acc.T00, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 0, col + 8, g, acc.T01, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 0, col + 16, g, acc.T02, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 0, col + 24, g, acc.T03, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 16, col + 0, g, acc.T10, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 16, col + 8, g, acc.T11, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 16, col + 16, g, acc.T12, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 16, col + 24, g, acc.T13, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 32, col + 0, g, acc.T20, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 32, col + 8, g, acc.T21, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 32, col + 16, g, acc.T22, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 32, col + 24, g, acc.T23, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 48, col + 0, g, acc.T30, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 48, col + 8, g, acc.T31, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 48, col + 16, g, acc.T32, alpha, beta);
        StoreMmaTile(c, co, ldc, r + 48, col + 24, g, acc.T33, alpha, beta);
    }

    /// <summary>One mma tile's four values: (r, col), (r, col + 1), (r + 8, col), (r + 8, col + 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreMmaTile(ArrayView<float> c, long co, int ldc, int r, int col, GemmArgs g, MmaTile v, float alpha, float beta)
    {
        if (r < g.M)
        {
            var rowAt = co + (long)r * ldc;
            StoreOne(c, rowAt, col, g.N, v.C0, alpha, beta);
            StoreOne(c, rowAt, col + 1, g.N, v.C1, alpha, beta);
        }
        if (r + 8 < g.M)
        {
            var rowAt = co + (long)(r + 8) * ldc;
            StoreOne(c, rowAt, col, g.N, v.C2, alpha, beta);
            StoreOne(c, rowAt, col + 1, g.N, v.C3, alpha, beta);
        }
    }
}
