namespace MoraEngine.Backends;

/// <summary>LoRA's backward products (<see cref="Ops.LinearLora"/>, <see cref="Ops.LoraDelta(Tensor, Tensor, Tensor, float, Tensor)"/>).</summary>
public partial interface IBackend
{
    /// <summary>
    /// A LoRA layer's rank-r gradients from its output gradient gy [rows, out], for A [r, in], B [out, r], the input
    /// x [rows, in] and h [rows, r], the forward's x·Aᵀ (scaled by the adapter's factor or not):
    /// <list type="bullet">
    /// <item>gh = scale·gy·B [rows, r], the gradient reaching x·Aᵀ (for A's and the input's gradients), when
    /// <paramref name="gh"/> is given;</item>
    /// <item>B's gradient gB (+)= hScale·gyᵀ·h [out, r], when <paramref name="gb"/> is given;</item>
    /// <item>A's gradient gA (+)= ghᵀ·x [r, in], when <paramref name="ga"/> is given (it needs gh).</item>
    /// </list>
    /// The default runs them as separate products; a backend may take all three in one pass over the rows, so that
    /// each block of gy is read from memory once.
    /// </summary>
    void LoraGradients(int rows, Tensor gy, Tensor x, Tensor h, float hScale, Tensor b, float scale,
        Tensor? gh, Tensor? gb, bool accumulateB, Tensor? ga, bool accumulateA) =>
        LoraGradientsSeparately(this, rows, gy, x, h, hScale, b, scale, gh, gb, accumulateB, ga, accumulateA);

    /// <summary>Throws unless the operands of <see cref="LoraGradients"/> have the sizes rows, B [out, r] and A's gradient [r, in] imply.</summary>
    internal static void CheckLoraGradients(int rows, Tensor gy, Tensor x, Tensor h, Tensor b, Tensor? gh, Tensor? gb, Tensor? ga)
    {
        if (b.Rank != 2) throw new ArgumentException($"LoraGradients: B must be [out, r], got {b.ShapeText}.");
        if (ga != null && gh == null) throw new ArgumentException("LoraGradients: A's gradient needs gh.");
        int outF = b.Dim(0), r = b.Dim(1);
        if (rows < 0) throw new ArgumentException($"LoraGradients: rows must be ≥ 0, got {rows}.");
        void Size(Tensor t, long want, string what)
        {
            if (t.Length != want) throw new ArgumentException($"LoraGradients: {what} {t.ShapeText} should hold {want} values for {rows} rows, out {outF}, r {r}.");
        }
        Size(gy, (long)rows * outF, "gy");
        Size(h, (long)rows * r, "h");
        if (gh != null) Size(gh, (long)rows * r, "gh");
        if (gb != null) Size(gb, (long)outF * r, "B's gradient");
        if (ga == null) return;
        if (ga.Rank != 2 || ga.Dim(0) != r) throw new ArgumentException($"LoraGradients: A's gradient must be [{r}, in], got {ga.ShapeText}.");
        Size(x, (long)rows * ga.Dim(1), "x");
    }

    /// <summary><see cref="LoraGradients"/> as up to three products (B transposed into scratch for gy·B).</summary>
    internal static void LoraGradientsSeparately(IBackend be, int rows, Tensor gy, Tensor x, Tensor h, float hScale, Tensor b,
        float scale, Tensor? gh, Tensor? gb, bool accumulateB, Tensor? ga, bool accumulateA)
    {
        CheckLoraGradients(rows, gy, x, h, b, gh, gb, ga);
        int outF = b.Dim(0), r = b.Dim(1);
        if (gb != null) be.Gemm(1, outF, r, rows, hScale, gy, true, 0, h, false, 0, accumulateB ? 1f : 0f, gb, 0);
        if (gh == null) return;
        // gy·B through Bᵀ [r, out] stored row by row: r dot products per token, one pass over gy.
        var bT = Tensor.EmptyIn(gy.Device, [r, outF], MemoryScope.Current);
        be.Transpose(b, bT, 1, outF, r);
        be.Gemm(1, rows, r, outF, scale, gy, false, 0, bT, true, 0, 0f, gh, 0);
        if (ga != null)
        {
            int inF = ga.Dim(1);
            be.Gemm(1, r, inF, rows, 1f, gh, true, 0, x, false, 0, accumulateA ? 1f : 0f, ga, 0);
        }
    }
}
