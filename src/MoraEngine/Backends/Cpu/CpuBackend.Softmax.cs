using System.Buffers;
using System.Numerics.Tensors;

namespace MoraEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    // ---------------------------------------------------------------- Softmax

    public void Softmax(Tensor x, Tensor y, int rows, int d, bool log)
    {
        float[] X = x.CpuArray, Y = y.CpuArray;
        int xo = x.Offset, yo = y.Offset;
        CpuParallel.For(rows, RowsPerPiece(d), (r0, r1) =>
        {
            for (var r = r0; r < r1; r++)
            {
                ReadOnlySpan<float> xr = X.AsSpan(xo + r * d, d);
                var yr = Y.AsSpan(yo + r * d, d);
                var max = Simd.Max(xr);
                Simd.Subtract(xr, max, yr);
                Simd.Exp(yr, yr);
                var sum = Simd.Sum(yr);
                if (log)
                {
                    // x − max − log Σ exp(x − max): exact for the largest entries, no log of a tiny probability.
                    Simd.Subtract(xr, max + MathF.Log(sum), yr);
                }
                else
                {
                    Simd.Multiply(yr, 1f / sum, yr);
                }
            }
        });
    }

    public void SoftmaxBackward(Tensor y, Tensor gy, Tensor gx, int rows, int d, bool log, bool accumulate)
    {
        float[] Y = y.CpuArray, G = gy.CpuArray, GX = gx.CpuArray;
        int yo = y.Offset, go = gy.Offset, gxo = gx.Offset;
        CpuParallel.For(rows, RowsPerPiece(d), (r0, r1) =>
        {
            var scratch = accumulate ? ArrayPool<float>.Shared.Rent(d) : null;
            try
            {
                for (var r = r0; r < r1; r++)
                {
                    ReadOnlySpan<float> yr = Y.AsSpan(yo + r * d, d);
                    ReadOnlySpan<float> g = G.AsSpan(go + r * d, d);
                    var o = GX.AsSpan(gxo + r * d, d);
                    var t = scratch == null ? o : scratch.AsSpan(0, d);
                    if (log)
                    {
                        // gy − softmax·Σ gy
                        var s = Simd.Sum(g);
                        Simd.Exp(yr, t);
                        Simd.MultiplyAdd(t, -s, g, t);
                    }
                    else
                    {
                        // y·(gy − Σ gy·y)
                        var dot = Simd.Dot(g, yr);
                        Simd.Subtract(g, dot, t);
                        Simd.Multiply(t, yr, t);
                    }
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
