using System.CommandLine;

namespace MoraEngine.Cli.Commands;

/// <summary>The <c>--device</c> option shared by every command that computes.</summary>
internal static class CliDevice
{
    public static Option<string> Option() => new("--device")
    {
        Description = "Where to compute: auto (CUDA when a CUDA device works, else the CPU), cpu, cuda, cuda:N, or ilgpu-cpu (the GPU kernels on ILGPU's CPU accelerator; slow, for testing).",
        DefaultValueFactory = _ => "auto",
    };

    /// <summary>The <c>--tf32</c> switch of the GPU benchmarks.</summary>
    public static Option<bool> Tf32Option() => new("--tf32")
    {
        Description = "Run large matrix products on TF32 tensor cores (GPU only; about 1e-3 relative error). MORA_TF32=1 does the same for every command.",
    };

    /// <summary>Turns TF32 on for the device's GEMMs when asked (an error on the CPU); returns whether it is on.</summary>
    public static bool ApplyTf32(Device device, bool requested)
    {
        if (device.Backend is MoraEngine.Backends.Ilgpu.IlgpuBackend il)
        {
            if (requested) il.Tf32 = true;
            return il.Tf32;
        }
        if (requested) throw new ArgumentException("--tf32 needs a GPU device (--device cuda); the CPU computes in float32.");
        return false;
    }

    /// <summary>Resolves the option; a fallback of <c>auto</c> is explained in one line on standard error.</summary>
    public static Device Resolve(string spec)
    {
        var device = Devices.Parse(spec, out var note);
        if (note != null) Console.Error.WriteLine(note);
        return device;
    }
}
