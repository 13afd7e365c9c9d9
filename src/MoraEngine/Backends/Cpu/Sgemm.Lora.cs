using System.Numerics.Tensors;

namespace MoraEngine.Backends.Cpu;

internal static unsafe partial class Sgemm
{
    /// <summary>Rows of gy that one step of <see cref="LoraGradients"/> takes through all three products (≤ 1 MiB of gy at out = 1,024).</summary>
    private const int LoraBlockRows = 256;

    /// <summary>Rows per part of <see cref="LoraGradients"/>: each part sums its own partial gradients.</summary>
    private const int LoraPartRows = 512;

    /// <summary>Parts <see cref="LoraGradients"/> splits <paramref name="rows"/> into: a function of the rows only, so the result does not depend on the core count.</summary>
    internal static int LoraParts(int rows) => Math.Clamp((rows + LoraPartRows - 1) / LoraPartRows, 1, 64);

    /// <summary>Floats of scratch <see cref="LoraGradients"/> needs: one partial gBᵀ [r, out] and gA [r, in] per part.</summary>
    internal static long LoraScratch(int rows, int r, int outF, int inF) => (long)LoraParts(rows) * r * (outF + inF);

    /// <summary>
    /// LoRA's backward products in one pass over the rows (see <see cref="IBackend.LoraGradients"/>): for each block
    /// of <see cref="LoraBlockRows"/> rows, gh_blk = scale·gy_blk·Bᵀᵀ, then gBᵀ += h_blkᵀ·gy_blk and gA += gh_blkᵀ·x_blk
    /// while gy_blk and gh_blk are still in L2. Run as three whole products, gy is streamed from memory twice and every
    /// core reads a strip of every row; here each core reads whole rows, once. Parts (<see cref="LoraParts"/>) go over
    /// the cores in contiguous runs and sum their own partials, which are added in part order at the end.
    /// <para>bT is Bᵀ [r, out]; gb [out, r] = hScale·gyᵀ·h + betaB·gb; ga [r, in] = ghᵀ·x + betaA·ga, or null to skip
    /// it (then x is not read); scratch holds <see cref="LoraScratch"/> floats.</para>
    /// </summary>
    internal static void LoraGradients(Isa isa, int rows, int outF, int inF, int r, float scale, float hScale,
        float* gy, float* h, float* bT, float* x, float* gh, float* gb, float betaB, float* ga, float betaA, float* scratch)
    {
        if (!IsSupported(isa)) throw new PlatformNotSupportedException($"GEMM kernel {isa} is not supported on this CPU.");
        int parts = LoraParts(rows);
        var ctx = new LoraContext
        {
            Isa = isa, Rows = rows, Out = outF, In = inF, R = r, Parts = parts, Scale = scale,
            Gy = gy, H = h, BT = bT, X = x, Gh = gh, NeedA = ga != null,
            PartB = scratch, PartA = scratch + (long)parts * r * outF,
        };
        if (parts == 1) LoraPart(&ctx, 0);
        else
        {
            ctx.Runs = Math.Min(parts, CpuThreadPool.Parallelism);
            CpuThreadPool.For(ctx.Runs, &LoraRun, &ctx);
        }

        // Partials in part order: part 0 += part 1, += part 2, …
        int nb = r * outF, na = r * inF;
        var sumB = new Span<float>(ctx.PartB, nb);
        for (int q = 1; q < parts; q++) TensorPrimitives.Add(sumB, new ReadOnlySpan<float>(ctx.PartB + (long)q * nb, nb), sumB);
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < r; i++)
            {
                float v = hScale * sumB[i * outF + o];
                gb[o * r + i] = betaB == 0f ? v : MathF.FusedMultiplyAdd(betaB, gb[o * r + i], v);
            }
        if (ga == null) return;
        var sumA = new Span<float>(ctx.PartA, na);
        for (int q = 1; q < parts; q++) TensorPrimitives.Add(sumA, new ReadOnlySpan<float>(ctx.PartA + (long)q * na, na), sumA);
        var gaSpan = new Span<float>(ga, na);
        if (betaA == 0f) sumA.CopyTo(gaSpan);
        else TensorPrimitives.MultiplyAdd(gaSpan, betaA, sumA, gaSpan);
    }

    /// <summary>
    /// Core <paramref name="run"/>'s contiguous run of parts, in order. The input gradient's product that follows
    /// splits the rows in contiguous halves too, so each core finds the rows of gy it packs where it just read them
    /// (taking parts round-robin left half of them in the other core's L2). The parts, and the bits, are the same.
    /// </summary>
    private static void LoraRun(void* context, int run)
    {
        var c = (LoraContext*)context;
        int q0 = (int)((long)c->Parts * run / c->Runs), q1 = (int)((long)c->Parts * (run + 1) / c->Runs);
        for (int q = q0; q < q1; q++) LoraPart(context, q);
    }

    private struct LoraContext
    {
        public Isa Isa;
        public int Rows, Out, In, R, Parts, Runs;
        public float Scale;
        public float* Gy, H, BT, X, Gh, PartB, PartA;
        public bool NeedA;
    }

    private static void LoraPart(void* context, int part)
    {
        var c = (LoraContext*)context;
        int lo = (int)((long)c->Rows * part / c->Parts), hi = (int)((long)c->Rows * (part + 1) / c->Parts);
        int r = c->R, outF = c->Out, inF = c->In;
        float* partB = c->PartB + (long)part * r * outF, partA = c->PartA + (long)part * r * inF;
        for (int b0 = lo; b0 < hi; b0 += LoraBlockRows)
        {
            int nb = Math.Min(LoraBlockRows, hi - b0);
            float beta = b0 == lo ? 0f : 1f;
            float* gy = c->Gy + (long)b0 * outF, gh = c->Gh + (long)b0 * r;
            Multiply(c->Isa, false, true, nb, r, outF, c->Scale, new ReadOnlySpan<float>(gy, nb * outF), outF,
                new ReadOnlySpan<float>(c->BT, r * outF), outF, 0f, new Span<float>(gh, nb * r), r);
            FewRowsTn(c->Isa, r, outF, nb, c->H + (long)b0 * r, r, gy, outF, beta, partB);
            if (c->NeedA) FewRowsTn(c->Isa, r, inF, nb, gh, r, c->X + (long)b0 * inF, inF, beta, partA);
        }
    }

    /// <summary>C [m, n] = Aᵀ·B + beta·C for A stored k×m and B stored k×n, m ≤ 16: the in-place path at any depth.</summary>
    private static void FewRowsTn(Isa isa, int m, int n, int k, float* a, int lda, float* b, int ldb, float beta, float* c)
    {
        if (isa == Isa.Avx512 && m <= SmallTnFewRows)
        {
            var p = new Problem(isa, true, false, m, n, k, 1f, a, lda, b, ldb, beta, c, n);
            RunSmallTn(&p);
        }
        else
            Multiply(isa, true, false, m, n, k, 1f, new ReadOnlySpan<float>(a, k * lda), lda, new ReadOnlySpan<float>(b, k * ldb), ldb,
                beta, new Span<float>(c, m * n), n);
    }
}
