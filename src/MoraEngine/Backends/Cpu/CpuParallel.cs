namespace MoraEngine.Backends.Cpu;

/// <summary>
/// Splits index ranges over the cores. Work below a grain size runs inline: on a two-core machine the cost of
/// waking a worker (a few microseconds) dominates small kernels.
/// </summary>
internal static class CpuParallel
{
    /// <summary>Worker count (the number of logical processors).</summary>
    public static int Workers { get; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>
    /// Calls <paramref name="body"/>(start, end) over disjoint ranges covering [0, count). Ranges are fixed by
    /// count and worker count only, so results never depend on scheduling.
    /// </summary>
    public static void For(int count, int grain, Action<int, int> body)
    {
        if (count <= 0) return;
        var chunks = Math.Min(Workers, Math.Max(1, count / Math.Max(1, grain)));
        if (chunks <= 1)
        {
            body(0, count);
            return;
        }
        Parallel.For(0, chunks, c =>
        {
            var start = (int)((long)count * c / chunks);
            var end = (int)((long)count * (c + 1) / chunks);
            body(start, end);
        });
    }
}
