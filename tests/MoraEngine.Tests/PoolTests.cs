using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

/// <summary>
/// Tests that read the CPU device's global pool counters. They run in a collection of their own with parallelism
/// off: any test running beside them would create buffers and move the counters.
/// </summary>
[CollectionDefinition("Pool counters", DisableParallelization = true)]
public class PoolCountersCollection;

[Collection("Pool counters")]
public class PoolTests
{
    [Fact]
    public void MemoryScope_RecyclesBuffers_AndGuardsUseAfterRelease()
    {
        var x = Tensor.FromArray(new float[1000], 10, 100);
        x.RequiresGrad = true;
        Tensor escaped = null!;
        var createdBefore = 0L;
        for (var step = 0; step < 3; step++)
        {
            if (step == 2) createdBefore = Device.Cpu.Pool.Created;
            using (MemoryScope.Begin())
            {
                var y = Ops.SumAll(Ops.Gelu(Ops.Scale(x, 2f)));
                y.Backward();
                escaped = y;
            }
            Assert.False(escaped.IsAlive);
        }
        Assert.Equal(createdBefore, Device.Cpu.Pool.Created);
        Assert.Throws<ObjectDisposedException>(() => escaped.Item());
        Assert.True(x.Grad!.IsAlive);   // a parameter's gradient outlives the step
    }

    [Fact]
    public void NoTensorMemoryAllocated_AfterFirstStep()
    {
        var trainer = TrainingTests.CopyTrainer(9, 10, out _);
        trainer.TrainStep();
        trainer.TrainStep();
        var created = Device.Cpu.Pool.Created;
        var bytes = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 5; i++) trainer.TrainStep();
        Assert.Equal(created, Device.Cpu.Pool.Created);
        // Only small bookkeeping objects (graph nodes) are allocated per step: far less than one activation buffer.
        var perStep = (GC.GetAllocatedBytesForCurrentThread() - bytes) / 5;
        Assert.True(perStep < 400_000, $"{perStep} bytes allocated per step");
    }
}
