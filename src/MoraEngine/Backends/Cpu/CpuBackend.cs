namespace MoraEngine.Backends.Cpu;

/// <summary>
/// The managed CPU backend: SIMD through <see cref="System.Numerics.Tensors.TensorPrimitives"/> and hand-written
/// <c>Vector512</c>/<c>Vector256</c> loops, a packed multi-threaded SGEMM, work split over the cores.
/// One partial file per op family (<c>CpuBackend.*.cs</c>).
/// </summary>
public sealed partial class CpuBackend : IBackend
{
    public string Name => "cpu";

    public Storage Allocate(Device device, int length) => new CpuStorage(device, GC.AllocateUninitializedArray<float>(length));

    /// <summary>A one-line description: managed SIMD kernels on the machine's cores.</summary>
    public string Describe() => $"managed SIMD backend, {Environment.ProcessorCount} cores";

    public void Upload(Tensor dst, ReadOnlySpan<float> src) => src.CopyTo(dst.Span);

    public void Download(Tensor src, Span<float> dst) => src.Span.CopyTo(dst);

    public void Fill(Tensor dst, float value) => dst.Span.Fill(value);

    public void Copy(Tensor src, Tensor dst) => src.Span.CopyTo(dst.Span);

    public void Transpose(Tensor src, Tensor dst, int batch, int rows, int cols)
    {
        if (batch <= 0 || rows <= 0 || cols <= 0) return;
        float[] s = src.CpuArray, d = dst.CpuArray;
        int so = src.Offset, dOff = dst.Offset;
        // Bands of 32 rows, split over the cores; each band goes through in 8 × 8 register tiles.
        var bands = (rows + TransposeBand - 1) / TransposeBand;
        CpuParallel.For(batch * bands, Math.Max(1, (1 << 15) / (TransposeBand * cols)), (p0, p1) =>
        {
            for (var p = p0; p < p1; p++)
            {
                int bi = p / bands, r0 = p % bands * TransposeBand;
                TransposeBandOf(s, so + bi * rows * cols, d, dOff + bi * rows * cols, rows, cols, r0, Math.Min(rows, r0 + TransposeBand));
            }
        });
    }

    private const int TransposeBand = 32;

    /// <summary>Rows [r0, r1) of one rows × cols matrix into its transpose (cols × rows).</summary>
    private static unsafe void TransposeBandOf(float[] s, int so, float[] d, int dOff, int rows, int cols, int r0, int r1)
    {
        fixed (float* ps0 = s, pd0 = d)
        {
            float* ps = ps0 + so, pd = pd0 + dOff;
            var r = r0;
            if (System.Runtime.Intrinsics.X86.Avx.IsSupported)
                for (; r + 8 <= r1; r += 8)
                {
                    var c = 0;
                    for (; c + 8 <= cols; c += 8) Sgemm.Transpose8x8(ps + (nint)r * cols + c, cols, pd + (nint)c * rows + r, rows);
                    for (; c < cols; c++)
                        for (var q = r; q < r + 8; q++) pd[(nint)c * rows + q] = ps[(nint)q * cols + c];
                }
            for (; r < r1; r++)
                for (var c = 0; c < cols; c++) pd[(nint)c * rows + r] = ps[(nint)r * cols + c];
        }
    }

    public void Gemm(int batch, int m, int n, int k, float alpha,
        Tensor a, bool transA, long strideA,
        Tensor b, bool transB, long strideB,
        float beta, Tensor c, long strideC)
    {
        var lda = transA ? m : k;
        var ldb = transB ? k : n;
        var aSpan = a.CpuArray.AsSpan(a.Offset);
        var bSpan = b.CpuArray.AsSpan(b.Offset);
        var cSpan = c.CpuArray.AsSpan(c.Offset);
        if (batch == 1)
            Sgemm.Multiply(transA, transB, m, n, k, alpha, aSpan, lda, bSpan, ldb, beta, cSpan, n);
        else
            Sgemm.MultiplyBatched(batch, transA, transB, m, n, k, alpha, aSpan, lda, strideA, bSpan, ldb, strideB, beta, cSpan, n, strideC);
    }

    public void GemmConcat(int m, int n, int k, float alpha, Tensor a, bool transA, Tensor b, bool transB,
        int k2, Tensor a2, Tensor b2, float beta, Tensor c) =>
        Sgemm.MultiplyConcat(transA, transB, m, n, k, alpha, a.CpuArray.AsSpan(a.Offset), transA ? m : k, b.CpuArray.AsSpan(b.Offset), transB ? k : n,
            k2, a2.CpuArray.AsSpan(a2.Offset), transA ? m : k2, b2.CpuArray.AsSpan(b2.Offset), transB ? k2 : n, beta, c.CpuArray.AsSpan(c.Offset), n);
}
