using MoraEngine.Backends;
using MoraEngine.Diagnostics;
using MoraEngine.Nn;
using Xunit;

namespace MoraEngine.Tests.Ilgpu;

/// <summary>
/// A few full training steps (forward, backward, clipping, AdamW) of tiny models on ILGPU's CPU accelerator give
/// the CPU backend's losses within float tolerance.
/// </summary>
[Trait("Backend", "Ilgpu")]
[Collection("Ilgpu")]
public class IlgpuTrainingTests
{
    public static TheoryData<string> Methods()
    {
        var data = new TheoryData<string>();
        foreach (var m in BackendParity.TrainingMethods) data.Add(m);
        return data;
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void TinyModel_LossesMatchCpu(string method)
    {
        var (cpu, dev) = BackendParity.TrainingLosses(method, IlgpuFixture.Device, steps: 3);
        for (var i = 0; i < cpu.Length; i++)
            Assert.True(Math.Abs(cpu[i] - dev[i]) <= 1e-4f * Math.Max(1f, Math.Abs(cpu[i])),
                $"{method} step {i + 1}: cpu {cpu[i]} vs ilgpu {dev[i]} (all: [{string.Join(", ", cpu)}] vs [{string.Join(", ", dev)}])");
        Assert.True(cpu[^1] < cpu[0], $"{method}: the loss should fall ({string.Join(", ", cpu)})");
    }

    [Fact]
    public void SameSeed_SameLosses_RunToRun()
    {
        var a = BackendParity.TrainingLosses("fft", IlgpuFixture.Device, steps: 2).Dev;
        var b = BackendParity.TrainingLosses("fft", IlgpuFixture.Device, steps: 2).Dev;
        Assert.Equal(a, b);
    }

    [Fact]
    public void TensorTo_RoundTrips_AndModuleTo_MovesParametersInPlace()
    {
        var x = Tensor.RandN(new Rng(3), 1f, 3, 4);
        var d = x.To(IlgpuFixture.Device);
        Assert.Same(IlgpuFixture.Device, d.Device);
        Assert.Equal(x.ToArray(), d.ToArray());
        Assert.Equal(x.ToArray(), d.To(Device.Cpu).ToArray());
        Assert.Same(x, x.To(Device.Cpu));

        var model = new TransformerModel(ModelConfig.Tiny with { DModel = 16, Layers = 1, Heads = 2, Context = 4 });
        var w = model.Head!.Weight;
        var before = w.ToArray();
        model.To(IlgpuFixture.Device);
        Assert.Same(w, model.Head!.Weight);
        Assert.All(model.Parameters(), p => Assert.Same(IlgpuFixture.Device, p.Device));
        Assert.Equal(before, w.ToArray());
    }

    [Fact]
    public void Devices_Parse_KnowsNames_AndAutoFallsBackWithAReason()
    {
        Assert.Same(Device.Cpu, Devices.Parse("cpu"));
        Assert.Same(IlgpuFixture.Device, Devices.Parse("ilgpu-cpu"));
        Assert.Throws<ArgumentException>(() => Devices.Parse("tpu"));
        var auto = Devices.Parse("auto", out var note);
        if (ReferenceEquals(auto, Device.Cpu)) Assert.False(string.IsNullOrWhiteSpace(note));
        else Assert.StartsWith("cuda", auto.Name);
    }
}
