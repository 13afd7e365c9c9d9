using Xunit;

namespace MoraEngine.Tests.Ilgpu;

/// <summary>One adapted layer's forward and backward on the CPU and on ILGPU's CPU accelerator, compared.</summary>
internal static class LayerParity
{
    /// <summary>
    /// Runs <paramref name="layer"/> on inputs of the given shapes (filled from one seed, scaled by their factor) on both
    /// devices, backpropagates Σ y·gy with gy [rows, out], and asserts that y and every input's gradient agree.
    /// </summary>
    public static void AssertMatch((int[] Shape, float Scale)[] inputs, int rows, int outF, Func<Tensor[], Tensor> layer, float gradTolerance = 1e-5f)
    {
        var gy = GradCheck.Rand(new Rng(4), rows * outF);
        (float[] Y, float[][] Grads) Go(Device device)
        {
            var local = new Rng(9);
            var t = inputs.Select(i => Tensor.FromArray(GradCheck.Rand(local, i.Shape.Aggregate(1, (a, b) => a * b), i.Scale), i.Shape).To(device)).ToArray();
            foreach (var p in t) p.RequiresGrad = true;
            var y = layer(t);
            MoraEngine.Ops.SumAll(MoraEngine.Ops.Mul(y, Tensor.FromArray(gy, [rows, outF]).To(device))).Backward();
            return (y.ToArray(), t.Select(p => p.Grad!.ToArray()).ToArray());
        }
        var cpu = Go(Device.Cpu);
        var dev = Go(IlgpuFixture.Device);
        Assert.Equal(cpu.Y, dev.Y, (a, b) => Math.Abs(a - b) <= 1e-5f * (1 + Math.Abs(a)));
        for (var i = 0; i < cpu.Grads.Length; i++)
            Assert.Equal(cpu.Grads[i], dev.Grads[i], (a, b) => Math.Abs(a - b) <= gradTolerance * (1 + Math.Abs(a)));
    }
}
