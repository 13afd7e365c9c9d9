using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using MoraEngine.Backends;
using MoraEngine.Diagnostics;

namespace MoraEngine.Cli.Commands;

/// <summary>
/// <c>mora selftest --device cuda</c>: every accelerator kernel against the managed CPU reference (the checks the
/// unit tests run on ILGPU's CPU accelerator, plus larger GEMM and attention cases), then a few training steps of
/// tiny models whose losses must match the CPU's. Needs no SDK, so it runs from the GPU bundle.
/// </summary>
internal static class SelftestCommand
{
    public static Command Create()
    {
        var device = CliDevice.Option();
        var noTrain = new Option<bool>("--no-train") { Description = "Skip the training parity runs." };
        var cmd = new Command("selftest", "Check every GPU kernel against the CPU reference (and a few training steps).") { device, noTrain };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var dev = CliDevice.Resolve(r.GetValue(device)!);
            if (ReferenceEquals(dev, Device.Cpu))
                throw new ArgumentException("selftest compares an accelerator with the CPU reference: pass --device cuda[:N] or ilgpu-cpu (no CUDA device is in use).");
            Console.WriteLine($"selftest on {Devices.Describe(dev)}");
            var failed = 0;
            var sw = Stopwatch.StartNew();
            foreach (var name in BackendParity.CaseNames(includeLarge: true))
            {
                var res = BackendParity.Run(name, dev);
                if (!res.Passed) failed++;
                Console.WriteLine(BackendParity.Format(res));
            }
            if (!r.GetValue(noTrain))
                foreach (var method in BackendParity.TrainingMethods)
                {
                    var (cpu, d) = BackendParity.TrainingLosses(method, dev, steps: 4, dModel: 32);
                    var worst = 0.0;
                    for (var i = 0; i < cpu.Length; i++) worst = Math.Max(worst, Math.Abs(cpu[i] - d[i]) / Math.Max(1, Math.Abs(cpu[i])));
                    var ok = worst <= 1e-4;
                    if (!ok) failed++;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{(ok ? "ok  " : "FAIL")} train-{method,-22} err {worst,9:G3} (tol 1E-04)  cpu [{string.Join(", ", cpu.Select(v => v.ToString("F5", CultureInfo.InvariantCulture)))}] device [{string.Join(", ", d.Select(v => v.ToString("F5", CultureInfo.InvariantCulture)))}]"));
                }
            Console.WriteLine(failed == 0 ? $"selftest passed in {sw.Elapsed.TotalSeconds:F1} s" : $"selftest: {failed} FAILED");
            return failed == 0 ? 0 : 1;
        }));
        return cmd;
    }
}
