using System.Buffers;
using System.Numerics.Tensors;

namespace MoraEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    // ---------------------------------------------------------------- Embedding

    public void Embedding(Tensor weight, int[] ids, Tensor y, int d)
    {
        float[] W = weight.CpuArray, Y = y.CpuArray;
        int wo = weight.Offset, yo = y.Offset;
        CpuParallel.For(ids.Length, RowsPerPiece(d), (i0, i1) =>
        {
            for (var i = i0; i < i1; i++)
                W.AsSpan(wo + ids[i] * d, d).CopyTo(Y.AsSpan(yo + i * d, d));
        });
    }

    public void EmbeddingBackward(Tensor gy, int[] ids, Tensor gweight, int d)
    {
        float[] G = gy.CpuArray, GW = gweight.CpuArray;
        int go = gy.Offset, gwo = gweight.Offset;
        var n = ids.Length;
        // Split the columns, not the ids: a repeated id is then added to by one thread, in index order.
        CpuParallel.For(d, Math.Max(16, RowGrain / Math.Max(1, n)), (c0, c1) =>
        {
            var w = c1 - c0;
            for (var i = 0; i < n; i++)
            {
                var dst = GW.AsSpan(gwo + ids[i] * d + c0, w);
                Simd.Add(dst, G.AsSpan(go + i * d + c0, w), dst);
            }
        });
    }
}
