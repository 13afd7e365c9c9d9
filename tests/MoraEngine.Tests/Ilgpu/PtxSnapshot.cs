using System.Reflection;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace MoraEngine.Tests.Ilgpu;

/// <summary>
/// PTX of a kernel compiled by ILGPU's PTX backend for SM_90 without any GPU (the backend only generates text; the
/// driver's JIT is not involved), and snapshot comparison against <c>tests/MoraEngine.Tests/Snapshots/NAME.verified.txt</c>
/// (<c>NAME.Debug.verified.txt</c> when the kernel's assembly was built in Debug; see the remarks). On a mismatch the new
/// text is written next to it as <c>NAME[.Debug].received.txt</c> (git-ignored) and the test fails;
/// <c>MORA_ACCEPT_SNAPSHOTS=1</c> overwrites the verified file instead.
/// </summary>
/// <remarks>
/// <para>
/// ILGPU compiles a kernel from its .NET IL, and the C# compiler emits different IL with optimisation off (Debug) and on
/// (Release): other branch shapes, extra locals and stores, which ILGPU carries into other instructions, registers and
/// control flow (for most kernels here; a few come out the same). So there is one snapshot per build configuration of
/// the kernel's assembly, even where the two are identical: <c>NAME.verified.txt</c> for optimised IL (Release)
/// and <c>NAME.Debug.verified.txt</c> for unoptimised IL (Debug, plain <c>dotnet test</c>).
/// The configuration is read from the kernel's assembly (<see cref="IlConfiguration"/>), and accepting writes only that
/// configuration's file: a codegen change is accepted by running the PTX tests with <c>MORA_ACCEPT_SNAPSHOTS=1</c> once
/// in each configuration (<c>-c Release</c> and <c>-c Debug</c>).
/// </para>
/// <para>
/// ILGPU 1.5.3 writes <c>.target sm_80</c> in the header even when the backend is created for SM_90 (its
/// <c>Architecture</c> property does say SM_90, and the same happens on a real H200): the PTX uses no SM_90-only
/// feature, and the driver JIT-compiles it for the GPU it runs on. The snapshots therefore show sm_80.
/// </para>
/// </remarks>
internal static partial class PtxSnapshot
{
    /// <summary>PTX for one kernel method. A fresh context per kernel keeps ILGPU's generated names stable.</summary>
    public static string Compile(MethodInfo kernel, bool explicitlyGrouped)
    {
        using var context = Context.Create(b => b.EnableAlgorithms());
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, nvvmAPI: null!);
        var entry = explicitlyGrouped
            ? EntryPointDescription.FromExplicitlyGroupedKernel(kernel)
            : EntryPointDescription.FromImplicitlyGroupedKernel(kernel);
        var compiled = (PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty);
        return Normalize(compiled.PTXAssembly.Replace("\r\n", "\n", StringComparison.Ordinal));
    }

    /// <summary>
    /// ILGPU numbers parameter names (<c>_x_782</c>) and labels (<c>L_3250</c>) from process-wide IR counters, so the
    /// same kernel gets other numbers depending on what was compiled before. They are renumbered in order of first
    /// appearance; everything else (instructions, registers, control flow) is kept as emitted.
    /// </summary>
    internal static string Normalize(string ptx)
    {
        var names = new Dictionary<string, int>();
        return IrName().Replace(ptx, m =>
        {
            if (!names.TryGetValue(m.Value, out var n)) names[m.Value] = n = names.Count;
            return m.Groups[1].Value + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\b(_[A-Za-z][A-Za-z0-9]*_|L_)(\d+)\b")]
    private static partial System.Text.RegularExpressions.Regex IrName();

    /// <summary>
    /// "Release" when <paramref name="assembly"/> was compiled with optimisation (no
    /// <see cref="System.Diagnostics.DebuggableAttribute"/> disabling the JIT optimiser), else "Debug": the configuration
    /// that decides the kernels' IL, and so their PTX.
    /// </summary>
    public static string IlConfiguration(Assembly assembly) =>
        assembly.GetCustomAttribute<System.Diagnostics.DebuggableAttribute>()?.IsJITOptimizerDisabled == true ? "Debug" : "Release";

    /// <summary>
    /// Compares <paramref name="text"/>, the PTX of <paramref name="kernel"/>, with the snapshot for the configuration the
    /// kernel's assembly was compiled in: <c>NAME.verified.txt</c> (Release) or <c>NAME.Debug.verified.txt</c> (Debug).
    /// </summary>
    public static void Verify(string name, string text, MethodInfo kernel, [CallerFilePath] string caller = "")
    {
        var configuration = IlConfiguration(kernel.Module.Assembly);
        var file = configuration == "Release" ? name : name + "." + configuration;
        var dir = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(caller)!)!, "Snapshots");
        var verified = Path.Combine(dir, file + ".verified.txt");
        var received = Path.Combine(dir, file + ".received.txt");
        if (Environment.GetEnvironmentVariable("MORA_ACCEPT_SNAPSHOTS") == "1")
        {
            Directory.CreateDirectory(dir);
            File.WriteAllText(verified, text);
            if (File.Exists(received)) File.Delete(received);
            return;
        }
        var expected = File.Exists(verified) ? File.ReadAllText(verified).Replace("\r\n", "\n", StringComparison.Ordinal) : null;
        if (expected == text)
        {
            if (File.Exists(received)) File.Delete(received);
            return;
        }
        Directory.CreateDirectory(dir);
        File.WriteAllText(received, text);
        var what = $"PTX of {name} compiled from {configuration} IL ({kernel.Module.Assembly.GetName().Name} built in {configuration}; " +
                   "Debug and Release IL give different PTX, so each configuration has its own snapshot)";
        Assert.Fail(expected == null
            ? $"{what}: no snapshot {verified}; wrote {received}. Review it and accept with MORA_ACCEPT_SNAPSHOTS=1 in {configuration}."
            : $"{what} changed; see {received} (diff against {verified}). If the change is intended, accept it with " +
              "MORA_ACCEPT_SNAPSHOTS=1 in both configurations (dotnet test -c Release and -c Debug).");
    }
}
