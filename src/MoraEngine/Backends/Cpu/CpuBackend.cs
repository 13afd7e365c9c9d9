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
        var s = src.CpuArray;
        var d = dst.CpuArray;
        int so = src.Offset, dOff = dst.Offset;
        const int Block = 32;
        for (var bi = 0; bi < batch; bi++)
        {
            var sb = so + bi * rows * cols;
            var db = dOff + bi * rows * cols;
            for (var r0 = 0; r0 < rows; r0 += Block)
                for (var c0 = 0; c0 < cols; c0 += Block)
                {
                    var r1 = Math.Min(rows, r0 + Block);
                    var c1 = Math.Min(cols, c0 + Block);
                    for (var r = r0; r < r1; r++)
                        for (var c = c0; c < c1; c++)
                            d[db + c * rows + r] = s[sb + r * cols + c];
                }
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
