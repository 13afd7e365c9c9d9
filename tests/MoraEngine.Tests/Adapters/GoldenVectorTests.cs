using System.Text.Json;
using MoraEngine;
using MoraEngine.Adapters;
using Xunit;

namespace MoraEngine.Tests;

/// <summary>
/// The MoRA operator against golden vectors computed (float64) from the official implementation: r̂, the compressed
/// input, ΔW·x and ΔW itself. File: $MORA_GOLDEN_VECTORS, else the repository's copy
/// <c>tests/MoraEngine.Tests/TestData/mora-vectors.json</c> (copied to the output directory; see TestData/README.md).
/// A missing or empty file fails the suite loudly (the theory then has one failing row) rather than silently testing
/// nothing. Each case runs through the generated (specialised) kernels and through the generic ones.
/// </summary>
public class GoldenVectorTests
{
    private const double Tolerance = 1e-5;

    /// <summary>The theory's row when the file is missing or has no cases: it fails with <see cref="Problem"/>.</summary>
    private const int NoCases = -1;

    private static string VectorsPath()
    {
        var env = Environment.GetEnvironmentVariable("MORA_GOLDEN_VECTORS");
        return !string.IsNullOrEmpty(env)
            ? Path.GetFullPath(env)
            : Path.Combine(AppContext.BaseDirectory, "TestData", "mora-vectors.json");
    }

    private static JsonElement[] LoadCases()
    {
        var path = VectorsPath();
        if (!File.Exists(path)) return [];
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.Clone()).ToArray();
    }

    /// <summary>Why there is nothing to test, or null when the file has cases.</summary>
    private static string? Problem()
    {
        var path = VectorsPath();
        if (!File.Exists(path))
            return $"golden vector file not found: {path} (the repository's copy is tests/MoraEngine.Tests/TestData/mora-vectors.json, " +
                   "copied to the test output directory by the csproj; MORA_GOLDEN_VECTORS overrides it)";
        return LoadCases().Length == 0 ? $"golden vector file {path} has no cases" : null;
    }

    /// <summary>
    /// One row per case (its index) and path: the generated kernels for the shape (GoldenKernels.cs declares them for
    /// this assembly) and the generic ones. Never empty: without cases there is one <see cref="NoCases"/> row, which fails.
    /// </summary>
    public static IEnumerable<object[]> Cases()
    {
        var n = LoadCases().Length;
        return n == 0
            ? [[NoCases, false]]
            : Enumerable.Range(0, n).SelectMany(i => new[] { new object[] { i, true }, new object[] { i, false } });
    }

    [Fact]
    public void VectorFile_ExistsAndHasCases()
    {
        var problem = Problem();
        Assert.True(problem == null, problem);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Case_MatchesOfficialImplementation(int index, bool specialised)
    {
        if (index == NoCases) Assert.Fail(Problem() ?? "golden vector cases appeared after test discovery; run the tests again");
        var c = LoadCases()[index];
        int inF = c.GetProperty("in_features").GetInt32(), outF = c.GetProperty("out_features").GetInt32();
        var type = (MoraType)c.GetProperty("mora_type").GetInt32();
        var rHat = c.GetProperty("r_hat").GetInt32();
        var label = $"case {index} (type {type}, {inF} → {outF}, r̂ {rHat}, {(specialised ? "specialised" : "generic")} kernels)";

        Assert.True(rHat == MoraOperator.RankHat(inF, outF, c.GetProperty("lora_rank").GetInt32(), type), $"{label}: r̂");
        var op = new MoraOperator(inF, outF, rHat, type, specialised);
        Assert.True(specialised == (op.Kernels != null) || !System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated, $"{label}: kernel path");
        var x = Floats(c, "x");
        var m = Floats(c, "M");
        var rows = x.Length / inF;

        // Compressed values, all chunks, straight from the kernel.
        var shape = c.GetProperty("compressed_shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(rows * op.CompressedWidth, shape.Aggregate(1, (a, b) => a * b));
        var xt = Tensor.FromArray(x, rows, inF);
        var xc = Tensor.Zeros(rows, op.CompressedWidth);
        xt.Device.Backend.MoraCompress(op, xt, xc, rows, op.Chunks);
        AssertClose(xc.ToArray(), Floats(c, "compressed"), $"{label}: compressed");

        // ΔW·x through the fused op (zero base) and ΔW from the merge path.
        var y = Ops.MoraDelta(xt, Tensor.FromArray(m, rHat, rHat), op, Tensor.Zeros(rows, outF));
        AssertClose(y.ToArray(), Floats(c, "delta_output"), $"{label}: delta_output");
        AssertClose(op.DeltaWeight(m), Floats(c, "delta_weight"), $"{label}: delta_weight");
    }

    private static float[] Floats(JsonElement c, string name) =>
        c.GetProperty(name).EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();

    /// <summary>max|a − b| / max(max|b|, tiny) below <see cref="Tolerance"/>.</summary>
    private static void AssertClose(float[] actual, float[] expected, string what)
    {
        Assert.True(actual.Length == expected.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        double err = 0, scale = 1e-30;
        for (var i = 0; i < actual.Length; i++)
        {
            err = Math.Max(err, Math.Abs((double)actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs((double)expected[i]));
        }
        Assert.True(err / scale < Tolerance, $"{what}: relative error {err / scale:E3} (max abs error {err:E3}, scale {scale:E3})");
    }
}
