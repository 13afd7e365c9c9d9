using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// Rotary position embedding (LLaMA / Hugging Face "rotate-half" convention) of x [B, T, D], D = heads·headDim,
    /// headDim even. Within each head slice c (half = headDim/2), position t gets angles
    /// a_j = (t + <paramref name="positionOffset"/>)·θ^(−2(j mod half)/headDim) and
    /// out = c·cos a + (−c[half..], c[..half])·sin a. The cos/sin tables are computed once per device, headDim and
    /// θ and reused.
    /// </summary>
    public static Tensor Rope(Tensor x, int heads, float theta = 10000f, int positionOffset = 0)
    {
        if (x.Rank != 3)
            throw new ArgumentException($"Rope: expects x of shape [B, T, D], got {x.ShapeText}.", nameof(x));
        int B = x.Dim(0), T = x.Dim(1), D = x.Dim(2);
        if (heads <= 0 || D % heads != 0 || D / heads % 2 != 0)
            throw new ArgumentException($"Rope: width {D} of {x.ShapeText} must split into {heads} heads of even size.", nameof(heads));
        if (positionOffset < 0)
            throw new ArgumentOutOfRangeException(nameof(positionOffset), $"Rope: position offset {positionOffset} is negative.");
        if (!(theta > 0f) || float.IsInfinity(theta))
            throw new ArgumentOutOfRangeException(nameof(theta), $"Rope: theta must be positive and finite, got {theta}.");
        var hd = D / heads;
        x = Contiguous(x);
        var y = Tensor.Empty(x.Device, [B, T, D]);
        if (y.Length == 0) return y;
        var (cos, sin) = RopeTables.Get(x.Device, hd, theta, T + positionOffset);
        var be = x.Device.Backend;
        be.Rope(x, y, cos, sin, B, T, heads, hd, positionOffset, inverse: false, accumulate: false);
        if (Graph.Needs(x))
            Graph.Record("Rope", y, [x], gy =>
            {
                // The rotation is orthogonal: its adjoint is the rotation by −a.
                var (gx, acc) = Graph.GradSlot(x);
                be.Rope(gy, gx, cos, sin, B, T, heads, hd, positionOffset, inverse: true, accumulate: acc);
            });
        return y;
    }

    /// <summary>Cached cos/sin tables [positions, headDim/2], outside any memory scope so they outlive steps.</summary>
    private static class RopeTables
    {
        private sealed record Entry(int Positions, Tensor Cos, Tensor Sin);

        private static readonly Dictionary<(Device, int, float), Entry> Cache = new();
        private static readonly Lock Gate = new();

        public static (Tensor cos, Tensor sin) Get(Device device, int headDim, float theta, int positions)
        {
            var key = (device, headDim, theta);
            lock (Gate)
            {
                if (Cache.TryGetValue(key, out var e) && e.Positions >= positions) return (e.Cos, e.Sin);
                // Grow geometrically so a slowly increasing offset (generation) rebuilds rarely.
                var n = Math.Max(positions, e == null ? positions : 2 * e.Positions);
                var half = headDim / 2;
                var c = new float[n * half];
                var s = new float[n * half];
                for (var j = 0; j < half; j++)
                {
                    // Angles in double: float32 t·freq loses digits at large positions.
                    var freq = Math.Pow(theta, -2.0 * j / headDim);
                    for (var t = 0; t < n; t++)
                    {
                        var a = t * freq;
                        c[t * half + j] = (float)Math.Cos(a);
                        s[t * half + j] = (float)Math.Sin(a);
                    }
                }
                var cos = Tensor.EmptyIn(device, [n, half], null);
                var sin = Tensor.EmptyIn(device, [n, half], null);
                device.Backend.Upload(cos, c);
                device.Backend.Upload(sin, s);
                Cache[key] = e = new Entry(n, cos, sin);
                return (e.Cos, e.Sin);
            }
        }
    }
}
