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

    /// <summary>Row stride of the k-major shared tiles in floats (128 + 4 padding) and in 128-bit words.</summary>
    internal const int SharedStride = TileM + 4;
    internal const int SharedStride4 = SharedStride / 4;

    /// <summary>The 128-bit words one thread's k steps of a slice span from its first: p·33 + 16 for p &lt; 8.</summary>
    private const int StepSpan4 = (TileK - 1) * SharedStride4 + 17;

    /// <summary>
    /// Everything a GEMM kernel needs besides the three views. Batch index z addresses matrix
    /// (z / BatchInner)·Stride + (z mod BatchInner)·Stride2 of each operand, which covers plain strided batches
    /// (BatchInner = 1) and the per-(batch, head) blocks of attention.
    /// </summary>
    internal struct GemmArgs
    {
        public int M, N, K, Lda, Ldb, Ldc, TransA, TransB, BatchInner, KSplit, KChunk, Batch;

        /// <summary>1 where every 4-aligned run of 4 floats of the operand (or of C, or of the split-k workspace)
        /// is 16-byte aligned in memory, so the tiled kernel may use 128-bit loads and stores on it.</summary>
        public int VecA, VecB, VecC;
        public float Alpha, Beta;
        public long StrideA, StrideB, StrideC, StrideA2, StrideB2, StrideC2;
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? _kGemmSimple;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? _kGemmTiled;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, GemmArgs>? _kGemmReduce;

    /// <summary>Forces the tiled kernel regardless of size (tests and the self-test exercise it at small sizes).</summary>
    internal bool ForceTiledGemm { get; set; }

    /// <summary>The arguments of the last tiled launch (tests check which load and store paths a case takes).</summary>
    internal GemmArgs LastTiledArgs { get; private set; }

    /// <summary>
    /// The most k slices of one split-k product (1 disables split-k; tests compare both paths). High enough that a
    /// single-tile product with a very long k (MoRA's gM = gŷᵀ·x̂ over tokens × chunks, r̂ ≤ 128) still fills the GPU:
    /// the slice count is otherwise bounded by 2 groups per multiprocessor and slices of at least 256.
    /// </summary>
    internal int MaxKSplit { get; set; } = 256;

    /// <summary>Groups split-k aims for; 0: two per multiprocessor (tests raise it to reach GPU-sized splits on the CPU accelerator).</summary>
    internal int SplitTargetGroups { get; set; }

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
        var target = SplitTargetGroups > 0 ? SplitTargetGroups : 2L * Math.Max(1, _acc.NumMultiprocessors);
        if (tiles < target && k >= 512 && MaxKSplit > 1)
            split = (int)Math.Min(Math.Min(MaxKSplit, (target + tiles - 1) / tiles), k / 256);
        split = Math.Max(1, split);
        var chunk = (k + split - 1) / split;
        chunk = (chunk + TileK - 1) / TileK * TileK;
        split = (k + chunk - 1) / chunk;
        args.KSplit = split;
        args.KChunk = chunk;
        args.VecA = Aligned4(a, args.Lda, args.StrideA, args.StrideA2);
        args.VecB = Aligned4(b, args.Ldb, args.StrideB, args.StrideB2);
        var kernel = UseTf32
            ? _kGemmTf32 ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmTf32Kernel)
            : _kGemmTiled ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmTiledKernel);
        var grid = new Index3D(tilesN, tilesM, batch * split);
        if (split == 1)
        {
            args.VecC = Aligned4(c, args.Ldc, args.StrideC, args.StrideC2);
            LastTiledArgs = args;
            kernel(new KernelConfig(grid, new Index3D(GemmThreads, 1, 1)), a, b, c, args);
            return;
        }
        // Partial products of each k slice go to a workspace [split, batch, m, n]; the reduce kernel adds them in
        // slice order and applies alpha and beta: deterministic, no atomics.
        var ws = Scratch("gemm-splitk", (long)split * batch * m * n);
        args.VecC = Aligned4(ws, n, (long)m * n, 0);
        LastTiledArgs = args;
        kernel(new KernelConfig(grid, new Index3D(GemmThreads, 1, 1)), a, b, ws, args);
        _kGemmReduce ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmReduceKernel);
        _kGemmReduce((int)((long)batch * m * n), ws, c, args);
    }

    /// <summary>
    /// 1 when element offsets that are multiples of 4 (row starts at multiples of <paramref name="ld"/>, batch
    /// offsets at multiples of the strides, plus 4-aligned columns) are 16-byte aligned addresses in <paramref name="v"/>.
    /// CUDA allocations are 256-byte aligned, so on a GPU this is about the view's offset; ILGPU's CPU accelerator
    /// reads unaligned 128-bit values fine and its host allocations are not always 16-byte aligned, so there only the
    /// offsets count (the tests then take the same paths on every run).
    /// </summary>
    private int Aligned4(ArrayView<float> v, int ld, long stride, long stride2)
    {
        var start = ((IContiguousArrayView)v).IndexInBytes;
        if (_acc.AcceleratorType != AcceleratorType.CPU) start += ((IArrayView)v).Buffer.NativePtr.ToInt64();
        return start % 16 == 0 && ld % 4 == 0 && stride % 4 == 0 && stride2 % 4 == 0 ? 1 : 0;
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
        // Four independent loads per step (the sum still runs in slice order, so results do not depend on the unroll).
        var step = (long)g.Batch * plane;
        var at = (long)z * plane + rem;
        var sum = 0f;
        var s = 0;
        for (; s + 4 <= g.KSplit; s += 4, at += 4 * step)
        {
            float w0 = ws[at], w1 = ws[at + step], w2 = ws[at + 2 * step], w3 = ws[at + 3 * step];
            sum += w0;
            sum += w1;
            sum += w2;
            sum += w3;
        }
        for (; s < g.KSplit; s++, at += step) sum += ws[at];
        var co = BatchOffset(z, g.BatchInner, g.StrideC, g.StrideC2) + (long)i * g.Ldc + j;
        var v = g.Alpha * sum;
        if (g.Beta != 0f) v += g.Beta * c[co];
        c[co] = v;
    }

    /// <summary>Four consecutive floats: one 128-bit load or store (ld/st .v4.f32) when read through a cast view.</summary>
    private struct F4
    {
        public float X, Y, Z, W;
    }

    /// <summary>A thread's 8×8 block of C: rows r (four near ty·4, four near 64 + ty·4), column halves h.</summary>
    private struct Acc
    {
        public F4 C00, C01, C10, C11, C20, C21, C30, C31, C40, C41, C50, C51, C60, C61, C70, C71;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static F4 Fma4(F4 c, float s, F4 b)
    {
        c.X += s * b.X;
        c.Y += s * b.Y;
        c.Z += s * b.Z;
        c.W += s * b.W;
        return c;
    }

    /// <summary>One k step of the register block: the outer product of a thread's 8 A values and 8 B values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Acc Step(Acc c, ArrayView<F4> rA, ArrayView<F4> rB, int p)
    {
        var a0 = rA[p * SharedStride4];
        var a1 = rA[p * SharedStride4 + 16];
        var b0 = rB[p * SharedStride4];
        var b1 = rB[p * SharedStride4 + 16];
        c.C00 = Fma4(c.C00, a0.X, b0);
        c.C01 = Fma4(c.C01, a0.X, b1);
        c.C10 = Fma4(c.C10, a0.Y, b0);
        c.C11 = Fma4(c.C11, a0.Y, b1);
        c.C20 = Fma4(c.C20, a0.Z, b0);
        c.C21 = Fma4(c.C21, a0.Z, b1);
        c.C30 = Fma4(c.C30, a0.W, b0);
        c.C31 = Fma4(c.C31, a0.W, b1);
        c.C40 = Fma4(c.C40, a1.X, b0);
        c.C41 = Fma4(c.C41, a1.X, b1);
        c.C50 = Fma4(c.C50, a1.Y, b0);
        c.C51 = Fma4(c.C51, a1.Y, b1);
        c.C60 = Fma4(c.C60, a1.Z, b0);
        c.C61 = Fma4(c.C61, a1.Z, b1);
        c.C70 = Fma4(c.C70, a1.W, b0);
        c.C71 = Fma4(c.C71, a1.W, b1);
        return c;
    }

    /// <summary>
    /// The tiled kernel. Group (x, y, z) computes the 128×128 tile (y, x) of batch z / KSplit over k slice
    /// z mod KSplit. Thread t (tx = t mod 16, ty = t / 16) owns rows ty·4 + i and 64 + ty·4 + i and columns
    /// tx·4 + j and 64 + tx·4 + j (i, j &lt; 4), so each k step reads its 8 A and 8 B values as four 128-bit shared
    /// loads (the A ones are warp broadcasts) for 64 multiply-adds. Shared tiles are k-major with a row stride of 132
    /// floats (the padding keeps the transposing scalar stores free of bank conflicts): As[p·132 + i], Bs[p·132 + j],
    /// two of each (double buffering, one barrier per slice of 8).
    /// Each thread fetches 4 consecutive floats of A and of B per slice: one 128-bit global load where the operand
    /// is 16-byte aligned (VecA / VecB) and the four lie inside the matrix, four guarded scalar loads otherwise.
    /// </summary>
    internal static void GemmTiledKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g)
    {
        var sA = SharedMemory.Allocate<float>(2 * TileK * SharedStride);
        var sB = SharedMemory.Allocate<float>(2 * TileK * SharedStride);
        var sA4 = sA.Cast<F4>();
        var sB4 = sB.Cast<F4>();
        var a4 = a.Cast<F4>();
        var b4 = b.Cast<F4>();
        var t = Group.IdxX;
        int tx = t & 15, ty = t >> 4;
        var tile = PlanTile(g, t);
        int row0 = tile.Row0, col0 = tile.Col0, kBegin = tile.KBegin, kEnd = tile.KEnd;
        int aRow = tile.ARow, aP = tile.AP, bP = tile.BP, bCol = tile.BCol;
        long ao = tile.Ao, bo = tile.Bo;

        Acc acc = default;

        // First slice straight into buffer 0.
        var ra = FetchA(a, a4, ao, g, row0 + aRow, kBegin + aP, kEnd);
        var rb = FetchB(b, b4, bo, g, kBegin + bP, col0 + bCol, kEnd);
        StoreA(sA, sA4, 0, g.TransA, aRow, aP, ra);
        StoreB(sB, sB4, 0, g.TransB, bP, bCol, rb);
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
            // This thread's A values of step p are rA[p·33] (rows ty·4..+3) and rA[p·33 + 16] (rows 64 + ty·4..+3).
            var rA = sA4.SubView(buf * TileK * SharedStride4 + ty, StepSpan4);
            var rB = sB4.SubView(buf * TileK * SharedStride4 + tx, StepSpan4);
            acc = Step(acc, rA, rB, 0);
            acc = Step(acc, rA, rB, 1);
            acc = Step(acc, rA, rB, 2);
            acc = Step(acc, rA, rB, 3);
            acc = Step(acc, rA, rB, 4);
            acc = Step(acc, rA, rB, 5);
            acc = Step(acc, rA, rB, 6);
            acc = Step(acc, rA, rB, 7);
            if (more)
            {
                // The other buffer was last read before the previous barrier: safe to overwrite now.
                var other = (1 - buf) * TileK * SharedStride;
                StoreA(sA, sA4, other, g.TransA, aRow, aP, ra);
                StoreB(sB, sB4, other, g.TransB, bP, bCol, rb);
            }
            Group.Barrier();
            buf = 1 - buf;
        }

        var (co, ldc, alpha, beta) = OutputPlan(g, tile);
        var c4 = c.Cast<F4>();
        var col = col0 + tx * 4;
        var r = row0 + ty * 4;
        StoreRow(c, c4, co, ldc, r, col, g, acc.C00, acc.C01, alpha, beta);
        StoreRow(c, c4, co, ldc, r + 1, col, g, acc.C10, acc.C11, alpha, beta);
        StoreRow(c, c4, co, ldc, r + 2, col, g, acc.C20, acc.C21, alpha, beta);
        StoreRow(c, c4, co, ldc, r + 3, col, g, acc.C30, acc.C31, alpha, beta);
        r += 64;
        StoreRow(c, c4, co, ldc, r, col, g, acc.C40, acc.C41, alpha, beta);
        StoreRow(c, c4, co, ldc, r + 1, col, g, acc.C50, acc.C51, alpha, beta);
        StoreRow(c, c4, co, ldc, r + 2, col, g, acc.C60, acc.C61, alpha, beta);
        StoreRow(c, c4, co, ldc, r + 3, col, g, acc.C70, acc.C71, alpha, beta);
    }

    /// <summary>Where one group of a tiled kernel works: its tile, k range, batch offsets and its thread's loader map.</summary>
    private struct TilePlan
    {
        public int Z, Split, Row0, Col0, KBegin, KEnd, ARow, AP, BP, BCol;
        public long Ao, Bo;
    }

    /// <summary>
    /// Group (x, y, z) computes the 128×128 tile (y, x) of batch z / KSplit over k slice z mod KSplit. Loader maps
    /// (4 consecutive elements per thread per operand): not transposed A: row t/2, k offsets (t%2)·4 + 0..3;
    /// transposed A: k row t/32, rows (t%32)·4 + 0..3 (consecutive in memory). B mirrors this.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TilePlan PlanTile(GemmArgs g, int t)
    {
        TilePlan p;
        var zz = Grid.IdxZ;
        p.Z = zz / g.KSplit;
        p.Split = zz - p.Z * g.KSplit;
        p.Row0 = Grid.IdxY * TileM;
        p.Col0 = Grid.IdxX * TileN;
        p.KBegin = p.Split * g.KChunk;
        p.KEnd = XMathMin(g.K, p.KBegin + g.KChunk);
        if (g.KSplit == 1)
        {
            p.KBegin = 0;
            p.KEnd = g.K;
        }
        p.Ao = BatchOffset(p.Z, g.BatchInner, g.StrideA, g.StrideA2);
        p.Bo = BatchOffset(p.Z, g.BatchInner, g.StrideB, g.StrideB2);
        if (g.TransA == 0)
        {
            p.ARow = t >> 1;
            p.AP = (t & 1) * 4;
        }
        else
        {
            p.AP = t >> 5;
            p.ARow = (t & 31) * 4;
        }
        if (g.TransB == 0)
        {
            p.BP = t >> 5;
            p.BCol = (t & 31) * 4;
        }
        else
        {
            p.BCol = t >> 1;
            p.BP = (t & 1) * 4;
        }
        return p;
    }

    /// <summary>
    /// Where a tile's results go: C itself (with alpha and beta), or with split-k the dense workspace
    /// [split, batch, m, n] (alpha 1, beta 0: the reduce kernel applies them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (long Offset, int Ldc, float Alpha, float Beta) OutputPlan(GemmArgs g, TilePlan tile) =>
        g.KSplit == 1
            ? (BatchOffset(tile.Z, g.BatchInner, g.StrideC, g.StrideC2), g.Ldc, g.Alpha, g.Beta)
            : (((long)tile.Split * g.Batch + tile.Z) * g.M * g.N, g.N, 1f, 0f);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int XMathMin(int x, int y) => x < y ? x : y;

    /// <summary>A(row, p) of the tile, zero outside the matrix or the k range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadA(ArrayView<float> a, long ao, GemmArgs g, int row, int p, int kEnd) =>
        row < g.M && p < kEnd ? (g.TransA != 0 ? a[ao + (long)p * g.Lda + row] : a[ao + (long)row * g.Lda + p]) : 0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadB(ArrayView<float> b, long bo, GemmArgs g, int p, int col, int kEnd) =>
        col < g.N && p < kEnd ? (g.TransB != 0 ? b[bo + (long)col * g.Ldb + p] : b[bo + (long)p * g.Ldb + col]) : 0f;

    /// <summary>
    /// The thread's 4 A values of a slice starting at (row, p): A(row, p..p+3) when A is not transposed,
    /// A(row..row+3, p) when it is (consecutive in memory either way).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static F4 FetchA(ArrayView<float> a, ArrayView<F4> a4, long ao, GemmArgs g, int row, int p, int kEnd)
    {
        F4 r;
        if (g.TransA == 0)
        {
            if (g.VecA != 0 && row < g.M && p + 3 < kEnd) return a4[(ao + (long)row * g.Lda + p) >> 2];
            r.X = LoadA(a, ao, g, row, p, kEnd);
            r.Y = LoadA(a, ao, g, row, p + 1, kEnd);
            r.Z = LoadA(a, ao, g, row, p + 2, kEnd);
            r.W = LoadA(a, ao, g, row, p + 3, kEnd);
        }
        else
        {
            if (g.VecA != 0 && row + 3 < g.M && p < kEnd) return a4[(ao + (long)p * g.Lda + row) >> 2];
            r.X = LoadA(a, ao, g, row, p, kEnd);
            r.Y = LoadA(a, ao, g, row + 1, p, kEnd);
            r.Z = LoadA(a, ao, g, row + 2, p, kEnd);
            r.W = LoadA(a, ao, g, row + 3, p, kEnd);
        }
        return r;
    }

    /// <summary>B(p, col..col+3) when B is not transposed, B(p..p+3, col) when it is.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static F4 FetchB(ArrayView<float> b, ArrayView<F4> b4, long bo, GemmArgs g, int p, int col, int kEnd)
    {
        F4 r;
        if (g.TransB == 0)
        {
            if (g.VecB != 0 && col + 3 < g.N && p < kEnd) return b4[(bo + (long)p * g.Ldb + col) >> 2];
            r.X = LoadB(b, bo, g, p, col, kEnd);
            r.Y = LoadB(b, bo, g, p, col + 1, kEnd);
            r.Z = LoadB(b, bo, g, p, col + 2, kEnd);
            r.W = LoadB(b, bo, g, p, col + 3, kEnd);
        }
        else
        {
            if (g.VecB != 0 && col < g.N && p + 3 < kEnd) return b4[(bo + (long)col * g.Ldb + p) >> 2];
            r.X = LoadB(b, bo, g, p, col, kEnd);
            r.Y = LoadB(b, bo, g, p + 1, col, kEnd);
            r.Z = LoadB(b, bo, g, p + 2, col, kEnd);
            r.W = LoadB(b, bo, g, p + 3, col, kEnd);
        }
        return r;
    }

    /// <summary>Stores A values into the k-major shared tile at float offset <paramref name="at"/>: four scalar stores
    /// (transposing) when A is not transposed, one 128-bit store when it is.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreA(ArrayView<float> s, ArrayView<F4> s4, int at, int transA, int aRow, int aP, F4 v)
    {
        if (transA == 0)
        {
            var o = at + aP * SharedStride + aRow;
            s[o] = v.X;
            s[o + SharedStride] = v.Y;
            s[o + 2 * SharedStride] = v.Z;
            s[o + 3 * SharedStride] = v.W;
        }
        else
        {
            s4[(at + aP * SharedStride + aRow) >> 2] = v;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreB(ArrayView<float> s, ArrayView<F4> s4, int at, int transB, int bP, int bCol, F4 v)
    {
        if (transB == 0)
        {
            s4[(at + bP * SharedStride + bCol) >> 2] = v;
        }
        else
        {
            var o = at + bP * SharedStride + bCol;
            s[o] = v.X;
            s[o + SharedStride] = v.Y;
            s[o + 2 * SharedStride] = v.Z;
            s[o + 3 * SharedStride] = v.W;
        }
    }

    /// <summary>Row r of the thread's block: columns col..col+3 and col+64..col+67.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(ArrayView<float> c, ArrayView<F4> c4, long co, int ldc, int r, int col, GemmArgs g,
        F4 v0, F4 v1, float alpha, float beta)
    {
        if (r >= g.M) return;
        var rowAt = co + (long)r * ldc;
        Store4(c, c4, rowAt, col, g.N, v0, alpha, beta, g.VecC);
        Store4(c, c4, rowAt, col + 64, g.N, v1, alpha, beta, g.VecC);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(ArrayView<float> c, ArrayView<F4> c4, long rowAt, int col, int n, F4 v, float alpha, float beta, int vec)
    {
        if (vec != 0 && col + 3 < n)
        {
            var at = (rowAt + col) >> 2;
            F4 r;
            r.X = alpha * v.X;
            r.Y = alpha * v.Y;
            r.Z = alpha * v.Z;
            r.W = alpha * v.W;
            if (beta != 0f)
            {
                var o = c4[at];
                r.X += beta * o.X;
                r.Y += beta * o.Y;
                r.Z += beta * o.Z;
                r.W += beta * o.W;
            }
            c4[at] = r;
            return;
        }
        StoreOne(c, rowAt, col, n, v.X, alpha, beta);
        StoreOne(c, rowAt, col + 1, n, v.Y, alpha, beta);
        StoreOne(c, rowAt, col + 2, n, v.Z, alpha, beta);
        StoreOne(c, rowAt, col + 3, n, v.W, alpha, beta);
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
}
