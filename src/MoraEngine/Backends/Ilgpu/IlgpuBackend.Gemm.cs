using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

/// <summary>
/// SGEMM. Large products run a shared-memory tiled, register-blocked kernel: a 128×128 tile of C per group of
/// 256 threads, each thread accumulating an 8×8 block in registers, k in slices of 8 staged through double-buffered
/// shared memory (one barrier per slice; the next slice is fetched into registers while the current one is
/// multiplied). Transposed operands are read in place: only the tile-loading index map changes, so loads stay
/// coalesced for all four variants. Problems with too few tiles to fill the GPU split k into deterministic slices
/// (partial products in a workspace, summed in a fixed order by a second kernel). Small products use a simple
/// one-thread-per-element kernel.
/// </summary>
public sealed partial class IlgpuBackend
{
    internal const int TileM = 128;
    internal const int TileN = 128;
    internal const int TileK = 8;
    internal const int GemmThreads = 256;

    /// <summary>
    /// Everything a GEMM kernel needs besides the three views. Batch index z addresses matrix
    /// (z / BatchInner)·Stride + (z mod BatchInner)·Stride2 of each operand, which covers plain strided batches
    /// (BatchInner = 1) and the per-(batch, head) blocks of attention.
    /// </summary>
    internal struct GemmArgs
    {
        public int M, N, K, Lda, Ldb, Ldc, TransA, TransB, BatchInner, KSplit, KChunk, Batch;
        public float Alpha, Beta;
        public long StrideA, StrideB, StrideC, StrideA2, StrideB2, StrideC2;
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? _kGemmSimple;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? _kGemmTiled;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, GemmArgs>? _kGemmReduce;

    /// <summary>Forces the tiled kernel regardless of size (tests and the self-test exercise it at small sizes).</summary>
    internal bool ForceTiledGemm { get; set; }

    /// <summary>Disables split-k (tests compare both paths).</summary>
    internal int MaxKSplit { get; set; } = 16;

    public void Gemm(int batch, int m, int n, int k, float alpha,
        Tensor a, bool transA, long strideA,
        Tensor b, bool transB, long strideB,
        float beta, Tensor c, long strideC)
    {
        var args = new GemmArgs
        {
            M = m, N = n, K = k, Lda = transA ? m : k, Ldb = transB ? k : n, Ldc = n,
            TransA = transA ? 1 : 0, TransB = transB ? 1 : 0, BatchInner = 1,
            Alpha = alpha, Beta = beta, StrideA = strideA, StrideB = strideB, StrideC = strideC,
        };
        GemmCore(batch, From(a), From(b), From(c), args);
    }

    /// <summary>Runs a GEMM described by <paramref name="args"/> (leading dimensions and batch addressing set by the caller).</summary>
    internal void GemmCore(int batch, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs args)
    {
        int m = args.M, n = args.N, k = args.K;
        if (batch == 0 || m == 0 || n == 0) return;
        args.Batch = batch;
        if (k == 0)
        {
            // C = beta·C: the simple kernel handles an empty sum.
            args.KSplit = 1;
            LaunchSimpleGemm(batch, a, b, c, args);
            return;
        }
        var work = (long)m * n * k * batch;
        if (!ForceTiledGemm && work < SmallGemmWork)
        {
            LaunchSimpleGemm(batch, a, b, c, args);
            return;
        }
        var tilesM = (m + TileM - 1) / TileM;
        var tilesN = (n + TileN - 1) / TileN;
        var tiles = (long)tilesM * tilesN * batch;
        var split = 1;
        var target = 2L * Math.Max(1, _acc.NumMultiprocessors);
        if (tiles < target && k >= 512 && MaxKSplit > 1)
            split = (int)Math.Min(Math.Min(MaxKSplit, (target + tiles - 1) / tiles), k / 256);
        split = Math.Max(1, split);
        var chunk = (k + split - 1) / split;
        chunk = (chunk + TileK - 1) / TileK * TileK;
        split = (k + chunk - 1) / chunk;
        args.KSplit = split;
        args.KChunk = chunk;
        _kGemmTiled ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmTiledKernel);
        var grid = new Index3D(tilesN, tilesM, batch * split);
        if (split == 1)
        {
            _kGemmTiled(new KernelConfig(grid, new Index3D(GemmThreads, 1, 1)), a, b, c, args);
            return;
        }
        // Partial products of each k slice go to a workspace [split, batch, m, n]; the reduce kernel adds them in
        // slice order and applies alpha and beta: deterministic, no atomics.
        var ws = Scratch("gemm-splitk", (long)split * batch * m * n);
        _kGemmTiled(new KernelConfig(grid, new Index3D(GemmThreads, 1, 1)), a, b, ws, args);
        _kGemmReduce ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmReduceKernel);
        _kGemmReduce((int)((long)batch * m * n), ws, c, args);
    }

    private void LaunchSimpleGemm(int batch, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs args)
    {
        _kGemmSimple ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmSimpleKernel);
        var total = (long)batch * args.M * args.N;
        if (total > int.MaxValue) throw new NotSupportedException($"IlgpuBackend.Gemm: {total} outputs exceed one launch.");
        _kGemmSimple((int)total, a, b, c, args);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long BatchOffset(int z, int inner, long stride, long stride2) => (z / inner) * stride + (z % inner) * stride2;

    /// <summary>One thread per element of C: a dot product over k.</summary>
    private static void GemmSimpleKernel(Index1D index, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g)
    {
        int idx = index;
        var plane = g.M * g.N;
        int z = idx / plane, rem = idx - z * plane;
        int i = rem / g.N, j = rem - i * g.N;
        var ao = BatchOffset(z, g.BatchInner, g.StrideA, g.StrideA2);
        var bo = BatchOffset(z, g.BatchInner, g.StrideB, g.StrideB2);
        var co = BatchOffset(z, g.BatchInner, g.StrideC, g.StrideC2) + (long)i * g.Ldc + j;
        var acc = 0f;
        for (var p = 0; p < g.K; p++)
        {
            var av = g.TransA != 0 ? a[ao + (long)p * g.Lda + i] : a[ao + (long)i * g.Lda + p];
            var bv = g.TransB != 0 ? b[bo + (long)j * g.Ldb + p] : b[bo + (long)p * g.Ldb + j];
            acc += av * bv;
        }
        var v = g.Alpha * acc;
        if (g.Beta != 0f) v += g.Beta * c[co];
        c[co] = v;
    }

    /// <summary>C = alpha·Σ_s W[s] + beta·C over the split-k partial products.</summary>
    private static void GemmReduceKernel(Index1D index, ArrayView<float> ws, ArrayView<float> c, GemmArgs g)
    {
        int idx = index;
        var plane = g.M * g.N;
        int z = idx / plane, rem = idx - z * plane;
        int i = rem / g.N, j = rem - i * g.N;
        // Partial s of batch z lives at ((s·batch + z)·plane + rem).
        var sum = 0f;
        for (var s = 0; s < g.KSplit; s++) sum += ws[((long)s * g.Batch + z) * plane + rem];
        var co = BatchOffset(z, g.BatchInner, g.StrideC, g.StrideC2) + (long)i * g.Ldc + j;
        var v = g.Alpha * sum;
        if (g.Beta != 0f) v += g.Beta * c[co];
        c[co] = v;
    }

    /// <summary>Eight floats held in registers.</summary>
    private struct F8
    {
        public float V0, V1, V2, V3, V4, V5, V6, V7;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static F8 Fma(F8 c, float s, F8 b)
    {
        c.V0 += s * b.V0;
        c.V1 += s * b.V1;
        c.V2 += s * b.V2;
        c.V3 += s * b.V3;
        c.V4 += s * b.V4;
        c.V5 += s * b.V5;
        c.V6 += s * b.V6;
        c.V7 += s * b.V7;
        return c;
    }

    /// <summary>Loads s[base + 16·q] for q &lt; 8 (a thread's rows or columns of a shared tile).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static F8 Load8(ArrayView<float> s, int at)
    {
        F8 r;
        r.V0 = s[at];
        r.V1 = s[at + 16];
        r.V2 = s[at + 32];
        r.V3 = s[at + 48];
        r.V4 = s[at + 64];
        r.V5 = s[at + 80];
        r.V6 = s[at + 96];
        r.V7 = s[at + 112];
        return r;
    }

    /// <summary>A(row, p) of the tile, zero outside the matrix or the k range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadA(ArrayView<float> a, long ao, GemmArgs g, int row, int p, int kEnd) =>
        row < g.M && p < kEnd ? (g.TransA != 0 ? a[ao + (long)p * g.Lda + row] : a[ao + (long)row * g.Lda + p]) : 0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadB(ArrayView<float> b, long bo, GemmArgs g, int p, int col, int kEnd) =>
        col < g.N && p < kEnd ? (g.TransB != 0 ? b[bo + (long)col * g.Ldb + p] : b[bo + (long)p * g.Ldb + col]) : 0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(ArrayView<float> c, long rowAt, int col, int n, F8 v, float alpha, float beta)
    {
        StoreOne(c, rowAt, col, n, v.V0, alpha, beta);
        StoreOne(c, rowAt, col + 16, n, v.V1, alpha, beta);
        StoreOne(c, rowAt, col + 32, n, v.V2, alpha, beta);
        StoreOne(c, rowAt, col + 48, n, v.V3, alpha, beta);
        StoreOne(c, rowAt, col + 64, n, v.V4, alpha, beta);
        StoreOne(c, rowAt, col + 80, n, v.V5, alpha, beta);
        StoreOne(c, rowAt, col + 96, n, v.V6, alpha, beta);
        StoreOne(c, rowAt, col + 112, n, v.V7, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOne(ArrayView<float> c, long rowAt, int col, int n, float v, float alpha, float beta)
    {
        if (col >= n) return;
        var at = rowAt + col;
        var r = alpha * v;
        if (beta != 0f) r += beta * c[at];
        c[at] = r;
    }

    /// <summary>
    /// The tiled kernel. Group (x, y, z) computes the 128×128 tile (y, x) of batch z / KSplit over k slice
    /// z mod KSplit. Thread t = 16·ty + tx owns rows ty + 16·r and columns tx + 16·q (r, q &lt; 8): within a warp the
    /// A reads of a k step are two broadcasts and the B reads 16 consecutive words, free of bank conflicts.
    /// Shared tiles are k-major: As[p·128 + i], Bs[p·128 + j], two of each (double buffering).
    /// </summary>
    internal static void GemmTiledKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g)
    {
        var sA = SharedMemory.Allocate<float>(2 * TileK * TileM);
        var sB = SharedMemory.Allocate<float>(2 * TileK * TileN);
        var t = Group.IdxX;
        int tx = t & 15, ty = t >> 4;
        var zz = Grid.IdxZ;
        var z = zz / g.KSplit;
        var split = zz - z * g.KSplit;
        var row0 = Grid.IdxY * TileM;
        var col0 = Grid.IdxX * TileN;
        var kBegin = split * g.KChunk;
        var kEnd = XMathMin(g.K, kBegin + g.KChunk);
        if (g.KSplit == 1)
        {
            kBegin = 0;
            kEnd = g.K;
        }
        var ao = BatchOffset(z, g.BatchInner, g.StrideA, g.StrideA2);
        var bo = BatchOffset(z, g.BatchInner, g.StrideB, g.StrideB2);

        // Loader maps (4 elements per thread per operand). Not transposed A: row t/2, k offsets (t%2)·4 + 0..3.
        // Transposed A: k row t/32, columns (t%32)·4 + 0..3 (consecutive in memory). B mirrors this.
        int aRow, aP, bP, bCol;
        if (g.TransA == 0)
        {
            aRow = t >> 1;
            aP = (t & 1) * 4;
        }
        else
        {
            aP = t >> 5;
            aRow = (t & 31) * 4;
        }
        if (g.TransB == 0)
        {
            bP = t >> 5;
            bCol = (t & 31) * 4;
        }
        else
        {
            bCol = t >> 1;
            bP = (t & 1) * 4;
        }

        F8 c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        float ra0, ra1, ra2, ra3, rb0, rb1, rb2, rb3;

        // First slice straight into buffer 0.
        FetchA(a, ao, g, row0, aRow, aP, kBegin, kEnd, out ra0, out ra1, out ra2, out ra3);
        FetchB(b, bo, g, col0, bP, bCol, kBegin, kEnd, out rb0, out rb1, out rb2, out rb3);
        StoreA(sA, 0, g.TransA, aRow, aP, ra0, ra1, ra2, ra3);
        StoreB(sB, 0, g.TransB, bP, bCol, rb0, rb1, rb2, rb3);
        Group.Barrier();

        var buf = 0;
        for (var k0 = kBegin; k0 < kEnd; k0 += TileK)
        {
            var next = k0 + TileK;
            var more = next < kEnd;
            if (more)
            {
                FetchA(a, ao, g, row0, aRow, aP, next, kEnd, out ra0, out ra1, out ra2, out ra3);
                FetchB(b, bo, g, col0, bP, bCol, next, kEnd, out rb0, out rb1, out rb2, out rb3);
            }
            var baseA = buf * TileK * TileM;
            var baseB = buf * TileK * TileN;
            for (var p = 0; p < TileK; p++)
            {
                var av = Load8(sA, baseA + p * TileM + ty);
                var bv = Load8(sB, baseB + p * TileN + tx);
                c0 = Fma(c0, av.V0, bv);
                c1 = Fma(c1, av.V1, bv);
                c2 = Fma(c2, av.V2, bv);
                c3 = Fma(c3, av.V3, bv);
                c4 = Fma(c4, av.V4, bv);
                c5 = Fma(c5, av.V5, bv);
                c6 = Fma(c6, av.V6, bv);
                c7 = Fma(c7, av.V7, bv);
            }
            if (more)
            {
                // The other buffer was last read before the previous barrier: safe to overwrite now.
                StoreA(sA, (1 - buf) * TileK * TileM, g.TransA, aRow, aP, ra0, ra1, ra2, ra3);
                StoreB(sB, (1 - buf) * TileK * TileN, g.TransB, bP, bCol, rb0, rb1, rb2, rb3);
            }
            Group.Barrier();
            buf = 1 - buf;
        }

        long co;
        float alpha = g.Alpha, beta = g.Beta;
        if (g.KSplit == 1)
        {
            co = BatchOffset(z, g.BatchInner, g.StrideC, g.StrideC2);
        }
        else
        {
            // Workspace [split, batch, m, n], dense; reduce applies alpha and beta.
            co = ((long)split * g.Batch + z) * g.M * g.N;
            alpha = 1f;
            beta = 0f;
        }
        var ldc = g.KSplit == 1 ? g.Ldc : g.N;
        var col = col0 + tx;
        var r = row0 + ty;
        if (r < g.M) StoreRow(c, co + (long)r * ldc, col, g.N, c0, alpha, beta);
        r += 16;
        if (r < g.M) StoreRow(c, co + (long)r * ldc, col, g.N, c1, alpha, beta);
        r += 16;
        if (r < g.M) StoreRow(c, co + (long)r * ldc, col, g.N, c2, alpha, beta);
        r += 16;
        if (r < g.M) StoreRow(c, co + (long)r * ldc, col, g.N, c3, alpha, beta);
        r += 16;
        if (r < g.M) StoreRow(c, co + (long)r * ldc, col, g.N, c4, alpha, beta);
        r += 16;
        if (r < g.M) StoreRow(c, co + (long)r * ldc, col, g.N, c5, alpha, beta);
        r += 16;
        if (r < g.M) StoreRow(c, co + (long)r * ldc, col, g.N, c6, alpha, beta);
        r += 16;
        if (r < g.M) StoreRow(c, co + (long)r * ldc, col, g.N, c7, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int XMathMin(int x, int y) => x < y ? x : y;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FetchA(ArrayView<float> a, long ao, GemmArgs g, int row0, int aRow, int aP, int k0, int kEnd,
        out float r0, out float r1, out float r2, out float r3)
    {
        if (g.TransA == 0)
        {
            var row = row0 + aRow;
            var p = k0 + aP;
            r0 = LoadA(a, ao, g, row, p, kEnd);
            r1 = LoadA(a, ao, g, row, p + 1, kEnd);
            r2 = LoadA(a, ao, g, row, p + 2, kEnd);
            r3 = LoadA(a, ao, g, row, p + 3, kEnd);
        }
        else
        {
            var row = row0 + aRow;
            var p = k0 + aP;
            r0 = LoadA(a, ao, g, row, p, kEnd);
            r1 = LoadA(a, ao, g, row + 1, p, kEnd);
            r2 = LoadA(a, ao, g, row + 2, p, kEnd);
            r3 = LoadA(a, ao, g, row + 3, p, kEnd);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FetchB(ArrayView<float> b, long bo, GemmArgs g, int col0, int bP, int bCol, int k0, int kEnd,
        out float r0, out float r1, out float r2, out float r3)
    {
        if (g.TransB == 0)
        {
            var col = col0 + bCol;
            var p = k0 + bP;
            r0 = LoadB(b, bo, g, p, col, kEnd);
            r1 = LoadB(b, bo, g, p, col + 1, kEnd);
            r2 = LoadB(b, bo, g, p, col + 2, kEnd);
            r3 = LoadB(b, bo, g, p, col + 3, kEnd);
        }
        else
        {
            var col = col0 + bCol;
            var p = k0 + bP;
            r0 = LoadB(b, bo, g, p, col, kEnd);
            r1 = LoadB(b, bo, g, p + 1, col, kEnd);
            r2 = LoadB(b, bo, g, p + 2, col, kEnd);
            r3 = LoadB(b, bo, g, p + 3, col, kEnd);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreA(ArrayView<float> s, int at, int transA, int aRow, int aP, float r0, float r1, float r2, float r3)
    {
        if (transA == 0)
        {
            s[at + aP * TileM + aRow] = r0;
            s[at + (aP + 1) * TileM + aRow] = r1;
            s[at + (aP + 2) * TileM + aRow] = r2;
            s[at + (aP + 3) * TileM + aRow] = r3;
        }
        else
        {
            var o = at + aP * TileM + aRow;
            s[o] = r0;
            s[o + 1] = r1;
            s[o + 2] = r2;
            s[o + 3] = r3;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreB(ArrayView<float> s, int at, int transB, int bP, int bCol, float r0, float r1, float r2, float r3)
    {
        if (transB == 0)
        {
            var o = at + bP * TileN + bCol;
            s[o] = r0;
            s[o + 1] = r1;
            s[o + 2] = r2;
            s[o + 3] = r3;
        }
        else
        {
            s[at + bP * TileN + bCol] = r0;
            s[at + (bP + 1) * TileN + bCol] = r1;
            s[at + (bP + 2) * TileN + bCol] = r2;
            s[at + (bP + 3) * TileN + bCol] = r3;
        }
    }
}
