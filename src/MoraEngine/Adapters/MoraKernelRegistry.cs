namespace MoraEngine.Adapters;

/// <summary>
/// Specialised MoRA kernels by (in, out, r̂, type). Generated code registers into it from a module initializer
/// (see <see cref="MoraKernelAttribute"/>); <see cref="MoraOperator"/> looks its shape up once, at construction.
/// Setting the environment variable <c>MORA_GENERIC_KERNELS=1</c> turns the lookup off (every operator then uses
/// the generic kernels).
/// </summary>
public static class MoraKernelRegistry
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<(int In, int Out, int RHat, MoraType Type), IMoraKernels> Kernels = [];

    /// <summary>False when <c>MORA_GENERIC_KERNELS=1</c>: operators ignore the registry.</summary>
    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("MORA_GENERIC_KERNELS") != "1";

    /// <summary>Adds kernels for their shape; the first registration of a shape wins (they compute the same thing).</summary>
    public static void Register(IMoraKernels kernels)
    {
        ArgumentNullException.ThrowIfNull(kernels);
        lock (Gate) Kernels.TryAdd((kernels.In, kernels.Out, kernels.RHat, kernels.Type), kernels);
    }

    /// <summary>The specialisation of a shape, or null (none registered, not accelerated here, or the registry is off).</summary>
    public static IMoraKernels? Find(int inFeatures, int outFeatures, int rHat, MoraType type)
    {
        if (!Enabled) return null;
        lock (Gate)
            return Kernels.TryGetValue((inFeatures, outFeatures, rHat, type), out var k) && k.IsAccelerated ? k : null;
    }

    /// <summary>
    /// The ILGPU kernels of a shape, or null (none registered, none generated for it, or the registry is off). Unlike
    /// <see cref="Find"/> this does not depend on the CPU's SIMD support.
    /// </summary>
    public static IMoraDeviceKernels? FindDevice(int inFeatures, int outFeatures, int rHat, MoraType type)
    {
        if (!Enabled) return null;
        lock (Gate)
            return Kernels.TryGetValue((inFeatures, outFeatures, rHat, type), out var k) ? k.Device : null;
    }

    /// <summary>Every registered specialisation, ordered by (in, out, r̂, type).</summary>
    public static IReadOnlyList<IMoraKernels> Loaded
    {
        get
        {
            lock (Gate)
                return Kernels.Values.OrderBy(k => k.In).ThenBy(k => k.Out).ThenBy(k => k.RHat).ThenBy(k => k.Type).ToArray();
        }
    }
}
