using System.Buffers;
using System.Numerics.Tensors;

namespace MoraEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    // ---------------------------------------------------------------- CrossEntropy

    private static float RowWeight(int[] targets, float[]? rowWeights, int ignoreIndex, int r) =>
        rowWeights != null ? rowWeights[r] : targets[r] == ignoreIndex ? 0f : 1f;

    public void CrossEntropy(Tensor logits, int[] targets, float[]? rowWeights, int ignoreIndex, float scale,
        Tensor lse, Tensor loss, int rows, int v)
    {
        float[] L = logits.CpuArray, S = lse.CpuArray;
        int lo = logits.Offset, so = lse.Offset;
        CpuParallel.For(rows, RowsPerPiece(v), (r0, r1) =>
        {
            var scratch = ArrayPool<float>.Shared.Rent(v);
            try
            {
                var e = scratch.AsSpan(0, v);
                for (var r = r0; r < r1; r++)
                {
                    if (RowWeight(targets, rowWeights, ignoreIndex, r) == 0f)
                    {
                        S[so + r] = 0f;
                        continue;
                    }
                    ReadOnlySpan<float> xr = L.AsSpan(lo + r * v, v);
                    var max = Simd.Max(xr);
                    Simd.Subtract(xr, max, e);
                    Simd.Exp(e, e);
                    S[so + r] = max + MathF.Log(Simd.Sum(e));
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scratch);
            }
        });
        // One value per row: summed sequentially in row order (cheap, and deterministic).
        double total = 0;
        for (var r = 0; r < rows; r++)
        {
            var w = RowWeight(targets, rowWeights, ignoreIndex, r);
            if (w == 0f) continue;
            total += (double)w * (S[so + r] - L[lo + r * v + targets[r]]);
        }
        loss.Span[0] = (float)(total * scale);
    }

    public void CrossEntropyBackward(Tensor logits, int[] targets, float[]? rowWeights, int ignoreIndex, float scale,
        Tensor lse, Tensor gy, Tensor glogits, bool accumulate, int rows, int v)
    {
        float[] L = logits.CpuArray, S = lse.CpuArray, GL = glogits.CpuArray;
        int lo = logits.Offset, so = lse.Offset, glo = glogits.Offset;
        var g0 = gy.Span[0] * scale;
        CpuParallel.For(rows, RowsPerPiece(v), (r0, r1) =>
        {
            var scratch = accumulate ? ArrayPool<float>.Shared.Rent(v) : null;
            try
            {
                for (var r = r0; r < r1; r++)
                {
                    var o = GL.AsSpan(glo + r * v, v);
                    var c = RowWeight(targets, rowWeights, ignoreIndex, r) * g0;
                    if (c == 0f)
                    {
                        if (!accumulate) o.Clear();
                        continue;
                    }
                    var t = scratch == null ? o : scratch.AsSpan(0, v);
                    // (softmax − onehot)·c, softmax recomputed from the saved log-sum-exp.
                    Simd.Subtract(L.AsSpan(lo + r * v, v), S[so + r], t);
                    Simd.Exp(t, t);
                    Simd.Multiply(t, c, t);
                    t[targets[r]] -= c;
                    if (scratch != null) Simd.Add(o, t, o);
                }
            }
            finally
            {
                if (scratch != null) ArrayPool<float>.Shared.Return(scratch);
            }
        });
    }
}
