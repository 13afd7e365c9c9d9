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

    /// <summary>
    /// New device memory for several tensors at once, one storage per length (contents undefined). A backend may
    /// place them in one buffer (the ILGPU backend does: an arena, which lets an optimizer update all parameters in
    /// one kernel); the default allocates them one by one.
    /// </summary>
    Storage[] AllocateMany(Device device, IReadOnlyList<int> lengths)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        var storages = new Storage[lengths.Count];
        for (var i = 0; i < storages.Length; i++) storages[i] = Allocate(device, lengths[i]);
        return storages;
    }

    /// <summary>Waits until every queued kernel has finished (timing, benchmarks). The default does nothing: the
    /// kernels of a synchronous backend have finished when they return.</summary>
    void Synchronize()
    {
    }

    /// <summary>A one-line description of the hardware behind the backend (GPU name, memory, multiprocessors).</summary>
    string Describe() => Name;

    /// <summary>
    /// Lays out the optimizer state of <paramref name="parameters"/> for single-kernel updates when the backend can
    /// (see <see cref="IFusedParameterGroup"/>); null otherwise (the default), and the optimizer runs the
    /// per-parameter kernels.
    /// </summary>
    internal IFusedParameterGroup? TryCreateFusedGroup(IReadOnlyList<Tensor> parameters) => null;

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

    /// <summary>
    /// C = alpha·(op(A)·op(B) + op(A2)·op(B2)) + beta·C: a second product that continues the first along K (op(A2)
    /// m×k2, op(B2) k2×n, the same transposes), e.g. a LoRA update joining its layer's product. A backend that fuses
    /// it reads and writes C once; the default runs two products.
    /// </summary>
    void GemmConcat(int m, int n, int k, float alpha, Tensor a, bool transA, Tensor b, bool transB,
        int k2, Tensor a2, Tensor b2, float beta, Tensor c)
    {
        Gemm(1, m, n, k, alpha, a, transA, 0, b, transB, 0, beta, c, 0);
        Gemm(1, m, n, k2, alpha, a2, transA, 0, b2, transB, 0, 1f, c, 0);
    }
}
