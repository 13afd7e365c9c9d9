using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoraEngine.Backends.Cpu;

/// <summary>Instruction-set level of the GEMM micro-kernel.</summary>
internal enum Isa
{
    /// <summary>Portable scalar kernel (any CPU).</summary>
    Scalar,
    /// <summary><see cref="Vector256{T}"/> + FMA3 kernel (x64 with AVX2/FMA).</summary>
    Avx2,
    /// <summary><see cref="Vector512{T}"/> kernel (x64 with AVX-512F).</summary>
    Avx512,
}

/// <summary>
/// Single-precision general matrix multiply, C = alpha·op(A)·op(B) + beta·C, row-major, in the
/// BLIS/GotoBLAS style: op(B) is packed into KC×NC panels, op(A) into MC×KC blocks, both laid out as
/// micro-panels that a register-blocked MR×NR micro-kernel streams through with FMA.
/// </summary>
/// <remarks>
/// <para>Loop nest per thread (outermost first): jc over NC columns → pc over KC depth (pack B) →
/// ic over MC rows (pack A) → ir over MR rows → jr over NR columns → micro-kernel over kc. Where a thread's
/// columns span more than one NC panel, pc goes outermost and A's rows are packed once per KC block for all of
/// them (<see cref="RunSerialSlab"/>).</para>
/// <para>The drivers and packing loops are compiled fully optimised at their first call (AggressiveOptimization): a
/// product spends its time in a few long loops, which tiered compilation otherwise runs at tier 0 or through
/// on-stack replacement for the first dozens of calls (one core, 2048³, the first 11 calls: 136–146 GFLOP/s against
/// 152–155).</para>
/// <para>Determinism: every output element is owned by exactly one thread, and its dot product is
/// accumulated in a fixed order (KC blocks in ascending order, ascending k inside a block, one FMA
/// chain per element), independent of thread count and of where tile edges fall. So results are
/// bit-identical from run to run for a given ISA.</para>
/// <para>Multi-threading: C is split into one rectangle per participant of <see cref="CpuThreadPool"/>
/// and each thread runs the whole serial algorithm on its rectangle with its own packing buffers.
/// With few cores this costs a little duplicated packing of the shared operand but needs no
/// barriers inside the loop nest.</para>
/// </remarks>
internal static unsafe partial class Sgemm
{
    // ---- Block sizes -------------------------------------------------------------------------
    // For L2 caches of 1 MiB (AMD Zen 4) or more (2 MiB on recent Intel Xeons), L1d of 32 KiB or more:
    //  * KC: depth of one rank-kc update. An MR×KC micro-panel of A (8·256·4 = 8 KiB for AVX-512)
    //    stays in L1 while every KC×NR micro-panel of B (32 KiB) passes it. KC=256 also means the
    //    common transformer widths (k = 256, 768, 1024, 2048) split into whole blocks.
    //  * MC: rows of the packed A block (MC×KC floats = 192 KiB), taken one micro-panel at a time.
    //  * NC: columns of the packed B panel, KC×NC floats = 512 KiB (544 KiB at KcMax) per thread,
    //    which stays in a 1 MiB L2 while the A micro-panels of the block go over it. A 4 MiB panel
    //    (NC = 4096) streamed from L3 instead: 2,048-wide products ran at 64 against 74 GMAC/s on
    //    one core of a Xeon with 2 MiB of L2.
    private const int KC = 256;
    //  * KcSlack: a depth at most KC + KcSlack stays one block, and deeper ones split into blocks of up to that. A LoRA
    //    layer's concatenated product (k = 256 + r, 1024 + r) then makes as many passes over C as the plain one.
    private const int KcSlack = 16;
    private const int KcMax = KC + KcSlack;
    private const int MC = 192;
    private const int NC = 512;

    /// <summary>Work (m·n·k) below which a multiply runs on the calling thread only.</summary>
    private const long ParallelThreshold = 64L * 64 * 64;

    private static readonly Isa s_detectedIsa = DetectIsa();
    [ThreadStatic] private static Isa? t_forcedIsa;

    /// <summary>Best kernel ISA supported by this CPU.</summary>
    public static Isa DetectedIsa => s_detectedIsa;

    /// <summary>ISA the public entry points use on this thread: the forced one if set, else <see cref="DetectedIsa"/>.</summary>
    public static Isa ActiveIsa => t_forcedIsa ?? s_detectedIsa;

    /// <summary>
    /// Makes the public entry points use <paramref name="isa"/> for calls made from the current thread
    /// (worker threads of those calls follow it); null restores auto-detection. For tests and
    /// diagnostics. Thread-scoped on purpose, so a test forcing the AVX2 or scalar kernel cannot change
    /// the results of tests running concurrently on other threads. Throws if the CPU cannot run it.
    /// </summary>
    public static void ForceIsa(Isa? isa)
    {
        if (isa is { } value && !IsSupported(value))
            throw new PlatformNotSupportedException($"GEMM kernel {value} is not supported on this CPU.");
        t_forcedIsa = isa;
    }

    /// <summary>Whether this CPU can run the <paramref name="isa"/> kernel.</summary>
    public static bool IsSupported(Isa isa) => isa switch
    {
        Isa.Scalar => true,
        Isa.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        Isa.Avx512 => Avx512F.IsSupported && Vector512.IsHardwareAccelerated,
        _ => false,
    };

    private static Isa DetectIsa()
    {
        if (IsSupported(Isa.Avx512)) return Isa.Avx512;
        if (IsSupported(Isa.Avx2)) return Isa.Avx2;
        return Isa.Scalar;
    }

    /// <summary>
    /// C[m×n] = alpha·op(A)·op(B) + beta·C, all matrices row-major.
    /// </summary>
    /// <param name="transA">false: A is stored m×k (lda ≥ k); true: A is stored k×m (lda ≥ m).</param>
    /// <param name="transB">false: B is stored k×n (ldb ≥ n); true: B is stored n×k (ldb ≥ k).</param>
    /// <param name="m">Rows of op(A) and C.</param>
    /// <param name="n">Columns of op(B) and C.</param>
    /// <param name="k">Inner dimension. k = 0 gives C = beta·C.</param>
    /// <param name="alpha">Scale of the product. alpha = 0 gives C = beta·C without reading A or B.</param>
    /// <param name="a">Storage of A.</param>
    /// <param name="lda">Row stride of A's storage, in elements.</param>
    /// <param name="b">Storage of B.</param>
    /// <param name="ldb">Row stride of B's storage, in elements.</param>
    /// <param name="beta">Scale of the old C. beta = 0 ignores C's old contents entirely (NaN-safe).</param>
    /// <param name="c">Storage of C (m×n, row stride <paramref name="ldc"/> ≥ n).</param>
    /// <param name="ldc">Row stride of C, in elements.</param>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
        => Multiply(ActiveIsa, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>As <see cref="Multiply(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>
    /// with an explicit kernel ISA (tests use this to exercise every kernel on one machine).</summary>
    internal static void Multiply(Isa isa, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        CheckLength(a.Length, transA ? k : m, transA ? m : k, lda, 0, 1, nameof(a));
        CheckLength(b.Length, transB ? n : k, transB ? k : n, ldb, 0, 1, nameof(b));
        CheckLength(c.Length, m, n, ldc, 0, 1, nameof(c));
        if (!IsSupported(isa)) throw new PlatformNotSupportedException($"GEMM kernel {isa} is not supported on this CPU.");
        if (m == 0 || n == 0) return;
        if (alpha != 0f && TakesNarrow512(isa, transA, transB, n, k))
        {
            fixed (float* pa = a)
            fixed (float* pb = b)
            fixed (float* pc = c)
            {
                var p = new Problem(isa, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
                RunNarrow512(&p);
            }
            return;
        }
        if (n <= NarrowCols && m >= TransposedMinRows && k >= 16 && alpha != 0f)
        {
            MultiplyTransposed(isa, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }

        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var p = new Problem(isa, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
            if (!transA && transB && m <= SkinnyRows && k >= 32)
                RunSkinny(&p);
            else if (!transA && transB && n <= NarrowCols && k >= 32)
                RunNarrow(&p);
            else if (alpha != 0f && TakesSmallTn(isa, transA, transB, m, n, k))
                RunSmallTn(&p);
            else if ((long)m * n * k < ParallelThreshold || CpuThreadPool.Parallelism == 1)
                RunSerial(in p, 0, m, 0, n);
            else
                RunParallel(&p);
        }
    }

    /// <summary>
    /// C = alpha·(op(A)·op(B) + op(A2)·op(B2)) + beta·C, where the second product continues the first along K
    /// (op(A2) m×k2, op(B2) k2×n, the same transposes): one GEMM over K = k + k2, so C is read and written once.
    /// This is how a LoRA update joins its layer: [x | x·Aᵀ]·[W | s·B]ᵀ. Shapes the packed path does not take
    /// (a few rows or columns) run as two products.
    /// </summary>
    public static void MultiplyConcat(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        int k2, ReadOnlySpan<float> a2, int lda2, ReadOnlySpan<float> b2, int ldb2,
        float beta, Span<float> c, int ldc)
        => MultiplyConcat(ActiveIsa, transA, transB, m, n, k, alpha, a, lda, b, ldb, k2, a2, lda2, b2, ldb2, beta, c, ldc);

    internal static void MultiplyConcat(Isa isa, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        int k2, ReadOnlySpan<float> a2, int lda2, ReadOnlySpan<float> b2, int ldb2,
        float beta, Span<float> c, int ldc)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        Validate(transA, transB, m, n, k2, lda2, ldb2, ldc);
        CheckLength(a2.Length, transA ? k2 : m, transA ? m : k2, lda2, 0, 1, nameof(a2));
        CheckLength(b2.Length, transB ? n : k2, transB ? k2 : n, ldb2, 0, 1, nameof(b2));
        var packed = !((!transA && transB && (m <= SkinnyRows || n <= NarrowCols)) || k == 0 || k2 == 0 || alpha == 0f);
        if (!packed)
        {
            Multiply(isa, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            Multiply(isa, transA, transB, m, n, k2, alpha, a2, lda2, b2, ldb2, 1f, c, ldc);
            return;
        }
        CheckLength(a.Length, transA ? k : m, transA ? m : k, lda, 0, 1, nameof(a));
        CheckLength(b.Length, transB ? n : k, transB ? k : n, ldb, 0, 1, nameof(b));
        CheckLength(c.Length, m, n, ldc, 0, 1, nameof(c));
        if (!IsSupported(isa)) throw new PlatformNotSupportedException($"GEMM kernel {isa} is not supported on this CPU.");
        if (m == 0 || n == 0) return;
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pa2 = a2)
        fixed (float* pb2 = b2)
        fixed (float* pc = c)
        {
            var p = new Problem(isa, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc)
            {
                K2 = k2, A2 = pa2, B2 = pb2, Lda2 = lda2, Ldb2 = ldb2,
            };
            if ((long)m * n * (k + k2) < ParallelThreshold || CpuThreadPool.Parallelism == 1)
                RunSerial(in p, 0, m, 0, n);
            else
                RunParallel(&p);
        }
    }

    /// <summary>Rows from which a product with at most <see cref="NarrowCols"/> columns runs transposed.</summary>
    internal const int TransposedMinRows = 64;

    /// <summary>
    /// A product with few columns and many rows (an adapter's rank-r side: gyᵀ·h, and x·Aᵀ and gy·B where
    /// <see cref="RunNarrow512"/> does not take them) as its transpose,
    /// Cᵀ = op(B)ᵀ·op(A)ᵀ: the few columns become the micro-kernel's MR = 8 rows, so every FMA lane does useful work
    /// (with n = 8 the direct product fills a quarter of the NR = 32 columns, or reduces 8 dot products per row), and
    /// the packed path reads the big operand once. Cᵀ lands in a pooled buffer and is transposed into C.
    /// </summary>
    private static void MultiplyTransposed(Isa isa, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        var t = System.Buffers.ArrayPool<float>.Shared.Rent(m * n);
        try
        {
            Multiply(isa, !transB, !transA, n, m, k, alpha, b, ldb, a, lda, 0f, t, m);
            for (int i = 0; i < m; i++)
            {
                var row = c.Slice(i * ldc, n);
                if (beta == 0f)
                    for (int j = 0; j < n; j++) row[j] = t[j * m + i];
                else
                    for (int j = 0; j < n; j++) row[j] = t[j * m + i] + beta * row[j];
            }
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(t);
        }
    }

    /// <summary>Row counts up to which x·Wᵀ with W stored [n, k] skips packing (decoding: one row per token).</summary>
    internal const int SkinnyRows = 4;

    /// <summary>
    /// C = alpha·A·Bᵀ + beta·C for a few rows of A and B stored n×k (a linear layer's [out, in] weight): every
    /// output is a dot product of two contiguous rows, so B streams through memory once, unpacked, with the few
    /// rows of A in cache. Packing B would cost a read and a write of all of it for one use: at batch-1 decoding
    /// this path is bound by memory bandwidth instead. Columns are split over the cores.
    /// </summary>
    private static void RunSkinny(Problem* p)
    {
        var chunks = (long)p->N * p->K < ParallelThreshold ? 1 : Math.Min(CpuThreadPool.Parallelism, Math.Max(1, p->N / 16));
        var ctx = new SkinnyContext { P = p, Chunks = chunks };
        CpuThreadPool.For(chunks, &SkinnyChunk, &ctx);
    }

    /// <summary>One row x against four rows of B (b0, b0 + ldb, …) at once: x's chunk is loaded once for four streams of B; c[0..4) = alpha·dots (+ beta·c).</summary>
    private static void Dot4(float* x, float* b0, nint ldb, int k, float* c, float alpha, float beta)
    {
        float* b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        var q = 0;
        for (; q + 16 <= k; q += 16)
        {
            var xv = Vector512.Load(x + q);
            s0 = Vector512.FusedMultiplyAdd(Vector512.Load(b0 + q), xv, s0);
            s1 = Vector512.FusedMultiplyAdd(Vector512.Load(b1 + q), xv, s1);
            s2 = Vector512.FusedMultiplyAdd(Vector512.Load(b2 + q), xv, s2);
            s3 = Vector512.FusedMultiplyAdd(Vector512.Load(b3 + q), xv, s3);
        }
        float d0 = Vector512.Sum(s0), d1 = Vector512.Sum(s1), d2 = Vector512.Sum(s2), d3 = Vector512.Sum(s3);
        for (; q < k; q++)
        {
            d0 += x[q] * b0[q];
            d1 += x[q] * b1[q];
            d2 += x[q] * b2[q];
            d3 += x[q] * b3[q];
        }
        if (beta == 0)
        {
            c[0] = alpha * d0; c[1] = alpha * d1; c[2] = alpha * d2; c[3] = alpha * d3;
        }
        else
        {
            c[0] = alpha * d0 + beta * c[0]; c[1] = alpha * d1 + beta * c[1];
            c[2] = alpha * d2 + beta * c[2]; c[3] = alpha * d3 + beta * c[3];
        }
    }

    /// <summary>One output element: alpha·(x · b) (+ beta·c).</summary>
    private static void Dot1(float* x, float* b, int k, float* c, float alpha, float beta)
    {
        var dot = TensorPrimitives.Dot(new ReadOnlySpan<float>(x, k), new ReadOnlySpan<float>(b, k));
        *c = beta == 0 ? alpha * dot : alpha * dot + beta * *c;
    }

    private struct SkinnyContext
    {
        public Problem* P;
        public int Chunks;
    }

    private static void SkinnyChunk(void* context, int index)
    {
        var ctx = (SkinnyContext*)context;
        ref readonly Problem p = ref *ctx->P;
        var j0 = (int)((long)p.N * index / ctx->Chunks);
        var j1 = (int)((long)p.N * (index + 1) / ctx->Chunks);
        var j = j0;
        if (p.M == 1 && Vector512.IsHardwareAccelerated)
            for (; j + 4 <= j1; j += 4) Dot4(p.A, p.B + j * p.Ldb, p.Ldb, p.K, p.C + j, p.Alpha, p.Beta);
        for (; j < j1; j++)
            for (var i = 0; i < p.M; i++)
                Dot1(p.A + i * p.Lda, p.B + j * p.Ldb, p.K, p.C + i * p.Ldc + j, p.Alpha, p.Beta);
    }

    /// <summary>Columns up to which A·Bᵀ with B stored [n, k] skips packing (an adapter's rank-r projection).</summary>
    internal const int NarrowCols = 16;

    /// <summary>
    /// C = alpha·A·Bᵀ + beta·C for many rows of A but only a few rows of B (n ≤ <see cref="NarrowCols"/>, B stored
    /// n×k, e.g. LoRA's x·Aᵀ): B stays in cache and each row of A is read once, unpacked, for all its n dot
    /// products. The packed path would copy all of A for a product that is a single pass over it. Rows are split
    /// over the cores.
    /// </summary>
    private static void RunNarrow(Problem* p)
    {
        var chunks = (long)p->M * p->K < ParallelThreshold ? 1 : Math.Min(CpuThreadPool.Parallelism, Math.Max(1, p->M / 8));
        var ctx = new SkinnyContext { P = p, Chunks = chunks };
        CpuThreadPool.For(chunks, &NarrowChunk, &ctx);
    }

    private static void NarrowChunk(void* context, int index)
    {
        var ctx = (SkinnyContext*)context;
        ref readonly Problem p = ref *ctx->P;
        var i0 = (int)((long)p.M * index / ctx->Chunks);
        var i1 = (int)((long)p.M * (index + 1) / ctx->Chunks);
        var wide = Vector512.IsHardwareAccelerated;
        for (var i = i0; i < i1; i++)
        {
            float* x = p.A + i * p.Lda, c = p.C + i * p.Ldc;
            var j = 0;
            if (wide)
                for (; j + 4 <= p.N; j += 4) Dot4(x, p.B + j * p.Ldb, p.Ldb, p.K, c + j, p.Alpha, p.Beta);
            for (; j < p.N; j++) Dot1(x, p.B + j * p.Ldb, p.K, c + j, p.Alpha, p.Beta);
        }
    }

    /// <summary>
    /// Batched multiply: for i in [0, batch), C_i = alpha·op(A_i)·op(B_i) + beta·C_i where A_i starts at
    /// element i·<paramref name="strideA"/> of <paramref name="a"/> (stride 0 broadcasts one matrix to
    /// the whole batch), likewise B_i and C_i. Small matrices are distributed over threads by batch
    /// index; large ones are multiplied one after another, each using all threads.
    /// </summary>
    /// <remarks>C matrices must not overlap each other (strideC ≥ the size of one C, unless batch ≤ 1).</remarks>
    public static void MultiplyBatched(int batch, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, long strideA, ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC)
        => MultiplyBatched(ActiveIsa, batch, transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB,
            beta, c, ldc, strideC);

    /// <summary>As the public <c>MultiplyBatched</c> with an explicit kernel ISA.</summary>
    internal static void MultiplyBatched(Isa isa, int batch, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, long strideA, ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        ArgumentOutOfRangeException.ThrowIfNegative(strideA);
        ArgumentOutOfRangeException.ThrowIfNegative(strideB);
        ArgumentOutOfRangeException.ThrowIfNegative(strideC);
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        if (!IsSupported(isa)) throw new PlatformNotSupportedException($"GEMM kernel {isa} is not supported on this CPU.");
        if (batch == 0 || m == 0 || n == 0) return;
        CheckLength(a.Length, transA ? k : m, transA ? m : k, lda, strideA, batch, nameof(a));
        CheckLength(b.Length, transB ? n : k, transB ? k : n, ldb, strideB, batch, nameof(b));
        CheckLength(c.Length, m, n, ldc, strideC, batch, nameof(c));
        if (batch > 1 && strideC < (long)(m - 1) * ldc + n)
            throw new ArgumentException("strideC is smaller than one C matrix: batch outputs would overlap.", nameof(strideC));

        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var p = new Problem(isa, transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
            long work = (long)m * n * k;
            int threads = CpuThreadPool.Parallelism;
            // Batch-level parallelism when each multiply is too small to split well, or when the batch
            // divides evenly over the threads (then per-thread work is balanced and there is no
            // duplicated packing at all). Otherwise parallelise inside each multiply.
            bool overBatch = threads > 1 && batch > 1 &&
                             (work < 128L * 128 * 128 || (batch % threads == 0 && work < 512L * 512 * 512));
            if (overBatch)
            {
                var ctx = new BatchContext { P = &p, Batch = batch, StrideA = strideA, StrideB = strideB, StrideC = strideC, Chunks = Math.Min(batch, threads) };
                CpuThreadPool.For(ctx.Chunks, &BatchChunk, &ctx);
            }
            else
            {
                for (int i = 0; i < batch; i++)
                {
                    Problem pi = p;
                    pi.A = pa + i * strideA;
                    pi.B = pb + i * strideB;
                    pi.C = pc + i * strideC;
                    if (work < ParallelThreshold || threads == 1) RunSerial(in pi, 0, m, 0, n);
                    else RunParallel(&pi);
                }
            }
        }
    }

    private static void Validate(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (lda < Math.Max(1, transA ? m : k)) throw new ArgumentOutOfRangeException(nameof(lda), lda, "lda is smaller than a row of A.");
        if (ldb < Math.Max(1, transB ? k : n)) throw new ArgumentOutOfRangeException(nameof(ldb), ldb, "ldb is smaller than a row of B.");
        if (ldc < Math.Max(1, n)) throw new ArgumentOutOfRangeException(nameof(ldc), ldc, "ldc is smaller than a row of C.");
    }

    private static void CheckLength(int length, int rows, int cols, int ld, long stride, int count, string name)
    {
        if (rows == 0 || cols == 0 || count == 0) return;
        long need = (long)(count - 1) * stride + (long)(rows - 1) * ld + cols;
        if (length < need)
            throw new ArgumentException($"Span '{name}' has {length} elements but the matrix layout needs {need}.", name);
    }

    // ---- Problem description and thread partitioning -----------------------------------------

    private struct Problem
    {
        public Isa Isa;
        public bool TransA, TransB;
        public int M, N, K;
        public float Alpha, Beta;
        public float* A, B, C;
        public nint Lda, Ldb, Ldc;
        // A second product along K (MultiplyConcat): op(A2) m×K2 and op(B2) K2×n continue A's and B's columns/rows.
        public int K2;
        public float* A2, B2;
        public nint Lda2, Ldb2;
        // Added to each block of C once its product is final (MultiplyGatherAdd), while the block is in cache.
        public GatherAdd* Epilogue;

        public Problem(Isa isa, bool transA, bool transB, int m, int n, int k, float alpha,
            float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
        {
            Isa = isa; TransA = transA; TransB = transB; M = m; N = n; K = k; Alpha = alpha; Beta = beta;
            A = a; B = b; C = c; Lda = lda; Ldb = ldb; Ldc = ldc;
        }

        /// <summary>K of both products together.</summary>
        public readonly int KTotal => K + K2;
    }

    private struct ParallelContext
    {
        public Problem* P;
        public int GridM, GridN;     // thread grid over C
        public int UnitM, UnitN;     // split granularity (MR, NR)
    }

    private struct BatchContext
    {
        public Problem* P;
        public int Batch, Chunks;
        public long StrideA, StrideB, StrideC;
    }

    private static void RunParallel(Problem* p)
    {
        GetKernelShape(p->Isa, out int mr, out int nr);
        int threads = CpuThreadPool.Parallelism;
        // Pick a gm×gn grid (gm·gn = threads) whose per-thread rectangles are as square as possible in
        // units of micro-tiles: square-ish rectangles minimise the packing each thread has to redo.
        int bestGm = 1;
        double bestScore = double.MaxValue;
        for (int gm = 1; gm <= threads; gm++)
        {
            if (threads % gm != 0) continue;
            int gn = threads / gm;
            double tilesM = Math.Ceiling((double)p->M / mr), tilesN = Math.Ceiling((double)p->N / nr);
            // Penalise grids that leave threads without a micro-tile.
            double idle = Math.Max(0, gm - tilesM) + Math.Max(0, gn - tilesN);
            double rm = p->M / (double)gm, rn = p->N / (double)gn;
            double score = Math.Abs(Math.Log(rm / rn)) + 100 * idle;
            if (score < bestScore) { bestScore = score; bestGm = gm; }
        }

        var ctx = new ParallelContext { P = p, GridM = bestGm, GridN = threads / bestGm, UnitM = mr, UnitN = nr };
        CpuThreadPool.For(threads, &ParallelChunk, &ctx);
    }

    private static void ParallelChunk(void* context, int index)
    {
        var ctx = (ParallelContext*)context;
        ref readonly Problem p = ref *ctx->P;
        int gi = index / ctx->GridN, gj = index % ctx->GridN;
        Split(p.M, ctx->GridM, ctx->UnitM, gi, out int i0, out int i1);
        Split(p.N, ctx->GridN, ctx->UnitN, gj, out int j0, out int j1);
        if (i0 < i1 && j0 < j1) RunSerial(in p, i0, i1, j0, j1);
    }

    private static void BatchChunk(void* context, int index)
    {
        var ctx = (BatchContext*)context;
        // Contiguous batch ranges: chunk i gets items [lo, hi).
        long lo = (long)ctx->Batch * index / ctx->Chunks, hi = (long)ctx->Batch * (index + 1) / ctx->Chunks;
        Problem pi = *ctx->P;
        for (long i = lo; i < hi; i++)
        {
            pi.A = ctx->P->A + i * ctx->StrideA;
            pi.B = ctx->P->B + i * ctx->StrideB;
            pi.C = ctx->P->C + i * ctx->StrideC;
            RunSerial(in pi, 0, pi.M, 0, pi.N);
        }
    }

    /// <summary>Splits [0, total) into <paramref name="parts"/> ranges aligned to <paramref name="unit"/>.</summary>
    private static void Split(int total, int parts, int unit, int index, out int lo, out int hi)
    {
        int units = (total + unit - 1) / unit;
        int u0 = (int)((long)units * index / parts), u1 = (int)((long)units * (index + 1) / parts);
        lo = Math.Min(total, u0 * unit);
        hi = Math.Min(total, u1 * unit);
    }

    // ---- Serial blocked algorithm ------------------------------------------------------------

    private static void GetKernelShape(Isa isa, out int mr, out int nr)
    {
        switch (isa)
        {
            case Isa.Avx512: mr = Mr512; nr = Nr512; break;
            case Isa.Avx2: mr = Mr256; nr = Nr256; break;
            default: mr = MrScalar; nr = NrScalar; break;
        }
    }

    /// <summary>Computes rows [i0,i1) × columns [j0,j1) of C on the calling thread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunSerial(in Problem p, int i0, int i1, int j0, int j1)
    {
        int k = p.KTotal;
        if (k == 0 || p.Alpha == 0f)
        {
            ScaleC(p.C, p.Ldc, i0, i1, j0, j1, p.Beta);
            if (p.Epilogue != null) ApplyGatherAdd(p.Epilogue, p.C, p.Ldc, i0, i1 - i0, j0, j1 - j0);
            return;
        }

        GetKernelShape(p.Isa, out int mr, out int nr);
        int rows = i1 - i0, cols = j1 - j0;
        int kBlocks = DepthBlocks(k);
        int kcMax = (k + kBlocks - 1) / kBlocks;
        int nBlocks = (cols + NC - 1) / NC;
        int mBlocks = (rows + MC - 1) / MC;
        if (nBlocks > 1 && (long)RoundUp(rows, mr) * kcMax <= SlabFloats && UseSlab)
        {
            RunSerialSlab(in p, i0, i1, j0, j1, mr, nr, kBlocks, kcMax, nBlocks, mBlocks);
            return;
        }
        PackBuffers buffers = PackBuffers.ForCurrentThread(
            Math.Min(RoundUp(rows, mr), MC) * kcMax, Math.Min(RoundUp(cols, nr), NC) * kcMax);
        float* ap = buffers.A, bp = buffers.B;
        float* tile = stackalloc float[MaxTile];

        for (int jb = 0; jb < nBlocks; jb++)
        {
            int jc = j0 + BlockStart(cols, nBlocks, nr, jb);
            int nc = j0 + BlockStart(cols, nBlocks, nr, jb + 1) - jc;
            for (int kb = 0; kb < kBlocks; kb++)
            {
                int pc = (int)((long)k * kb / kBlocks);
                int kc = (int)((long)k * (kb + 1) / kBlocks) - pc;
                PackB(in p, pc, kc, jc, nc, nr, bp);
                float beta = kb == 0 ? p.Beta : 1f;
                for (int ib = 0; ib < mBlocks; ib++)
                {
                    int ic = i0 + BlockStart(rows, mBlocks, mr, ib);
                    int mc = i0 + BlockStart(rows, mBlocks, mr, ib + 1) - ic;
                    PackA(in p, ic, mc, pc, kc, mr, ap);
                    MacroKernel(in p, ap, bp, ic, mc, jc, nc, kc, mr, nr, beta, tile);
                    // The block's last K slice is done: it is final and still in L2.
                    if (p.Epilogue != null && kb == kBlocks - 1) ApplyGatherAdd(p.Epilogue, p.C, p.Ldc, ic, mc, jc, nc);
                }
            }
        }
    }

    private static int RoundUp(int x, int unit) => (x + unit - 1) / unit * unit;

    /// <summary>
    /// C[ic.., jc..] (mc × nc) (+)= packed A block (mc × kc, at <paramref name="ap"/>) · packed B panel (kc × nc, at
    /// <paramref name="bp"/>). One A micro-panel (MR×kc, 8 KiB) stays in L1 while the B panel's micro-panels stream
    /// past it from L2, and C's tile rows advance along the row, where the hardware prefetcher follows them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MacroKernel(in Problem p, float* ap, float* bp, int ic, int mc, int jc, int nc, int kc, int mr, int nr, float beta, float* tile)
    {
        for (int ir = 0; ir < mc; ir += mr)
        {
            int mrr = Math.Min(mr, mc - ir);
            float* aPanel = ap + (nint)ir * kc;
            for (int jr = 0; jr < nc; jr += nr)
            {
                int nrr = Math.Min(nr, nc - jr);
                float* bPanel = bp + (nint)jr * kc;
                float* cTile = p.C + (ic + ir) * p.Ldc + jc + jr;
                switch (p.Isa)
                {
                    case Isa.Avx512: Kernel512(kc, aPanel, bPanel, cTile, p.Ldc, p.Alpha, beta, mrr, nrr, tile); break;
                    case Isa.Avx2: Kernel256(kc, aPanel, bPanel, cTile, p.Ldc, p.Alpha, beta, mrr, nrr, tile); break;
                    default: KernelScalar(kc, aPanel, bPanel, cTile, p.Ldc, p.Alpha, beta, mrr, nrr, tile); break;
                }
            }
        }
    }

    /// <summary>Whether <see cref="RunSerial"/> may take <see cref="RunSerialSlab"/> (tests compare the two loop orders bit for bit).</summary>
    internal static bool UseSlab = true;

    /// <summary>Most floats of packed A (8 MiB, 7,710 rows at KcMax) that <see cref="RunSerialSlab"/> keeps for one K block.</summary>
    private const int SlabFloats = 2 << 20;

    /// <summary>
    /// <see cref="RunSerial"/> for more than one NC panel of columns: per K block, all of this thread's rows of A are
    /// packed once (a slab of rows × kc), then every column panel of B is packed and multiplied against the slab.
    /// Packing A per (column panel, row block) transposed it again for every panel: a 2,048-wide product on one core
    /// spent 8% of its time packing A, four times over. Each element still sums its K blocks in order, so the bits
    /// are those of the per-panel order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunSerialSlab(in Problem p, int i0, int i1, int j0, int j1, int mr, int nr, int kBlocks, int kcMax, int nBlocks, int mBlocks)
    {
        int k = p.KTotal, rows = i1 - i0, cols = j1 - j0;
        PackBuffers buffers = PackBuffers.ForCurrentThread(RoundUp(rows, mr) * kcMax, Math.Min(RoundUp(cols, nr), NC) * kcMax, SlabFloats);
        float* slab = buffers.A, bp = buffers.B;
        float* tile = stackalloc float[MaxTile];
        for (int kb = 0; kb < kBlocks; kb++)
        {
            int pc = (int)((long)k * kb / kBlocks);
            int kc = (int)((long)k * (kb + 1) / kBlocks) - pc;
            for (int ib = 0; ib < mBlocks; ib++)
            {
                int ic = i0 + BlockStart(rows, mBlocks, mr, ib);
                int mc = i0 + BlockStart(rows, mBlocks, mr, ib + 1) - ic;
                PackA(in p, ic, mc, pc, kc, mr, slab + (nint)(ic - i0) * kc);
            }
            float beta = kb == 0 ? p.Beta : 1f;
            for (int jb = 0; jb < nBlocks; jb++)
            {
                int jc = j0 + BlockStart(cols, nBlocks, nr, jb);
                int nc = j0 + BlockStart(cols, nBlocks, nr, jb + 1) - jc;
                PackB(in p, pc, kc, jc, nc, nr, bp);
                for (int ib = 0; ib < mBlocks; ib++)
                {
                    int ic = i0 + BlockStart(rows, mBlocks, mr, ib);
                    int mc = i0 + BlockStart(rows, mBlocks, mr, ib + 1) - ic;
                    MacroKernel(in p, slab + (nint)(ic - i0) * kc, bp, ic, mc, jc, nc, kc, mr, nr, beta, tile);
                    if (p.Epilogue != null && kb == kBlocks - 1) ApplyGatherAdd(p.Epilogue, p.C, p.Ldc, ic, mc, jc, nc);
                }
            }
        }
    }

    /// <summary>
    /// How many near-equal blocks a depth of <paramref name="k"/> splits into: the fewest of at most KC, unless up to
    /// <see cref="KcSlack"/> more per product saves a block (k = 264 is one block, 1032 four of 258). Even-sized blocks
    /// (k = 600 → 3 × 200 rather than 256 + 256 + 88) keep every block efficient.
    /// </summary>
    private static int DepthBlocks(int k) => Math.Max(1, (k - KcSlack + KC - 1) / KC);

    /// <summary>Start of block <paramref name="b"/> when splitting <paramref name="total"/> into
    /// <paramref name="blocks"/> near-equal pieces aligned to <paramref name="unit"/>.</summary>
    private static int BlockStart(int total, int blocks, int unit, int b)
    {
        if (b >= blocks) return total;
        int units = (total + unit - 1) / unit;
        return Math.Min(total, (int)((long)units * b / blocks) * unit);
    }

    private static void ScaleC(float* c, nint ldc, int i0, int i1, int j0, int j1, float beta)
    {
        for (int i = i0; i < i1; i++)
        {
            var row = new Span<float>(c + i * ldc + j0, j1 - j0);
            if (beta == 0f) row.Clear();
            else if (beta != 1f)
                for (int j = 0; j < row.Length; j++) row[j] *= beta;
        }
    }

    // ---- Packing -----------------------------------------------------------------------------

    /// <summary>
    /// Packs op(A)[ic..ic+mc, pc..pc+kc] as consecutive MR-row micro-panels; micro-panel r holds, for
    /// each p, the MR values op(A)[ic+r·MR .. , pc+p] contiguously. Rows past mc are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(in Problem p, int ic, int mc, int pc, int kc, int mr, float* dst)
    {
        // Columns below K come from A, the rest from A2 (MultiplyConcat).
        int k1 = Math.Clamp(p.K - pc, 0, kc);
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* panel = dst + (nint)ir * kc;
            if (k1 > 0) PackAPanel(p.A, p.Lda, p.TransA, ic + ir, rows, pc, k1, mr, panel);
            if (k1 < kc) PackAPanel(p.A2, p.Lda2, p.TransA, ic + ir, rows, pc + k1 - p.K, kc - k1, mr, panel + (nint)k1 * mr);
        }
    }

    /// <summary>One micro-panel: op(A)[row0 .. row0+rows, q0 .. q0+kc] into panel[q·mr + r], rows past <paramref name="rows"/> zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackAPanel(float* a, nint lda, bool transA, int row0, int rows, int q0, int kc, int mr, float* panel)
    {
        if (transA)
        {
            // A stored k×m: the MR values for one p are contiguous.
            float* src = a + (nint)q0 * lda + row0;
            if (rows == mr && mr == 16 && Vector512.IsHardwareAccelerated)
            {
                for (int q = 0; q < kc; q++, src += lda, panel += 16)
                    Vector512.Store(Vector512.Load(src), panel);
            }
            else if (rows == mr && mr == 8 && Vector256.IsHardwareAccelerated)
            {
                for (int q = 0; q < kc; q++, src += lda, panel += 8)
                    Vector256.Store(Vector256.Load(src), panel);
            }
            else
            {
                for (int q = 0; q < kc; q++, src += lda, panel += mr)
                {
                    int r = 0;
                    for (; r < rows; r++) panel[r] = src[r];
                    for (; r < mr; r++) panel[r] = 0f;
                }
            }
        }
        else
        {
            // A stored m×k: row r of the block becomes column r of the micro-panel.
            PackTransposed(a + row0 * lda + q0, lda, rows, kc, panel, mr);
        }
    }

    /// <summary>
    /// Packs op(B)[pc..pc+kc, jc..jc+nc] as consecutive NR-column micro-panels; micro-panel j holds, for
    /// each p, the NR values op(B)[pc+p, jc+j·NR ..] contiguously. Columns past nc are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(in Problem p, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        // Rows below K come from B, the rest from B2 (MultiplyConcat).
        int k1 = Math.Clamp(p.K - pc, 0, kc);
        for (int jr = 0; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr);
            float* panel = dst + (nint)jr * kc;
            if (k1 > 0) PackBPanel(p.B, p.Ldb, p.TransB, jc + jr, cols, pc, k1, nr, panel);
            if (k1 < kc) PackBPanel(p.B2, p.Ldb2, p.TransB, jc + jr, cols, pc + k1 - p.K, kc - k1, nr, panel + (nint)k1 * nr);
        }
    }

    /// <summary>One micro-panel: op(B)[q0 .. q0+kc, col0 .. col0+cols] into panel[q·nr + j], columns past <paramref name="cols"/> zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackBPanel(float* b, nint ldb, bool transB, int col0, int cols, int q0, int kc, int nr, float* panel)
    {
        if (!transB)
        {
            // B stored k×n: each row segment of NR values is contiguous.
            float* src = b + (nint)q0 * ldb + col0;
            if (cols == nr && nr == 32 && Vector512.IsHardwareAccelerated)
            {
                for (int q = 0; q < kc; q++, src += ldb, panel += 32)
                {
                    Vector512.Store(Vector512.Load(src), panel);
                    Vector512.Store(Vector512.Load(src + 16), panel + 16);
                }
            }
            else if (cols == nr && nr == 16 && Vector256.IsHardwareAccelerated)
            {
                for (int q = 0; q < kc; q++, src += ldb, panel += 16)
                {
                    Vector256.Store(Vector256.Load(src), panel);
                    Vector256.Store(Vector256.Load(src + 8), panel + 8);
                }
            }
            else
            {
                for (int q = 0; q < kc; q++, src += ldb, panel += nr)
                {
                    int j = 0;
                    for (; j < cols; j++) panel[j] = src[j];
                    for (; j < nr; j++) panel[j] = 0f;
                }
            }
        }
        else
        {
            // B stored n×k: row j of op(B)ᵀ becomes column j of the micro-panel.
            PackTransposed(b + col0 * ldb + q0, ldb, cols, kc, panel, nr);
        }
    }

    /// <summary>
    /// dst[q·width + r] = src[r·ld + q] for r &lt; rows, q &lt; kc; columns rows..width-1 are zeroed.
    /// Full groups of 8 rows go through an in-register 8×8 transpose (AVX), which turns 64 strided
    /// scalar stores into 8 vector stores; this matters for x·Wᵀ (transB) and ordinary row-major A.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackTransposed(float* src, nint ld, int rows, int kc, float* dst, int width)
    {
        int r0 = 0;
        if (Avx.IsSupported)
        {
            for (; r0 + 8 <= rows; r0 += 8)
            {
                float* s = src + r0 * ld;
                float* d = dst + r0;
                int q = 0;
                for (; q + 8 <= kc; q += 8) Transpose8x8(s + q, ld, d + (nint)q * width, width);
                for (; q < kc; q++)
                    for (int r = 0; r < 8; r++) d[(nint)q * width + r] = s[r * ld + q];
            }
        }

        for (int r = r0; r < rows; r++)
        {
            float* s = src + r * ld;
            float* d = dst + r;
            int q = 0;
            for (; q + 4 <= kc; q += 4, d += 4 * width)
            {
                d[0] = s[q]; d[width] = s[q + 1]; d[2 * width] = s[q + 2]; d[3 * width] = s[q + 3];
            }
            for (; q < kc; q++, d += width) *d = s[q];
        }

        for (int r = rows; r < width; r++)
        {
            float* d = dst + r;
            for (int q = 0; q < kc; q++, d += width) *d = 0f;
        }
    }

    /// <summary>Transposes the 8×8 block at <paramref name="src"/> (row stride <paramref name="ld"/>) into
    /// <paramref name="dst"/> (row stride <paramref name="ldd"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(float* src, nint ld, float* dst, nint ldd)
    {
        Vector256<float> r0 = Avx.LoadVector256(src), r1 = Avx.LoadVector256(src + ld);
        Vector256<float> r2 = Avx.LoadVector256(src + 2 * ld), r3 = Avx.LoadVector256(src + 3 * ld);
        Vector256<float> r4 = Avx.LoadVector256(src + 4 * ld), r5 = Avx.LoadVector256(src + 5 * ld);
        Vector256<float> r6 = Avx.LoadVector256(src + 6 * ld), r7 = Avx.LoadVector256(src + 7 * ld);

        // Interleave pairs of rows, then pairs of pairs, then swap 128-bit halves.
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);

        Vector256<float> s0 = Avx.Shuffle(t0, t2, 0x44), s1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> s2 = Avx.Shuffle(t1, t3, 0x44), s3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> s4 = Avx.Shuffle(t4, t6, 0x44), s5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> s6 = Avx.Shuffle(t5, t7, 0x44), s7 = Avx.Shuffle(t5, t7, 0xEE);

        Avx.Store(dst, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(s3, s7, 0x31));
    }

    /// <summary>
    /// Per-thread packing buffers, 64-byte aligned, on the pinned object heap (so they are reclaimed with
    /// the thread). They grow geometrically to the largest request seen (at most MC×(KC + KcSlack) and
    /// NC×(KC + KcSlack) floats, ~0.7 MiB in all, or up to 8 MiB of A for <see cref="RunSerialSlab"/>) and are
    /// reused, so steady-state calls allocate nothing.
    /// </summary>
    private readonly struct PackBuffers
    {
        [ThreadStatic] private static float[]? t_a;
        [ThreadStatic] private static float[]? t_b;

        public readonly float* A;
        public readonly float* B;

        private PackBuffers(float* a, float* b) { A = a; B = b; }

        public static PackBuffers ForCurrentThread(int aFloats, int bFloats, int aMax = MC * KcMax)
        {
            return new PackBuffers(Align(ref t_a, aFloats, aMax), Align(ref t_b, bFloats, NC * KcMax));
        }

        private static float* Align(ref float[]? array, int need, int max)
        {
            const int slack = 16; // room to align the start to 64 bytes
            if (array is null || array.Length < need + slack)
            {
                int size = Math.Max(need, Math.Min(max, 2 * (array?.Length ?? 0)));
                array = GC.AllocateUninitializedArray<float>(size + slack, pinned: true);
            }
            return Align(array);
        }

        private static float* Align(float[] array)
        {
            nint addr = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
            return (float*)((addr + 63) & ~(nint)63);
        }
    }
}
