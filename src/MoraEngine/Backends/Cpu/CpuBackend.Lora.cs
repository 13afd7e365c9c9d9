namespace MoraEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <summary>
    /// All three products in one pass over gy's rows (<see cref="Sgemm.LoraGradients"/>) when gh and B's gradient are
    /// both wanted; otherwise the separate products.
    /// </summary>
    public unsafe void LoraGradients(int rows, Tensor gy, Tensor x, Tensor h, float hScale, Tensor b, float scale,
        Tensor? gh, Tensor? gb, bool accumulateB, Tensor? ga, bool accumulateA)
    {
        IBackend.CheckLoraGradients(rows, gy, x, h, b, gh, gb, ga);
        if (gh == null || gb == null || rows == 0)
        {
            IBackend.LoraGradientsSeparately(this, rows, gy, x, h, hScale, b, scale, gh, gb, accumulateB, ga, accumulateA);
            return;
        }
        int outF = b.Dim(0), r = b.Dim(1), inF = ga?.Dim(1) ?? 0;
        var bT = Tensor.EmptyIn(gy.Device, [r, outF], MemoryScope.Current);
        Transpose(b, bT, 1, outF, r);
        var scratch = Tensor.EmptyIn(gy.Device, [checked((int)Sgemm.LoraScratch(rows, r, outF, inF))], MemoryScope.Current);
        fixed (float* pgy = gy.CpuArray, px = x.CpuArray, ph = h.CpuArray, pbT = bT.CpuArray, pgh = gh.CpuArray, pgb = gb.CpuArray, ps = scratch.CpuArray)
        fixed (float* pga = ga?.CpuArray)
        {
            Sgemm.LoraGradients(Sgemm.ActiveIsa, rows, outF, inF, r, scale, hScale,
                pgy + gy.Offset, ph + h.Offset, pbT + bT.Offset, px + x.Offset, pgh + gh.Offset,
                pgb + gb.Offset, accumulateB ? 1f : 0f, ga == null ? null : pga + ga.Offset, accumulateA ? 1f : 0f, ps + scratch.Offset);
        }
    }
}
