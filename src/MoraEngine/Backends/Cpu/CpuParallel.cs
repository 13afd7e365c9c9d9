using System.Runtime.CompilerServices;

namespace MoraEngine.Backends.Cpu;

/// <summary>
/// Splits index ranges over the cores on the persistent <see cref="CpuThreadPool"/>. Work below a grain size runs
/// inline: on a two-core machine the cost of waking a worker (a few microseconds) dominates small kernels.
/// </summary>
internal static unsafe class CpuParallel
{
    /// <summary>Participants in a parallel region (workers plus the caller).</summary>
    public static int Workers => CpuThreadPool.Parallelism;

    private struct Region
    {
        public Action<int, int> Body;
        public int Count;
        public int Chunks;
    }

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
        var region = new Region { Body = body, Count = count, Chunks = chunks };
        // The region lives on this stack frame until For returns, so handing its address to the workers is safe.
        CpuThreadPool.For(chunks, &RunChunk, Unsafe.AsPointer(ref region));
        // Workers reach the delegate only through the raw pointer: keep it reachable until they are done.
        GC.KeepAlive(region.Body);
    }

    private static void RunChunk(void* context, int c)
    {
        ref var r = ref Unsafe.AsRef<Region>(context);
        var start = (int)((long)r.Count * c / r.Chunks);
        var end = (int)((long)r.Count * (c + 1) / r.Chunks);
        r.Body(start, end);
    }
}
