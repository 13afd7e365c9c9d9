using System.CommandLine;
using System.Numerics;
using System.Reflection;
using System.Runtime.Intrinsics;
using Spectre.Console;

namespace MoraEngine.Cli.Commands;

internal static class InfoCommand
{
    public static Command Create()
    {
        var cmd = new Command("info", "Version, SIMD width, cores and available devices.");
        cmd.SetAction(_ =>
        {
            Print();
            return 0;
        });
        return cmd;
    }

    internal static string SimdDescription() =>
        Vector512.IsHardwareAccelerated ? "AVX-512 (512-bit, 16 floats)"
        : Vector256.IsHardwareAccelerated ? "AVX2 (256-bit, 8 floats)"
        : Vector128.IsHardwareAccelerated ? "128-bit (4 floats)"
        : $"scalar (Vector<float>.Count = {Vector<float>.Count})";

    private static void Print()
    {
        var version = typeof(Tensor).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";
        var table = new Table().AddColumn("what").AddColumn("value");
        table.AddRow("MoraEngine", Markup.Escape(version.Split('+')[0]));
        table.AddRow(".NET", Markup.Escape(Environment.Version.ToString()));
        table.AddRow("SIMD in use", Markup.Escape(SimdDescription()));
        table.AddRow("CPU cores", Environment.ProcessorCount.ToString());
        table.AddRow("Devices", Markup.Escape(string.Join("\n", Devices())));
        table.AddRow("MoRA kernels", Markup.Escape(string.Join("\n", MoraKernels())));
        AnsiConsole.Write(table);
    }

    /// <summary>The generated MoRA kernel specialisations loaded (in → out, r̂, type), or why none is used.</summary>
    internal static IEnumerable<string> MoraKernels()
    {
        var loaded = MoraEngine.Adapters.MoraKernelRegistry.Loaded;
        var state = !MoraEngine.Adapters.MoraKernelRegistry.Enabled ? "off (MORA_GENERIC_KERNELS=1): generic kernels only"
            : loaded.Count > 0 && !loaded[0].IsAccelerated ? "not accelerated on this CPU: generic kernels only"
            : "specialised kernels in use for these shapes, generic for the rest";
        yield return $"{loaded.Count} specialisations loaded; {state}";
        foreach (var k in loaded) yield return $"{k.In} → {k.Out}, r̂ {k.RHat}, type {(int)k.Type} {k.Type}{(k.Device != null ? " (cpu, ilgpu)" : " (cpu)")}";
    }

    internal static IEnumerable<string> Devices()
    {
        yield return $"cpu: managed SIMD backend, {Environment.ProcessorCount} cores";
        var cuda = MoraEngine.Devices.ListCuda(out var problem);
        if (cuda.Count == 0)
            yield return problem == null || problem.StartsWith("no NVIDIA", StringComparison.Ordinal)
                ? "cuda: none found (no NVIDIA GPU or driver on this machine); --device auto uses the CPU"
                : $"cuda: none usable ({problem}); --device auto uses the CPU";
        foreach (var c in cuda) yield return c;
    }
}
