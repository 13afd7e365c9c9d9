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

public class PoolSizeClassTests
{
    [Theory]
    [InlineData(1, 16)]
    [InlineData(16, 16)]
    [InlineData(17, 20)]
    [InlineData(100, 112)]
    [InlineData(1024, 1024)]
    [InlineData(1025, 1280)]
    [InlineData(3000, 3072)]
    public void SizeClass_RoundsUpByAtMostAQuarter(int length, int expected)
    {
        Assert.Equal(expected, BufferPool.SizeClass(length));
    }

    [Fact]
    public void SizeClasses_AreMonotoneAndWasteAtMost25Percent()
    {
        var last = 0;
        for (var n = 1; n < 200_000; n += 1 + n / 50)
        {
            var c = BufferPool.SizeClass(n);
            Assert.True(c >= n && c >= last && (n <= 16 || c <= n * 1.25 + 1), $"class {c} for {n}");
            last = c;
        }
    }

    [Fact]
    public void DriftingSizes_ReuseBuffers_AndFreeBytesStayBounded()
    {
        // A private device pool, so other tests' buffers do not move the counters.
        var pool = new BufferPool(Device.Cpu);
        pool.MinFreeBytes = 0;
        // A working set of one 1 MiB buffer, then a slowly growing request as in token-by-token decoding.
        pool.Return(pool.Rent(1 << 18));
        for (var n = 1000; n < 5000; n++) pool.Return(pool.Rent(n));
        Assert.True(pool.Created < 20, $"{pool.Created} buffers created for 4,000 drifting requests");
        Assert.True(pool.FreeBytes <= Math.Max(pool.MinFreeBytes, pool.PeakInUseBytes) + (1 << 20), $"free {pool.FreeBytes} > the peak in use {pool.PeakInUseBytes}");
        // Many distinct large sizes: the least recently used ones are released, not hoarded.
        for (var n = 1; n <= 40; n++) pool.Return(pool.Rent(n * 100_003));
        Assert.True(pool.Released > 0);
        Assert.True(pool.FreeBytes <= pool.PeakInUseBytes);
    }
}

[Collection("Pool counters")]
public class DecodingMemoryTests
{
    [Fact]
    public void CachedDecoding_CreatesNoBuffersAfterTheFirstSteps()
    {
        var m = MoraEngine.IO.HuggingFace.Load(MoraEngine.Tests.HfModels.HfFixtures.Dir("llama-tiny-gqa"));
        var gen = new MoraEngine.Generation.TextGenerator(m);
        gen.Prefill([1, 5, 9]);
        var next = 7;
        for (var i = 0; i < 3; i++) next = MoraEngine.Generation.Sampler.ArgMax(gen.Step(next));
        var created = Device.Cpu.Pool.Created;
        for (var i = 0; i < 50; i++) next = MoraEngine.Generation.Sampler.ArgMax(gen.Step(next));
        Assert.Equal(created, Device.Cpu.Pool.Created);
    }
}
