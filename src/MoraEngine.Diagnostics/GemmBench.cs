using System.Diagnostics;
using MoraEngine.Backends.Cpu;

namespace MoraEngine.Diagnostics;

/// <summary>Quick SGEMM throughput probe used by the CLI (<c>mora bench gemm --size N</c>).</summary>
internal static class GemmBench
{
    /// <summary>
    /// Multiplies two random <paramref name="size"/>×<paramref name="size"/> matrices with
    /// <see cref="Sgemm.Multiply(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>
    /// and returns the best GFLOP/s (2·n³ / seconds) over <paramref name="repeats"/> timed runs, after a
    /// warm-up that JIT-compiles the kernels and allocates the packing buffers. Each timed run repeats
    /// the multiply enough times to last at least ~50 ms, so small sizes are not timer-bound.
    /// Best-of rather than mean because other processes on a small machine only ever slow a run down.
    /// </summary>
    public static double MeasureGflops(int size, int repeats)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(repeats);

        var rng = new Random(12345);
        var a = new float[(long)size * size];
        var b = new float[(long)size * size];
        var c = new float[(long)size * size];
        for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
        for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble() - 0.5f;

        double flops = 2.0 * size * size * size;
        // Warm-up: tier-up the JIT (several calls) and size the calibration.
        long t0 = Stopwatch.GetTimestamp();
        int warm = 0;
        do
        {
            Sgemm.Multiply(false, false, size, size, size, 1f, a, size, b, size, 0f, c, size);
            warm++;
        } while (warm < 3 || (warm < 1000 && Stopwatch.GetElapsedTime(t0).TotalSeconds < 0.2));
        double perCall = Stopwatch.GetElapsedTime(t0).TotalSeconds / warm;
        int inner = (int)Math.Clamp(0.05 / Math.Max(perCall, 1e-9), 1, 100_000);

        double best = 0;
        for (int r = 0; r < repeats; r++)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < inner; i++)
                Sgemm.Multiply(false, false, size, size, size, 1f, a, size, b, size, 0f, c, size);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds / inner;
            best = Math.Max(best, flops / seconds / 1e9);
        }
        return best;
    }
}
