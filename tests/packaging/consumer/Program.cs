// A MoraEngine user's program, built by tests/packaging/run.sh against the packed MoraEngine package alone. It
// declares MoRA kernels in the three ways the package's generator reads (an [assembly: MoraKernel] below,
// tiny.mora.json picked up by the package's build targets, configs/listed.mora.json listed as AdditionalFiles),
// trains a few steps of a tiny GPT with MoRA adapters of those shapes, and exits non-zero unless every adapter runs
// the kernels generated into this assembly.
using System.Reflection;
using System.Runtime.Intrinsics;
using MoraEngine;
using MoraEngine.Adapters;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;

// 96 → 96 with RoPE (r̂ 38): the q, k, v, o layers of the RoPE run; listed.mora.json gives its up and down layers.
[assembly: MoraKernel(InFeatures = 96, OutFeatures = 96, Rank = 8, Type = MoraType.Rope)]
#if MORA_BAD_KERNEL
// run.sh builds once with this on: the generator must stop the build with MORA001 (rank not positive).
[assembly: MoraKernel(InFeatures = 96, OutFeatures = 96, Rank = 0)]
#endif

var self = Assembly.GetExecutingAssembly();
var failures = 0;
void Check(bool ok, string what)
{
    Console.WriteLine($"  {(ok ? "ok  " : "FAIL")} {what}");
    if (!ok) failures++;
}

// 1. The module initializer generated into this assembly registered every declared shape.
(int In, int Out, int RHat, MoraType Type, string From)[] expected =
[
    (96, 96, 39, MoraType.Sharing, "tiny.mora.json"),
    (96, 384, 62, MoraType.Sharing, "tiny.mora.json"),
    (384, 96, 62, MoraType.Sharing, "tiny.mora.json"),
    (96, 96, 38, MoraType.Rope, "[assembly: MoraKernel]"),
    (96, 384, 62, MoraType.Rope, "configs/listed.mora.json"),
    (384, 96, 62, MoraType.Rope, "configs/listed.mora.json"),
];
var loaded = MoraKernelRegistry.Loaded;
var mine = loaded.Where(k => k.GetType().Assembly == self).ToArray();
Console.WriteLine($"MoraKernelRegistry: {loaded.Count} specialisations loaded, {mine.Length} from {self.GetName().Name}:");
foreach (var k in mine) Console.WriteLine($"    {k.In} → {k.Out}, r̂ {k.RHat}, {k.Type}: {k.GetType().FullName}{(k.Device != null ? " (cpu, ilgpu)" : " (cpu)")}");
foreach (var e in expected)
    Check(mine.Any(k => (k.In, k.Out, k.RHat, k.Type) == (e.In, e.Out, e.RHat, e.Type) && k.Device != null),
        $"{e.In} → {e.Out}, r̂ {e.RHat}, {e.Type} ({e.From}) registered with CPU and ILGPU kernels");
Check(mine.Length == expected.Length, $"exactly {expected.Length} specialisations from this assembly (got {mine.Length})");
Check(loaded.Count > mine.Length, "the library's own specialisations are loaded too");

// 2. Training with MoRA adapters of those shapes: each operator picked this assembly's kernels at construction.
var simd = Vector256.IsHardwareAccelerated;
if (!simd) Console.WriteLine("  note: no 256-bit SIMD here, so operators keep the generic CPU kernels; checking the ILGPU ones only");
var config = new ModelConfig { VocabSize = 256, DModel = 96, Layers = 2, Heads = 4, Context = 32 };
var text = System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(
    "MoRA learns a square matrix between a compression and a decompression of the layer's input. ", 20)));

float[] Train(MoraType type, Device device, int steps, bool checkKernels)
{
    var model = new TransformerModel(config, seed: 1);
    var adapted = AdaptedModel.Wrap(model, new AdapterConfig { Method = AdapterMethod.Mora, Rank = 8, MoraType = type });
    if (checkKernels)
        foreach (var layer in adapted.Layers)
        {
            var op = ((MoraAdapter)layer.Adapter).Operator;
            if (simd) Check(op.Kernels?.GetType().Assembly == self, $"{layer.Name}: {op} uses {op.Kernels?.GetType().Name ?? "the generic kernels"}");
            Check(op.DeviceKernels?.GetType().Assembly == self, $"{layer.Name}: ILGPU kernels {op.DeviceKernels?.GetType().Name ?? "none (generic)"}");
        }
    model.To(device);
    var optimizer = new AdamW(adapted.TrainableParameters(), lr: 3e-3f, weightDecay: 0f);
    var trainer = new Trainer(model, optimizer, new ConstantLr(3e-3f), new TextBatchSource(text, seed: 2),
        new TrainerOptions { BatchSize = 4 });
    var losses = new float[steps];
    for (var i = 0; i < steps; i++) losses[i] = trainer.TrainStep();
    return losses;
}

string Show(float[] l) => string.Join(", ", l.Select(x => x.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)));
foreach (var type in new[] { MoraType.Sharing, MoraType.Rope })
{
    Console.WriteLine($"Training MoRA {type}, rank 8, on the CPU:");
    var losses = Train(type, Device.Cpu, 8, checkKernels: true);
    Console.WriteLine($"  losses {Show(losses)}");
    Check(losses.All(float.IsFinite) && losses[^1] < losses[0], "the loss is finite and falls");
}

// 3. The same on ILGPU's CPU accelerator (the CUDA kernels' code path): this assembly's device kernels compile and
//    give the CPU backend's losses.
Console.WriteLine("Training MoRA Rope on ILGPU's CPU accelerator (ilgpu-cpu) against the CPU backend:");
var cpu = Train(MoraType.Rope, Device.Cpu, 2, checkKernels: false);
var dev = Train(MoraType.Rope, Devices.Parse("ilgpu-cpu"), 2, checkKernels: false);
Console.WriteLine($"  cpu {Show(cpu)}; ilgpu-cpu {Show(dev)}");
Check(cpu.Zip(dev).All(p => Math.Abs(p.First - p.Second) <= 1e-3f * Math.Max(1f, Math.Abs(p.First))), "ilgpu-cpu losses match the CPU's");

Console.WriteLine(failures == 0 ? "consumer: all checks passed" : $"consumer: {failures} check(s) failed");
return failures == 0 ? 0 : 1;
