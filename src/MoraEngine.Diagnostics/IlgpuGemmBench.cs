using System.Diagnostics;

namespace MoraEngine.Diagnostics;

/// <summary>SGEMM throughput of an ILGPU device (<c>mora bench gemm --device cuda</c>).</summary>
internal static class IlgpuGemmBench
{
    /// <summary>
    /// Best GFLOP/s (2·n³ / seconds) of C = A·B on random n×n matrices over <paramref name="repeats"/> timed runs.
    /// Each run queues enough multiplies to last ~100 ms and waits for the device once at the end (the time per
    /// multiply is the device time, not the launch time). A warm-up compiles and loads the kernel first.
    /// </summary>
    public static double MeasureGflops(Device device, int size, int repeats, bool transA = false, bool transB = false)
    {
        if (ReferenceEquals(device, Device.Cpu)) throw new ArgumentException("IlgpuGemmBench: the CPU is measured by GemmBench; give a GPU device.");
        var be = device.Backend;
        var rng = new Rng(12345);
        var n = size;
        var a = Tensor.RandU(rng, -0.5f, 0.5f, n, n).To(device);
        var b = Tensor.RandU(rng, -0.5f, 0.5f, n, n).To(device);
        var c = Tensor.Zeros(device, n, n);
        void One() => be.Gemm(1, n, n, n, 1f, a, transA, 0, b, transB, 0, 0f, c, 0);

        One();
        be.Synchronize();
        var t0 = Stopwatch.GetTimestamp();
        One();
        One();
        be.Synchronize();
        var perCall = Stopwatch.GetElapsedTime(t0).TotalSeconds / 2;
        var inner = (int)Math.Clamp(0.1 / Math.Max(perCall, 1e-7), 1, 10_000);
        var flops = 2.0 * n * n * n;
        double best = 0;
        for (var r = 0; r < repeats; r++)
        {
            var start = Stopwatch.GetTimestamp();
            for (var i = 0; i < inner; i++) One();
            be.Synchronize();
            var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds / inner;
            best = Math.Max(best, flops / seconds / 1e9);
        }
        return best;
    }
}
