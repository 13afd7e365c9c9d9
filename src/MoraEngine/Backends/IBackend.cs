namespace MoraEngine.Backends;

/// <summary>
/// The raw kernels of a device. No autodiff and no shape checks here: ops (<c>Ops/</c>) validate shapes once and
/// record backward; backends trust their inputs. Tensors passed in are contiguous unless a parameter says
/// otherwise; kernels address them through <c>Offset</c> and <c>Length</c>.
/// The interface is split by op family into partial files (<c>IBackend.*.cs</c>), each next to its CPU kernels.
/// </summary>
public partial interface IBackend
{
    /// <summary>Human-readable backend name.</summary>
    string Name { get; }

    /// <summary>New device memory of <paramref name="length"/> floats (contents undefined).</summary>
    Storage Allocate(Device device, int length);

    /// <summary>Host → device copy into a contiguous tensor.</summary>
    void Upload(Tensor dst, ReadOnlySpan<float> src);

    /// <summary>Device → host copy of a contiguous tensor.</summary>
    void Download(Tensor src, Span<float> dst);

    /// <summary>Sets every element.</summary>
    void Fill(Tensor dst, float value);

    /// <summary>dst = src (same length, both contiguous).</summary>
    void Copy(Tensor src, Tensor dst);

    /// <summary>
    /// Materialises a transposed view: <paramref name="src"/> holds <paramref name="batch"/> row-major
    /// <paramref name="rows"/>×<paramref name="cols"/> matrices; dst receives their transposes (cols×rows each).
    /// </summary>
    void Transpose(Tensor src, Tensor dst, int batch, int rows, int cols);

    /// <summary>
    /// Batched GEMM: C_i = alpha·op(A_i)·op(B_i) + beta·C_i for i &lt; batch, row-major, op(A) m×k, op(B) k×n.
    /// transA: A_i is stored k×m; transB: B_i is stored n×k. Strides are in elements (0 broadcasts one matrix).
    /// beta = 0 ignores C's contents.
    /// </summary>
    void Gemm(int batch, int m, int n, int k, float alpha,
        Tensor a, bool transA, long strideA,
        Tensor b, bool transB, long strideB,
        float beta, Tensor c, long strideC);
}
