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
    /// C_q = alpha·A_qᵀ·B_q + beta·C_q for q &lt; <paramref name="batch"/>, where A_q is columns [q·m, q·m + m) of A
    /// (k rows at stride lda), B_q columns [q·n, q·n + n) of B (k rows at stride ldb) and C_q columns [q·n, q·n + n)
    /// of C (m rows at stride ldc): the diagonal blocks of Aᵀ·B, such as MoRA's per-chunk gŷ_cᵀ·x_c for RoPE. With
    /// AVX-512, small sides and a deep k, one pass over the rows of A and B takes every block (<see cref="RunSmallTn"/>);
    /// otherwise one <see cref="Multiply(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>
    /// per block. The same bits either way on one ISA, unless the batch's partials would pass 4 MiB, where its depth
    /// segments are fewer and longer (<see cref="RunSmallTn"/>).
    /// </summary>
    internal static void MultiplyTnBlocks(int batch, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc) =>
        MultiplyTnBlocks(batch, m, n, k, alpha, a, lda, b, ldb, Math.Max(1, batch * n), beta, c, ldc);

    /// <summary>
    /// As <see cref="MultiplyTnBlocks(int, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>
    /// with B's columns read modulo <paramref name="bWrap"/>: B_q's column j is B's column (q·n + j) mod bWrap, so a
    /// block may run past B's last column into its first ones (MoRA RoPE's last chunk, wrap-padded with the input's
    /// first values). bWrap ≥ n.
    /// </summary>
    internal static void MultiplyTnBlocks(int batch, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, int bWrap, float beta, Span<float> c, int ldc)
    {
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), $"Sgemm.MultiplyTnBlocks: batch must be positive, got {batch}.");
        if (bWrap < n || bWrap < 1)
            throw new ArgumentOutOfRangeException(nameof(bWrap), $"Sgemm.MultiplyTnBlocks: B's columns wrap at {bWrap}, less than a block's {n}.");
        int bCols = Math.Min(batch * n, bWrap);
        Validate(true, false, m, n, k, lda, ldb, ldc);
        if (lda < batch * m) throw new ArgumentException($"Sgemm.MultiplyTnBlocks: lda ({lda}) is less than batch·m ({batch}·{m}).", nameof(lda));
        if (ldb < bCols) throw new ArgumentException($"Sgemm.MultiplyTnBlocks: ldb ({ldb}) is less than B's {bCols} columns.", nameof(ldb));
        if (ldc < batch * n) throw new ArgumentException($"Sgemm.MultiplyTnBlocks: ldc ({ldc}) is less than batch·n ({batch}·{n}).", nameof(ldc));
        CheckLength(a.Length, k, batch * m, lda, 0, 1, nameof(a));
        CheckLength(b.Length, k, bCols, ldb, 0, 1, nameof(b));
        CheckLength(c.Length, m, batch * n, ldc, 0, 1, nameof(c));
        var isa = ActiveIsa;
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f || !TakesSmallTn(isa, true, false, m, n, k) || m <= SmallTnFewRows)
        {
            for (int q = 0; q < batch; q++)
            {
                // A block that wraps is two products: up to B's column bWrap, then from its column 0.
                int col = q * n % bWrap, first = Math.Min(n, bWrap - col);
                Multiply(isa, true, false, m, first, k, alpha, a[(q * m)..], lda, b[col..], ldb, beta, c[(q * n)..], ldc);
                if (first < n)
                    Multiply(isa, true, false, m, n - first, k, alpha, a[(q * m)..], lda, b, ldb, beta, c[(q * n + first)..], ldc);
            }
            return;
        }
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var p = new Problem(isa, true, false, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
            RunSmallTn(&p, batch, bWrap);
        }
    }

    /// <summary>Most rows of A and B in one depth segment of <see cref="RunSmallTn"/>'s split over k.</summary>
    internal const int SmallTnSegment = 512;

    /// <summary>Floats of segment partials (4 MiB) past which segments get longer instead of more numerous.</summary>
    internal const int SmallTnPartialFloats = 1 << 20;

    /// <summary>
    /// C = alpha·Aᵀ·B + beta·C with A stored k×m and B stored k×n, both small sides (m, n ≤ 160) over a deep k:
    /// MoRA's gM = gŷᵀ·x̂ (r̂ × r̂ over every token) and the like, or few rows of C (m ≤ 16) at any width. Up to 6
    /// ragged columns go to <see cref="TailKernel"/> instead of a column of mostly empty tiles.
    /// <para>Both sides small: C is too small to split over the cores, so k is: it is cut into segments of
    /// <see cref="SmallTnSegment"/> rows (longer where the partials would pass 4 MiB), a function of the shape only. Each core takes a contiguous run
    /// of segments and reads only those rows of A and B, whole rows in order (rows its own row-split passes wrote,
    /// often still in its L2); each segment's product goes to a partial of C, and the partials are added in segment
    /// order. Per K block, A's block is copied whole, zero-padded to full tiles, and B's 32-column strips one at a
    /// time, into aligned buffers; each copied float feeds n (or 8·m) multiply-adds. Tiles go column by column, so
    /// a strip stays in L1 while A's rows pass it. Read in place, a strip's rows (a row of B apart) share a few L1
    /// sets and every tile fetched them from L2 again, and rows a page apart (x of a 1,024-wide layer) cost a TLB
    /// entry each.</para>
    /// <para>Few rows of C: tiles are split over the cores; A and B are read in place, B once, prefetched ahead.</para>
    /// <para>Either way every element is summed in ascending k in a fixed order, so the result does not depend on
    /// the core count.</para>
    /// </summary>
    private static void RunSmallTn(Problem* p, int batch = 1, int bWrap = int.MaxValue)
    {
        // A few ragged last columns (r̂ = 100 is three tiles and 4 columns) would each cost a whole column of 8×32
        // tiles, a quarter of the work for 4% of C: they go to the tail kernel instead, which takes them as its
        // broadcasts and 64 rows of C as its vectors.
        int tail = p->N % Nr512;
        bool useTail = tail is > 0 and <= TailCols && p->N > Nr512;
        int tilesN = useTail ? p->N / Nr512 : (p->N + Nr512 - 1) / Nr512, tilesM = (p->M + Mr512 - 1) / Mr512;
        int tailGroups = useTail ? (p->M + TailRows - 1) / TailRows : 0;
        bool fewRows = p->M <= SmallTnFewRows;
        int segments = fewRows ? 1
            : Math.Min((p->K + SmallTnSegment - 1) / SmallTnSegment, Math.Max(2, SmallTnPartialFloats / (p->M * batch * p->N)));
        var ctx = new SmallTnContext { P = p, TilesM = tilesM, TilesN = tilesN, TailGroups = tailGroups, Segments = segments, Batch = batch, BWrap = bWrap };
        if (segments > 1)
        {
            ctx.Partials = SegmentPartials(segments * p->M * batch * p->N);
            ctx.Parts = Math.Min(CpuThreadPool.Parallelism, segments);
            if (ctx.Parts == 1) SmallTnSegments(&ctx, 0);
            else CpuThreadPool.For(ctx.Parts, &SmallTnSegments, &ctx);
            AddPartials(p, ctx.Partials, segments, batch * p->N);
            return;
        }
        ctx.Parts = (long)p->M * p->N * p->K < ParallelThreshold ? 1 : Math.Min(CpuThreadPool.Parallelism, tilesM * tilesN);
        if (ctx.Parts == 1) SmallTnTiles(&ctx, 0);
        else CpuThreadPool.For(ctx.Parts, &SmallTnTiles, &ctx);
    }

    private struct SmallTnContext
    {
        public Problem* P;
        public int Parts, TilesM, TilesN, TailGroups, Segments, Batch, BWrap;
        public float* Partials;
    }

    [ThreadStatic] private static float[]? t_partials;

    /// <summary>Scratch for the segment partials, owned by the calling thread (its workers write into it).</summary>
    private static float* SegmentPartials(int floats)
    {
        if (t_partials is null || t_partials.Length < floats + 16)
            t_partials = GC.AllocateUninitializedArray<float>(Math.Max(floats, Math.Min(2 * (t_partials?.Length ?? 0), SmallTnPartialFloats)) + 16, pinned: true);
        nint addr = (nint)Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(t_partials));
        return (float*)((addr + 63) & ~(nint)63);
    }

    /// <summary>Part <paramref name="part"/>'s contiguous run of segments, each into its own partial of C.</summary>
    private static void SmallTnSegments(void* context, int part)
    {
        var ctx = (SmallTnContext*)context;
        ref readonly Problem p = ref *ctx->P;
        int s0 = (int)((long)ctx->Segments * part / ctx->Parts), s1 = (int)((long)ctx->Segments * (part + 1) / ctx->Parts);
        for (int s = s0; s < s1; s++)
        {
            int k0 = (int)((long)p.K * s / ctx->Segments), k1 = (int)((long)p.K * (s + 1) / ctx->Segments);
            int width = ctx->Batch * p.N;
            SmallTnRange(in p, ctx, k0, k1, 0, ctx->TilesM * ctx->TilesN, 0, 1, ctx->Partials + (nint)s * p.M * width, width, 1f, 0f);
        }
    }

    /// <summary>C = alpha·Σ_s partial_s + beta·C over m × n (all blocks of a batch), the partials added in segment order.</summary>
    private static void AddPartials(Problem* p, float* partials, int segments, int n)
    {
        int m = p->M;
        nint size = (nint)m * n;
        for (int i = 0; i < m; i++)
        {
            float* c = p->C + i * p->Ldc, src = partials + (nint)i * n;
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
                for (; j + 16 <= n; j += 16)
                {
                    var sum = Vector512.Load(src + j);
                    for (int s = 1; s < segments; s++) sum += Vector512.Load(src + s * size + j);
                    var r = sum * p->Alpha;
                    if (p->Beta != 0f) r = Avx512F.FusedMultiplyAdd(Vector512.Load(c + j), Vector512.Create(p->Beta), r);
                    Vector512.Store(r, c + j);
                }
            for (; j < n; j++)
            {
                float sum = src[j];
                for (int s = 1; s < segments; s++) sum += src[s * size + j];
                c[j] = p->Beta == 0f ? sum * p->Alpha : MathF.FusedMultiplyAdd(c[j], p->Beta, sum * p->Alpha);
            }
        }
    }

    /// <summary>Part <paramref name="part"/>'s tiles (a contiguous range of the tile grid) and tail groups over all of k.</summary>
    private static void SmallTnTiles(void* context, int part)
    {
        var ctx = (SmallTnContext*)context;
        ref readonly Problem p = ref *ctx->P;
        int tiles = ctx->TilesM * ctx->TilesN;
        int t0 = (int)((long)tiles * part / ctx->Parts), t1 = (int)((long)tiles * (part + 1) / ctx->Parts);
        SmallTnRange(in p, ctx, 0, p.K, t0, t1, part, ctx->Parts, p.C, p.Ldc, p.Alpha, p.Beta);
    }

    /// <summary>
    /// Rows [k0, k1) of A and B into C (at <paramref name="c0"/>, stride <paramref name="ldc"/>) for tiles [t0, t1) of
    /// the tile grid (column-major when both sides are small, row-major for few rows) and tail groups g0, g0 + gStep, …,
    /// for every block of the batch.
    /// </summary>
    private static void SmallTnRange(in Problem p, SmallTnContext* ctx, int k0, int k1, int t0, int t1, int g0, int gStep,
        float* c0, nint ldc, float alpha, float beta0)
    {
        bool hasTail = g0 < ctx->TailGroups;
        if (t0 >= t1 && !hasTail) return;
        int m = p.M, n = p.N, k = k1 - k0, tilesM = ctx->TilesM, tilesN = ctx->TilesN;
        int mTail = m % Mr512, nFull = tilesN * Nr512;
        bool fewRows = m <= SmallTnFewRows;
        // With few rows of C a K block is a strip of B's rows that every tile reads at a different place: shorter
        // blocks (about 128 KiB of B) keep the strip in L2 while all of this thread's tiles take their columns.
        int kcLimit = fewRows ? Math.Clamp(32768 / n / 8 * 8, 32, KC) : KC;
        int kcMax = Math.Min(k, kcLimit);
        // Zero-padded copies: A's ragged last rows of C and B's current strip (or, few rows, its ragged columns), per
        // K block; the tail kernel's 64 rows of A and B's last columns.
        // Both sides small: A's whole block, zero-padded to aWidth columns, instead of its edge.
        int aWidth = ctx->TailGroups > 0 ? (m + TailRows - 1) / TailRows * TailRows : (m + Mr512 - 1) / Mr512 * Mr512;
        int aFloats = fewRows ? (Mr512 + TailRows) * kcMax : aWidth * kcMax;
        PackBuffers buffers = PackBuffers.ForCurrentThread(aFloats + TailCols * kcMax, Nr512 * kcMax);
        float* aEdge = buffers.A, aPack = buffers.A, bEdge = buffers.B;
        float* aTail = aEdge + Mr512 * kcMax, bTail = buffers.A + aFloats;
        float* tile = stackalloc float[Math.Max(MaxTile, TailRows * TailCols)];
        int kBlocks = (k + kcLimit - 1) / kcLimit;
        // Few rows of C stream B once (see PrefetchRows), unless B's rows lie a multiple of 4 KiB apart: then the rows
        // prefetched ahead all fall into the same L1 sets and evict each other (1,024 wide: 246 µs without, 260 with).
        bool prefetchB = fewRows && p.Ldb % 1024 != 0;
        int nTail = fewRows && ctx->TailGroups == 0 ? n % Nr512 : 0;
        // Both sides small, whole row tiles and no tail groups, rows of A less than a page apart (gŷ of a 256-wide
        // layer, r̂ = 64): the tiles read A's block in place, 8 values per step, instead of a copy. The copy cost a
        // third as much time as the tiles (MoRA RoPE's gM on 2,048 × 256, one core: 0.68 → 0.63–0.64 ms).
        bool aInPlace = !fewRows && m % Mr512 == 0 && ctx->TailGroups == 0 && p.Lda < 1024;
        for (int kb = 0; kb < kBlocks; kb++)
        for (int q = 0; q < ctx->Batch; q++)
        {
            // Every block of a batch (q) in turn on the same rows of A and B, while they are in L2.
            int pc = k0 + (int)((long)k * kb / kBlocks);
            int kc = k0 + (int)((long)k * (kb + 1) / kBlocks) - pc;
            float beta = kb == 0 ? beta0 : 1f;
            // B's rows of this K block, and where block q's columns start in them (batch > 1 only: few rows of C run
            // one block, which never wraps).
            float* aBlock = p.A + (nint)pc * p.Lda + q * m, bRows = p.B + (nint)pc * p.Ldb, bBlock = bRows + q * n;
            int bCol = (int)((long)q * n % ctx->BWrap);
            float* c = c0 + q * n;
            if (!fewRows && !aInPlace)
            {
                // A's block copied whole, zero-padded to full tiles (and full tail groups), into an aligned buffer: its
                // rows in place can be a page apart (x of a 1,024-wide layer), one TLB entry per row per tile.
                CopyPadded(aBlock, p.Lda, kc, m, aWidth, aPack);
            }
            else if (mTail > 0) CopyPadded(aBlock + (m - mTail), p.Lda, kc, mTail, Mr512, aEdge);
            if (nTail > 0) CopyPadded(bBlock + (n - nTail), p.Ldb, kc, nTail, Nr512, bEdge);
            for (int t = t0, packed = -1; t < t1; t++)
            {
                int ti = fewRows ? t / tilesN : t % tilesM, tj = fewRows ? t % tilesN : t / tilesM;
                int i0 = ti * Mr512, j0 = tj * Nr512;
                int mr = Math.Min(Mr512, m - i0), nr = Math.Min(Nr512, n - j0);
                float* ct = c + (nint)i0 * ldc + j0;
                if (!fewRows)
                {
                    if (tj != packed)
                    {
                        CopyWrapped(bRows, p.Ldb, kc, bCol + j0, nr, ctx->BWrap, Nr512, bEdge);
                        packed = tj;
                    }
                    if (aInPlace) KernelStrided512<NoPrefetch>(kc, aBlock + i0, p.Lda, bEdge, Nr512, ct, ldc, alpha, beta, mr, nr, tile);
                    else KernelStrided512<NoPrefetch>(kc, aPack + i0, aWidth, bEdge, Nr512, ct, ldc, alpha, beta, mr, nr, tile);
                    continue;
                }
                float* a = mr == Mr512 ? aBlock + i0 : aEdge;
                nint sa = mr == Mr512 ? p.Lda : Mr512;
                float* b = nr == Nr512 ? bBlock + j0 : bEdge;
                nint sb = nr == Nr512 ? p.Ldb : Nr512;
                if (prefetchB && nr == Nr512)
                    KernelStrided512<PrefetchRows>(kc, a, sa, b, sb, ct, ldc, alpha, beta, mr, nr, tile);
                else
                    KernelStrided512<NoPrefetch>(kc, a, sa, b, sb, ct, ldc, alpha, beta, mr, nr, tile);
            }
            if (!hasTail) continue;
            // Tail groups g0, g0 + gStep, … after the tiles, while the block is in L2.
            CopyWrapped(bRows, p.Ldb, kc, bCol + nFull, n - nFull, ctx->BWrap, TailCols, bTail);
            for (int g = g0; g < ctx->TailGroups; g += gStep)
            {
                int r0 = g * TailRows, rows = Math.Min(TailRows, m - r0);
                // A full group of 64 rows is read in place; a ragged last one from a zero-padded copy. Both sides
                // small: from A's padded copy.
                float* a = fewRows ? aBlock + r0 : aPack + r0;
                nint sa = fewRows ? p.Lda : aWidth;
                if (fewRows && rows < TailRows)
                {
                    CopyPadded(a, p.Lda, kc, rows, TailRows, aTail);
                    a = aTail;
                    sa = TailRows;
                }
                TailKernel(kc, a, sa, bTail, c + (nint)r0 * ldc + nFull, ldc, alpha, beta, rows, n - nFull, tile);
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

    /// <summary>
    /// <see cref="CopyPadded"/> of columns [col, col + cols) of rows at stride ld, the columns taken modulo wrap
    /// (col &lt; 2·wrap and cols ≤ wrap: at most one wrap).
    /// </summary>
    private static void CopyWrapped(float* rows, nint ld, int count, int col, int cols, int wrap, int width, float* dst)
    {
        if (col >= wrap) col -= wrap;
        int first = Math.Min(cols, wrap - col);
        if (first == cols)
        {
            CopyPadded(rows + col, ld, count, cols, width, dst);
            return;
        }
        for (int q = 0; q < count; q++, rows += ld, dst += width)
        {
            CopyRun(rows + col, first, dst);
            CopyRun(rows, cols - first, dst + first);
            for (int j = cols; j < width; j++) dst[j] = 0f;
        }
    }

    /// <summary>count floats from src to dst, whole vectors then one by one.</summary>
    private static void CopyRun(float* src, int count, float* dst)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j + 16 <= count; j += 16) Vector512.Store(Vector512.Load(src + j), dst + j);
        for (; j < count; j++) dst[j] = src[j];
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
