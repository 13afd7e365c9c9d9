using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoraEngine.Backends.Cpu;

internal static unsafe partial class Sgemm
{
    /// <summary>Largest m and n of the unpacked Aᵀ·B path (<see cref="RunSmallTn"/>).</summary>
    internal const int SmallTnMaxSide = 160;

    /// <summary>Depth from which the unpacked Aᵀ·B path is taken.</summary>
    internal const int SmallTnMinDepth = 512;

    /// <summary>Rows of C up to which the unpacked Aᵀ·B path takes any number of columns (an adapter's ghᵀ·x, hᵀ·gy).</summary>
    internal const int SmallTnFewRows = 16;

    private static bool TakesSmallTn(Isa isa, bool transA, bool transB, int m, int n, int k) =>
        isa == Isa.Avx512 && transA && !transB && k >= SmallTnMinDepth
        && (m <= SmallTnMaxSide && n <= SmallTnMaxSide || m <= SmallTnFewRows);

    /// <summary>
    /// C = alpha·Aᵀ·B + beta·C with A stored k×m and B stored k×n, both small sides (m, n ≤ 160) over a deep k:
    /// MoRA's gM = gŷᵀ·x̂ (r̂ × r̂ over every token) and the like. Row q of A and of B already hold what a micro-panel
    /// holds (op(A)'s column q, op(B)'s row q), so the micro-kernel reads them in place, KC rows at a time while they
    /// sit in L2, instead of packing them: at these shapes packing costs as much as the arithmetic. Only the ragged
    /// last 8 rows or 32 columns of C are copied, zero-padded, per K block; up to 6 ragged columns go to
    /// <see cref="TailKernel"/> instead of a column of mostly empty tiles. Tiles are split over the cores; every
    /// element is summed by one thread in ascending k, so the result does not depend on the core count.
    /// </summary>
    private static void RunSmallTn(Problem* p)
    {
        // A few ragged last columns (r̂ = 100 is three tiles and 4 columns) would each cost a whole column of 8×32
        // tiles, a quarter of the work for 4% of C: they go to the tail kernel instead, which takes them as its
        // broadcasts and 64 rows of C as its vectors.
        int tail = p->N % Nr512;
        bool useTail = tail is > 0 and <= TailCols && p->N > Nr512;
        int tilesN = useTail ? p->N / Nr512 : (p->N + Nr512 - 1) / Nr512, tilesM = (p->M + Mr512 - 1) / Mr512;
        int tailGroups = useTail ? (p->M + TailRows - 1) / TailRows : 0;
        var parts = (long)p->M * p->N * p->K < ParallelThreshold ? 1 : Math.Min(CpuThreadPool.Parallelism, tilesM * tilesN);
        var ctx = new SmallTnContext { P = p, Parts = parts, TilesM = tilesM, TilesN = tilesN, TailGroups = tailGroups };
        if (parts == 1) SmallTnChunk(&ctx, 0);
        else CpuThreadPool.For(parts, &SmallTnChunk, &ctx);
    }

    private struct SmallTnContext
    {
        public Problem* P;
        public int Parts, TilesM, TilesN, TailGroups;
    }

    private static void SmallTnChunk(void* context, int part)
    {
        var ctx = (SmallTnContext*)context;
        ref readonly Problem p = ref *ctx->P;
        // This part's tiles: a contiguous range of the row-major tile grid.
        int tiles = ctx->TilesM * ctx->TilesN;
        int t0 = (int)((long)tiles * part / ctx->Parts), t1 = (int)((long)tiles * (part + 1) / ctx->Parts);
        bool hasTail = part < ctx->TailGroups;
        if (t0 >= t1 && !hasTail) return;
        int m = p.M, n = p.N, k = p.K;
        int mTail = m % Mr512, nTail = ctx->TailGroups > 0 ? 0 : n % Nr512, nFull = ctx->TilesN * Nr512;
        // Zero-padded copies of the ragged last columns of A (rows of C) and of B, one K block at a time.
        // With few rows of C a K block is a strip of B's rows that every tile reads at a different place: shorter
        // blocks (about 128 KiB of B) keep the strip in L2 while all of this thread's tiles take their columns.
        int kcLimit = m <= SmallTnFewRows ? Math.Clamp(32768 / n / 8 * 8, 32, KC) : KC;
        int kcMax = Math.Min(k, kcLimit);
        PackBuffers buffers = PackBuffers.ForCurrentThread((Mr512 + TailRows + TailCols) * kcMax, Nr512 * kcMax);
        float* aEdge = buffers.A, bEdge = buffers.B;
        // The tail kernel's operands: 64 rows of A (rows of C) and B's last columns, zero-padded, per K block.
        float* aTail = aEdge + Mr512 * kcMax, bTail = aTail + TailRows * kcMax;
        float* tile = stackalloc float[Math.Max(MaxTile, TailRows * TailCols)];
        int kBlocks = (k + kcLimit - 1) / kcLimit;
        // Few rows of C stream B once (see PrefetchRows), unless B's rows lie a multiple of 4 KiB apart: then the rows
        // prefetched ahead all fall into the same L1 sets and evict each other (1,024 wide: 246 µs without, 260 with).
        bool prefetchB = m <= SmallTnFewRows && p.Ldb % 1024 != 0;
        for (int kb = 0; kb < kBlocks; kb++)
        {
            int pc = (int)((long)k * kb / kBlocks);
            int kc = (int)((long)k * (kb + 1) / kBlocks) - pc;
            float beta = kb == 0 ? p.Beta : 1f;
            float* aBlock = p.A + (nint)pc * p.Lda, bBlock = p.B + (nint)pc * p.Ldb;
            if (mTail > 0) CopyPadded(aBlock + (m - mTail), p.Lda, kc, mTail, Mr512, aEdge);
            if (nTail > 0) CopyPadded(bBlock + (n - nTail), p.Ldb, kc, nTail, Nr512, bEdge);
            for (int t = t0; t < t1; t++)
            {
                int i0 = t / ctx->TilesN * Mr512, j0 = t % ctx->TilesN * Nr512;
                int mr = Math.Min(Mr512, m - i0), nr = Math.Min(Nr512, n - j0);
                float* a = mr == Mr512 ? aBlock + i0 : aEdge;
                nint sa = mr == Mr512 ? p.Lda : Mr512;
                float* b = nr == Nr512 ? bBlock + j0 : bEdge;
                nint sb = nr == Nr512 ? p.Ldb : Nr512;
                if (prefetchB && nr == Nr512)
                    KernelStrided512<PrefetchRows>(kc, a, sa, b, sb, p.C + (nint)i0 * p.Ldc + j0, p.Ldc, p.Alpha, beta, mr, nr, tile);
                else
                    KernelStrided512<NoPrefetch>(kc, a, sa, b, sb, p.C + (nint)i0 * p.Ldc + j0, p.Ldc, p.Alpha, beta, mr, nr, tile);
            }
            if (!hasTail) continue;
            // Tail groups go round the parts: group g to part g mod parts, after its tiles, while the block is in L2.
            CopyPadded(bBlock + nFull, p.Ldb, kc, n - nFull, TailCols, bTail);
            for (int g = part; g < ctx->TailGroups; g += ctx->Parts)
            {
                int r0 = g * TailRows, rows = Math.Min(TailRows, m - r0);
                // A full group of 64 rows is read in place; a ragged last one from a zero-padded copy.
                float* a = aBlock + r0;
                nint sa = p.Lda;
                if (rows < TailRows)
                {
                    CopyPadded(a, p.Lda, kc, rows, TailRows, aTail);
                    a = aTail;
                    sa = TailRows;
                }
                TailKernel(kc, a, sa, bTail, p.C + (nint)r0 * p.Ldc + nFull, p.Ldc, p.Alpha, beta, rows, n - nFull, tile);
            }
        }
    }

    /// <summary>Columns of C up to which a ragged last tile column goes to <see cref="TailKernel"/>.</summary>
    private const int TailCols = 6;

    /// <summary>Rows of C per call of <see cref="TailKernel"/>: four 16-wide vectors.</summary>
    private const int TailRows = 64;

    /// <summary>
    /// C[0..rows, 0..cols] = alpha·Σ_p a[p]ᵀ·b[p] + beta·C for 64 rows of C (a: 64 values at a + p·sa, A's own row when
    /// all 64 are real, else a zero-padded copy) and
    /// up to 6 columns (b: 6 values per step, zero past cols): 4 vectors of A times 6 broadcasts of B, 24 accumulators,
    /// each summed in ascending p like the tiles, merged into C as <see cref="MergeTile"/> does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TailKernel(int kc, float* a, nint sa, float* b, float* c, nint ldc, float alpha, float beta, int rows, int cols, float* tile)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default, c25 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default, c34 = default, c35 = default;
        for (int p = 0; p < kc; p++, a += sa, b += TailCols)
        {
            var a0 = Vector512.Load(a);
            var a1 = Vector512.Load(a + 16);
            var a2 = Vector512.Load(a + 32);
            var a3 = Vector512.Load(a + 48);
            var bv = Vector512.Create(b[0]);
            c00 = Avx512F.FusedMultiplyAdd(a0, bv, c00); c10 = Avx512F.FusedMultiplyAdd(a1, bv, c10);
            c20 = Avx512F.FusedMultiplyAdd(a2, bv, c20); c30 = Avx512F.FusedMultiplyAdd(a3, bv, c30);
            bv = Vector512.Create(b[1]);
            c01 = Avx512F.FusedMultiplyAdd(a0, bv, c01); c11 = Avx512F.FusedMultiplyAdd(a1, bv, c11);
            c21 = Avx512F.FusedMultiplyAdd(a2, bv, c21); c31 = Avx512F.FusedMultiplyAdd(a3, bv, c31);
            bv = Vector512.Create(b[2]);
            c02 = Avx512F.FusedMultiplyAdd(a0, bv, c02); c12 = Avx512F.FusedMultiplyAdd(a1, bv, c12);
            c22 = Avx512F.FusedMultiplyAdd(a2, bv, c22); c32 = Avx512F.FusedMultiplyAdd(a3, bv, c32);
            bv = Vector512.Create(b[3]);
            c03 = Avx512F.FusedMultiplyAdd(a0, bv, c03); c13 = Avx512F.FusedMultiplyAdd(a1, bv, c13);
            c23 = Avx512F.FusedMultiplyAdd(a2, bv, c23); c33 = Avx512F.FusedMultiplyAdd(a3, bv, c33);
            bv = Vector512.Create(b[4]);
            c04 = Avx512F.FusedMultiplyAdd(a0, bv, c04); c14 = Avx512F.FusedMultiplyAdd(a1, bv, c14);
            c24 = Avx512F.FusedMultiplyAdd(a2, bv, c24); c34 = Avx512F.FusedMultiplyAdd(a3, bv, c34);
            bv = Vector512.Create(b[5]);
            c05 = Avx512F.FusedMultiplyAdd(a0, bv, c05); c15 = Avx512F.FusedMultiplyAdd(a1, bv, c15);
            c25 = Avx512F.FusedMultiplyAdd(a2, bv, c25); c35 = Avx512F.FusedMultiplyAdd(a3, bv, c35);
        }
        // tile[j·64 + i] = column j of C's 64 rows.
        Vector512.Store(c00, tile); Vector512.Store(c10, tile + 16); Vector512.Store(c20, tile + 32); Vector512.Store(c30, tile + 48);
        Vector512.Store(c01, tile + 64); Vector512.Store(c11, tile + 80); Vector512.Store(c21, tile + 96); Vector512.Store(c31, tile + 112);
        Vector512.Store(c02, tile + 128); Vector512.Store(c12, tile + 144); Vector512.Store(c22, tile + 160); Vector512.Store(c32, tile + 176);
        Vector512.Store(c03, tile + 192); Vector512.Store(c13, tile + 208); Vector512.Store(c23, tile + 224); Vector512.Store(c33, tile + 240);
        Vector512.Store(c04, tile + 256); Vector512.Store(c14, tile + 272); Vector512.Store(c24, tile + 288); Vector512.Store(c34, tile + 304);
        Vector512.Store(c05, tile + 320); Vector512.Store(c15, tile + 336); Vector512.Store(c25, tile + 352); Vector512.Store(c35, tile + 368);
        for (int i = 0; i < rows; i++, c += ldc)
            for (int j = 0; j < cols; j++)
                c[j] = beta == 0f ? tile[j * TailRows + i] * alpha : MathF.FusedMultiplyAdd(tile[j * TailRows + i], alpha, c[j] * beta);
    }

    /// <summary>rows × cols values at stride ld into dst at stride width, columns past cols zero.</summary>
    private static void CopyPadded(float* src, nint ld, int rows, int cols, int width, float* dst)
    {
        // Whole vectors, then the ragged values one by one, then zeros up to a vector boundary and whole vectors of
        // zeros: a few instructions per row (these rows are short, and a call to memmove per row cost more than the copy).
        int full = Vector512.IsHardwareAccelerated ? cols & ~15 : 0;
        for (int q = 0; q < rows; q++, src += ld, dst += width)
        {
            int j = 0;
            for (; j < full; j += 16) Vector512.Store(Vector512.Load(src + j), dst + j);
            for (; j < cols; j++) dst[j] = src[j];
            for (; j < width && (j & 15) != 0; j++) dst[j] = 0f;
            if (Vector512.IsHardwareAccelerated)
                for (; j + 16 <= width; j += 16) Vector512.Store(Vector512<float>.Zero, dst + j);
            for (; j < width; j++) dst[j] = 0f;
        }
    }

    /// <summary>Whether a strided micro-kernel prefetches B's rows ahead of its loop (a JIT-time constant per type).</summary>
    private interface IRowPrefetch { static abstract bool Enabled { get; } }

    private struct NoPrefetch : IRowPrefetch { public static bool Enabled => false; }

    /// <summary>
    /// Prefetch the tile's columns of B <see cref="PrefetchDistance"/> rows ahead. With few rows of C every element of
    /// B is used once, so the product streams B down 128-byte column strips of rows a whole activation row apart:
    /// the hardware's stride prefetcher does not follow them (Aᵀ·B with 8 rows of C over 2,048 rows of B, in place,
    /// alternating in one process: 768 wide 186–197 → 169–171 µs, 256 wide 49–59 → 43–44 µs). The 64- to 128-sided gM
    /// products, whose B strips are reused from L2, gained nothing and do not prefetch.
    /// </summary>
    private struct PrefetchRows : IRowPrefetch { public static bool Enabled => true; }

    private const int PrefetchDistance = 16;

    /// <summary>
    /// <see cref="Kernel512"/> reading its operands in place: step p takes MR values at a + p·sa and NR at b + p·sb
    /// (rows of Aᵀ's and B's storage, or the zero-padded edge copies). <typeparamref name="TPrefetch"/> says whether
    /// it prefetches B's rows ahead (<see cref="PrefetchRows"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelStrided512<TPrefetch>(int kc, float* a, nint sa, float* b, nint sb, float* c, nint ldc, float alpha, float beta,
        int mr, int nr, float* tile) where TPrefetch : struct, IRowPrefetch
    {
        nint pf = TPrefetch.Enabled ? PrefetchDistance * sb : 0;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;

        for (int p = 0; p < kc; p++)
        {
            if (TPrefetch.Enabled)
            {
                Sse.Prefetch0(b + pf);
                Sse.Prefetch0(b + pf + 16);
                Sse.Prefetch0(b + pf + 31);
            }
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> av = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(av, b0, c00); c01 = Avx512F.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(av, b0, c10); c11 = Avx512F.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(av, b0, c20); c21 = Avx512F.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(av, b0, c30); c31 = Avx512F.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]);
            c40 = Avx512F.FusedMultiplyAdd(av, b0, c40); c41 = Avx512F.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]);
            c50 = Avx512F.FusedMultiplyAdd(av, b0, c50); c51 = Avx512F.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a[6]);
            c60 = Avx512F.FusedMultiplyAdd(av, b0, c60); c61 = Avx512F.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a[7]);
            c70 = Avx512F.FusedMultiplyAdd(av, b0, c70); c71 = Avx512F.FusedMultiplyAdd(av, b1, c71);
            a += sa;
            b += sb;
        }

        bool full = mr == Mr512 && nr == Nr512;
        float* dst = full ? c : tile;
        nint ld = full ? ldc : Nr512;
        float al = full ? alpha : 1f, bt = full ? beta : 0f;
        Store512(dst, c00, c01, al, bt);
        Store512(dst + ld, c10, c11, al, bt);
        Store512(dst + 2 * ld, c20, c21, al, bt);
        Store512(dst + 3 * ld, c30, c31, al, bt);
        Store512(dst + 4 * ld, c40, c41, al, bt);
        Store512(dst + 5 * ld, c50, c51, al, bt);
        Store512(dst + 6 * ld, c60, c61, al, bt);
        Store512(dst + 7 * ld, c70, c71, al, bt);
        if (!full) MergeTile(tile, Nr512, c, ldc, alpha, beta, mr, nr);
    }
}
