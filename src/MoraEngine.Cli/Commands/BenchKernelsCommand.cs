using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MoraEngine.Adapters;
using MoraEngine.Diagnostics;
using Spectre.Console;

namespace MoraEngine.Cli.Commands;

/// <summary><c>mora bench kernels</c>: generated vs generic MoRA kernels, and MoRA vs LoRA, per layer shape.</summary>
internal static class BenchKernelsCommand
{
    public static Command Create()
    {
        var tokens = new Option<int>("--tokens") { Description = "Tokens per batch (rows through the adapter).", DefaultValueFactory = _ => 2048 };
        var rank = new Option<int>("--rank") { Description = "LoRA rank r (MoRA's r̂ matches its parameter budget).", DefaultValueFactory = _ => 8 };
        var repeats = new Option<int>("--repeats") { Description = "Timed rounds (medians are reported).", DefaultValueFactory = _ => 9 };
        var json = new Option<bool>("--json") { Description = "One JSON object per line." };
        var device = CliDevice.Option();
        var cmd = new Command("kernels",
            "Microseconds for forward + backward of the MoRA adapter path with generic and generated (specialised) kernels, of LoRA at the same budget, and of the whole layer (frozen, unfused, fused into the GEMM), for (512, 2048), (1024, 1024) and (256, 1024), types 1 and 6, on the CPU or a GPU.")
            { tokens, rank, repeats, json, device };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var t = r.GetValue(tokens);
            var rk = r.GetValue(rank);
            var n = r.GetValue(repeats);
            if (t <= 0) throw new ArgumentException($"--tokens must be positive, got {t}.");
            if (rk <= 0) throw new ArgumentException($"--rank must be positive, got {rk}.");
            if (n <= 0) throw new ArgumentException($"--repeats must be positive, got {n}.");
            var asJson = r.GetValue(json);
            var dev = CliDevice.Resolve(r.GetValue(device)!);
            if (!asJson) AnsiConsole.MarkupLine($"[grey]{Markup.Escape(Devices.Describe(dev))}[/]");
            foreach (var (i, o) in MoraKernelBench.DefaultShapes)
                foreach (var type in MoraKernelBench.DefaultTypes)
                {
                    var res = MoraKernelBench.Measure(i, o, rk, type, t, n, dev);
                    if (asJson)
                        Console.WriteLine(JsonSerializer.Serialize(new
                        {
                            benchmark = "kernels", @in = i, @out = o, rank = rk, mora_type = (int)type, tokens = t,
                            generic_us = Math.Round(res.GenericUs, 1), specialised_us = Math.Round(res.SpecialisedUs, 1),
                            lora_us = Math.Round(res.LoraUs, 1), r_hat = res.RHat, specialised = res.Specialised,
                            kernels_generic_us = Math.Round(res.GenericKernelsUs, 1), kernels_specialised_us = Math.Round(res.SpecialisedKernelsUs, 1),
                            kernel_speedup = Math.Round(res.KernelSpeedup, 2), mora_over_lora = Math.Round(res.MoraOverLora, 2),
                            kernels_hot_generic_us = Math.Round(res.GenericHotKernelsUs, 1),
                            kernels_hot_specialised_us = Math.Round(res.SpecialisedHotKernelsUs, 1),
                            hot_kernel_speedup = Math.Round(res.HotKernelSpeedup, 2),
                            kernels_specialised_gbps = Math.Round(res.SpecialisedGBps, 1), stream_gbps = Math.Round(res.StreamGBps, 1),
                            kernels_floor_us = Math.Round(res.KernelFloorUs, 1),
                            layer_frozen_us = Math.Round(res.BaseLayerUs, 1), layer_unfused_generic_us = Math.Round(res.UnfusedLayerUs, 1),
                            layer_fused_us = Math.Round(res.FusedLayerUs, 1), layer_epilogue_us = Math.Round(res.EpilogueLayerUs, 1),
                            layer_lora_us = Math.Round(res.LoraLayerUs, 1), layer_speedup = Math.Round(res.LayerSpeedup, 3),
                            adapter_unfused_us = Math.Round(res.UnfusedAdapterUs, 1), adapter_fused_us = Math.Round(res.FusedAdapterUs, 1),
                            fusion_speedup = Math.Round(res.FusionSpeedup, 2), generated_kernels_run = res.ChosenKernels,
                            generated_kernels_bit_identical = res.BitIdenticalKernels, device = dev.Name,
                        }));
                    else
                        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                            $"kernels {i}→{o} r={rk} (r̂ {res.RHat}) type {(int)type}{(res.Specialised ? "" : " [yellow](no specialisation loaded)[/]")}: " +
                            $"MoRA generic [bold]{res.GenericUs:F0}[/] µs, specialised [bold]{res.SpecialisedUs:F0}[/] µs, LoRA [bold]{res.LoraUs:F0}[/] µs; " +
                            $"compress+decompress {res.GenericKernelsUs:F0} → {res.SpecialisedKernelsUs:F0} µs ({res.KernelSpeedup:F2}×; {res.SpecialisedGBps:F0} GB/s, " +
                            $"memory floor {res.KernelFloorUs:F0} µs at {res.StreamGBps:F0} GB/s), " +
                            $"each alone in cache {res.GenericHotKernelsUs:F0} → {res.SpecialisedHotKernelsUs:F0} µs ({res.HotKernelSpeedup:F2}×), MoRA/LoRA {res.MoraOverLora:F2}; " +
                            $"layer: frozen {res.BaseLayerUs:F0} µs, unfused generic {res.UnfusedLayerUs:F0}, fused [bold]{res.FusedLayerUs:F0}[/] (as an epilogue {res.EpilogueLayerUs:F0}), LoRA fused {res.LoraLayerUs:F0}; " +
                            $"adapter over the frozen layer {res.UnfusedAdapterUs:F0} → {res.FusedAdapterUs:F0} µs ([bold]{res.FusionSpeedup:F2}×[/])" +
                            $"{(res.ChosenKernels != "" ? $"; generated kernels that run: {res.ChosenKernels} (bit-identical: {res.BitIdenticalKernels})" : "")}"));
                }
            return 0;
        }));
        return cmd;
    }
}
