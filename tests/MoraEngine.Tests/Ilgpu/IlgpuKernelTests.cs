using MoraEngine.Backends;
using MoraEngine.Backends.Ilgpu;
using MoraEngine.Diagnostics;
using Xunit;

namespace MoraEngine.Tests.Ilgpu;

/// <summary>
/// Every ILGPU kernel against the managed CPU reference on ILGPU's CPU accelerator (CUDA's warp size and group
/// limits), on random inputs of awkward sizes. The cases live in <see cref="BackendParity"/> so that
/// <c>mora selftest --device cuda</c> runs the same checks on a GPU. Select with <c>--filter Backend=Ilgpu</c>.
/// </summary>
[Trait("Backend", "Ilgpu")]
[Collection("Ilgpu")]
public class IlgpuKernelTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var n in BackendParity.CaseNames(includeLarge: false)) data.Add(n);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kernel_MatchesCpuReference(string name)
    {
        var r = BackendParity.Run(name, IlgpuFixture.Device);
        Assert.True(r.Passed, BackendParity.Format(r));
    }

    [Fact]
    public void RowKernels_WarpPerRow_MatchCpuReference()
    {
        // The GPU's one-warp-per-row path (shuffle reductions), emulated: slow on the CPU accelerator, so one pass
        // over the row kernels at small sizes.
        var be = (IlgpuBackend)IlgpuFixture.Device.Backend;
        var keep = be.RowLanes;
        be.RowLanes = 32;
        try
        {
            foreach (var name in new[] { "layernorm", "softmax", "cross-entropy" })
            {
                var r = BackendParity.Run(name, IlgpuFixture.Device);
                Assert.True(r.Passed, BackendParity.Format(r));
            }
        }
        finally
        {
            be.RowLanes = keep;
        }
    }
}

[CollectionDefinition("Ilgpu", DisableParallelization = true)]
public class IlgpuCollection;

/// <summary>One ILGPU CPU accelerator for the whole test run (creating one compiles nothing, but kernels are cached per accelerator).</summary>
internal static class IlgpuFixture
{
    public static Device Device => Devices.IlgpuCpu();
}
