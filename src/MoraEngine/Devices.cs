using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using MoraEngine.Backends.Ilgpu;

namespace MoraEngine;

/// <summary>
/// Device selection by name: <c>cpu</c> (the managed SIMD backend), <c>cuda</c> / <c>cuda:N</c> (ILGPU kernels on
/// an NVIDIA GPU), <c>ilgpu-cpu</c> (the same kernels on ILGPU's CPU accelerator with CUDA's warp size and group
/// limits: slow, for testing) and <c>auto</c> (CUDA when a CUDA device works, else the CPU). Each accelerator is
/// opened once and its <see cref="Device"/> cached for the process.
/// </summary>
public static class Devices
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, Device> Cache = new();
    private static Context? _cudaContext;
    private static Context? _cpuContext;
    private static string? _cudaProblem;

    /// <summary>The device named by <paramref name="spec"/>; for <c>auto</c> without a usable GPU, the CPU.</summary>
    /// <exception cref="ArgumentException">An unknown name, or a CUDA device that does not exist or cannot start (with the reason).</exception>
    public static Device Parse(string spec) => Parse(spec, out _);

    /// <summary>
    /// <see cref="Parse(string)"/> for a setting given on the command line: any failure, not only a bad name, is an
    /// <see cref="ArgumentException"/> that names <paramref name="option"/>.
    /// </summary>
    public static Device ParseOption(string spec, string option = "--device")
    {
        try
        {
            return Parse(spec);
        }
        catch (Exception e) when (e is not ArgumentException)
        {
            throw new ArgumentException($"{option} {spec}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Like <see cref="Parse(string)"/>; <paramref name="note"/> receives one line explaining a fallback (<c>auto</c>
    /// chose the CPU because no CUDA device works) or null.
    /// </summary>
    public static Device Parse(string spec, out string? note)
    {
        ArgumentNullException.ThrowIfNull(spec);
        note = null;
        var s = spec.Trim().ToLowerInvariant();
        switch (s)
        {
            case "cpu":
                return Device.Cpu;
            case "auto":
                try
                {
                    return Cuda(0);
                }
                catch (ArgumentException e)
                {
                    note = $"device auto: using the CPU ({e.Message})";
                    return Device.Cpu;
                }
            case "ilgpu-cpu":
                return IlgpuCpu();
            case "cuda":
                return Cuda(0);
        }
        if (s.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(s.AsSpan(5), out var n) && n >= 0)
            return Cuda(n);
        throw new ArgumentException($"Unknown device '{spec}' (expected auto, cpu, cuda, cuda:N or ilgpu-cpu).");
    }

    /// <summary>The CUDA devices ILGPU sees (name, memory), or an empty list with the reason in <paramref name="problem"/>.</summary>
    public static IReadOnlyList<string> ListCuda(out string? problem)
    {
        var result = new List<string>();
        lock (Gate)
        {
            try
            {
                _cudaContext ??= Context.Create(b => b.Cuda().EnableAlgorithms());
                problem = null;
                var i = 0;
                foreach (var d in _cudaContext.Devices)
                    if (d.AcceleratorType == AcceleratorType.Cuda)
                        result.Add($"cuda:{i++}: {d.Name}, {d.MemorySize / (1L << 30)} GiB");
                if (result.Count == 0) problem = "no NVIDIA GPU or driver found";
            }
            catch (Exception e)
            {
                problem = e.Message;
            }
        }
        return result;
    }

    private static Device Cuda(int index)
    {
        lock (Gate)
        {
            var key = $"cuda:{index}";
            if (Cache.TryGetValue(key, out var d)) return d;
            if (_cudaProblem != null) throw new ArgumentException(_cudaProblem);
            try
            {
                _cudaContext ??= Context.Create(b => b.Cuda().EnableAlgorithms());
                var cudaDevices = _cudaContext.GetCudaDevices();
                if (cudaDevices.Count == 0)
                {
                    _cudaProblem = "no CUDA device found (no NVIDIA GPU or driver on this machine)";
                    throw new ArgumentException(_cudaProblem);
                }
                if (index >= cudaDevices.Count)
                    throw new ArgumentException($"cuda:{index} does not exist ({cudaDevices.Count} CUDA device(s): cuda:0..cuda:{cudaDevices.Count - 1}).");
                var acc = cudaDevices[index].CreateCudaAccelerator(_cudaContext);
                return Cache[key] = Attach(key, new IlgpuBackend(acc, key));
            }
            catch (Exception e) when (e is not ArgumentException)
            {
                _cudaProblem = $"CUDA is not usable: {e.Message}";
                throw new ArgumentException(_cudaProblem, e);
            }
        }
    }

    /// <summary>ILGPU's CPU accelerator with CUDA's warp size (32) and group limits (1024 threads).</summary>
    internal static Device IlgpuCpu()
    {
        lock (Gate)
        {
            if (Cache.TryGetValue("ilgpu-cpu", out var d)) return d;
            _cpuContext ??= Context.Create(b => b.CPU(CPUDeviceKind.Nvidia).EnableAlgorithms());
            var acc = _cpuContext.CreateCPUAccelerator(0);
            return Cache["ilgpu-cpu"] = Attach("ilgpu-cpu", new IlgpuBackend(acc, "ilgpu-cpu"));
        }
    }

    private static Device Attach(string name, IlgpuBackend backend)
    {
        var device = Device.Create(name, backend);
        backend.Device = device;
        return device;
    }

    /// <summary>Waits until every kernel queued on <paramref name="device"/> has finished (a no-op on the CPU).</summary>
    public static void Synchronize(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        device.Backend.Synchronize();
    }

    /// <summary>A one-line description of the device (GPU name, memory, multiprocessors).</summary>
    public static string Describe(Device device) => $"{device.Name}: {device.Backend.Describe()}";
}
