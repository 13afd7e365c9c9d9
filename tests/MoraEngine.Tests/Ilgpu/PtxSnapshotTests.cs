using System.Reflection;
using MoraEngine.Backends.Ilgpu;
using Xunit;

namespace MoraEngine.Tests.Ilgpu;

/// <summary>
/// The PTX ILGPU emits for SM_90 for the main kernels (the tiled SGEMM, the causal row softmax of attention, the
/// MoRA compression and its backward), compiled without a device and compared with checked-in snapshots so that a
/// codegen change (ours or ILGPU's) shows up in review. The PTX depends on whether the kernels' IL was optimised, so
/// each snapshot exists for Release and for Debug (see <see cref="PtxSnapshot"/>).
/// </summary>
[Trait("Backend", "Ilgpu")]
public class PtxSnapshotTests
{
    public static TheoryData<string, string, bool> Kernels() => new()
    {
        { "ptx-gemm-tiled", "GemmTiledKernel", true },
        { "ptx-gemm-tf32", "GemmTf32Kernel", true },
        { "ptx-attention-softmax", "SoftmaxKernel", true },
        { "ptx-mora-compress", "MoraCompressKernel", false },
        { "ptx-mora-compress-backward", "MoraCompressBackwardKernel", false },
    };

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Ptx_MatchesSnapshot(string snapshot, string method, bool explicitlyGrouped)
    {
        var mi = typeof(IlgpuBackend).GetMethod(method, BindingFlags.NonPublic | BindingFlags.Static)
            ?? throw new InvalidOperationException($"No kernel method {method}.");
        var ptx = PtxSnapshot.Compile(mi, explicitlyGrouped);
        Assert.Contains(".entry", ptx);
        PtxSnapshot.Verify(snapshot, ptx, mi);
    }

    [Fact]
    public void Ptx_OfTf32Gemm_UsesTensorCoreMma()
    {
        // On CUDA the inline PTX is taken; ILGPU leaves the emulation behind a constant-false branch
        // (setp.ne 1, 1) that the driver's compiler removes.
        var mi = typeof(IlgpuBackend).GetMethod("GemmTf32Kernel", BindingFlags.NonPublic | BindingFlags.Static)!;
        var ptx = PtxSnapshot.Compile(mi, true);
        var mma = ptx.Split('\n').Count(l => l.Contains("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32", StringComparison.Ordinal));
        Assert.Equal(16, mma); // 4 × 4 tiles per k slice of 8
        Assert.Contains("cvt.rna.tf32.f32", ptx);
    }

    [Fact]
    public void Ptx_OfGeneratedMoraKernel_MatchesSnapshot_WithLiteralSizes()
    {
        // The generated compression of the 512 → 2048, r̂ = 143 type-1 layer (small-gpu's up projection): every size
        // is an immediate, and the type's branch is gone.
        var op = new MoraEngine.Adapters.MoraOperator(512, 2048, 143, MoraEngine.Adapters.MoraType.Sharing);
        var kernel = op.DeviceKernels?.Compress ?? throw new InvalidOperationException($"{op}: no device kernels.");
        var ptx = PtxSnapshot.Compile(kernel.Method, false);
        Assert.Contains(".entry", ptx);
        Assert.Contains("143", ptx);
        PtxSnapshot.Verify("ptx-mora-compress-512x2048-r143-sharing", ptx, kernel.Method);
    }

    [Fact]
    public void PtxSnapshots_ExistForBothConfigurations()
    {
        // A run checks only its own configuration's files, so a snapshot accepted in one configuration alone would
        // leave the other stale or missing; this catches that in either.
        var dir = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(ThisFile())!)!, "Snapshots");
        var release = Directory.GetFiles(dir, "ptx-*.verified.txt").Select(Path.GetFileName)
            .Where(f => !f!.EndsWith(".Debug.verified.txt", StringComparison.Ordinal))
            .Select(f => f![..^".verified.txt".Length]).Order(StringComparer.Ordinal).ToArray();
        var debug = Directory.GetFiles(dir, "ptx-*.Debug.verified.txt").Select(Path.GetFileName)
            .Select(f => f![..^".Debug.verified.txt".Length]).Order(StringComparer.Ordinal).ToArray();
        Assert.NotEmpty(release);
        Assert.Equal(release, debug);
    }

    private static string ThisFile([System.Runtime.CompilerServices.CallerFilePath] string path = "") => path;

    [Fact]
    public void Ptx_IsStable_AcrossCompilations()
    {
        var mi = typeof(IlgpuBackend).GetMethod("MoraCompressKernel", BindingFlags.NonPublic | BindingFlags.Static)!;
        Assert.Equal(PtxSnapshot.Compile(mi, false), PtxSnapshot.Compile(mi, false));
    }
}
