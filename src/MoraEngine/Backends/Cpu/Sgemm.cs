namespace MoraEngine.Backends.Cpu;

/// <summary>Row-major single-precision GEMM (simple reference form).</summary>
internal static class Sgemm
{
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        for (var i = 0; i < m; i++)
        {
            for (var j = 0; j < n; j++)
            {
                var s = 0f;
                for (var p = 0; p < k; p++)
                {
                    var av = transA ? a[p * lda + i] : a[i * lda + p];
                    var bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    s += av * bv;
                }
                c[i * ldc + j] = beta == 0 ? alpha * s : alpha * s + beta * c[i * ldc + j];
            }
        }
    }

    public static void MultiplyBatched(int batch, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, long strideA, ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC)
    {
        for (var i = 0; i < batch; i++)
            Multiply(transA, transB, m, n, k, alpha, a[(int)(i * strideA)..], lda, b[(int)(i * strideB)..], ldb, beta, c[(int)(i * strideC)..], ldc);
    }
}
