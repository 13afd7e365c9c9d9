using System.Runtime.ExceptionServices;

namespace MoraEngine.Backends.Cpu;

/// <summary>
/// A tiny persistent worker pool for compute kernels: <c>Environment.ProcessorCount - 1</c> background
/// threads plus the calling thread, static partitioning, and no allocation per call.
/// </summary>
/// <remarks>
/// Why not <see cref="Parallel.For(int, int, Action{int})"/>: it allocates per call, uses dynamic
/// (work-stealing) scheduling, and cannot take a span or pointer context without a closure. Kernels
/// here want "participant p does chunk p" so that the assignment of output elements to threads is
/// fixed (deterministic results) and each thread keeps its own cache-resident packing buffers.
/// <para>
/// Only one parallel region runs at a time. A call made while the pool is busy (another thread's
/// region, or a nested call from inside a worker) runs all of its chunks inline on the calling thread,
/// which is always correct and never deadlocks.
/// </para>
/// </remarks>
internal static unsafe class CpuThreadPool
{
    private sealed class Worker
    {
        public readonly ManualResetEventSlim Start = new(false, SpinCountBeforeBlocking);
        public Thread? Thread;
    }

    // Spin a little before blocking: GEMM calls arrive back-to-back during training, so a short spin
    // saves the kernel wake-up latency (~10-50 µs) without burning a core between unrelated calls.
    private const int SpinCountBeforeBlocking = 2000;

    private static readonly object Gate = new();
    private static readonly Worker[] Workers;
    private static readonly ManualResetEventSlim Done = new(false, SpinCountBeforeBlocking);

    [ThreadStatic] private static bool t_insideRegion;

    // Current region (valid while Gate is held).
    private static delegate*<void*, int, void> s_body;
    private static void* s_context;
    private static int s_chunks;
    private static int s_participants;
    private static int s_pending;
    private static Exception? s_error;

    static CpuThreadPool()
    {
        Parallelism = Math.Max(1, Environment.ProcessorCount);
        Workers = new Worker[Parallelism - 1];
        for (int i = 0; i < Workers.Length; i++)
        {
            var w = new Worker();
            int participant = i + 1;
            w.Thread = new Thread(() => WorkerLoop(w, participant))
            {
                IsBackground = true,
                Name = $"MoraEngine.Cpu.{participant}",
            };
            Workers[i] = w;
            w.Thread.Start();
        }
    }

    /// <summary>Number of participants in a parallel region (workers plus the caller).</summary>
    public static int Parallelism { get; }

    /// <summary>
    /// Runs <paramref name="body"/>(<paramref name="context"/>, i) for every i in [0, <paramref name="chunks"/>).
    /// Participant p runs chunks p, p + P, p + 2P, ... where P = min(chunks, <see cref="Parallelism"/>),
    /// and the caller is participant 0. Returns when every chunk has finished; the first exception thrown
    /// by a chunk is rethrown here. <paramref name="context"/> must stay valid until the call returns
    /// (a pointer to a local of the caller is fine).
    /// </summary>
    public static void For(int chunks, delegate*<void*, int, void> body, void* context)
    {
        if (chunks <= 0) return;
        if (chunks == 1 || Workers.Length == 0 || t_insideRegion || !Monitor.TryEnter(Gate))
        {
            for (int i = 0; i < chunks; i++) body(context, i);
            return;
        }

        try
        {
            int participants = Math.Min(chunks, Parallelism);
            s_body = body;
            s_context = context;
            s_chunks = chunks;
            s_participants = participants;
            s_error = null;
            Volatile.Write(ref s_pending, participants - 1);
            Done.Reset();
            for (int p = 1; p < participants; p++) Workers[p - 1].Start.Set();

            t_insideRegion = true;
            try
            {
                RunChunks(0);
            }
            finally
            {
                t_insideRegion = false;
                Done.Wait();
            }

            if (s_error is { } error)
            {
                s_error = null;
                ExceptionDispatchInfo.Capture(error).Throw();
            }
        }
        finally
        {
            s_body = null;
            s_context = null;
            Monitor.Exit(Gate);
        }
    }

    private static void RunChunks(int participant)
    {
        try
        {
            for (int i = participant; i < s_chunks; i += s_participants) s_body(s_context, i);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref s_error, e, null);
        }
    }

    private static void WorkerLoop(Worker self, int participant)
    {
        t_insideRegion = true;
        while (true)
        {
            self.Start.Wait();
            self.Start.Reset();
            RunChunks(participant);
            if (Interlocked.Decrement(ref s_pending) == 0) Done.Set();
        }
    }
}
