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

    /// <summary>Resolves the option; a fallback of <c>auto</c> is explained in one line on standard error.</summary>
    public static Device Resolve(string spec)
    {
        var device = Devices.Parse(spec, out var note);
        if (note != null) Console.Error.WriteLine(note);
        return device;
    }
}
