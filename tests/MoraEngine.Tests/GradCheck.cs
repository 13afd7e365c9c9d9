using MoraEngine;
using MoraEngine.Autograd;
using Xunit;

namespace MoraEngine.Tests;

/// <summary>
/// Finite-difference gradient checks. The engine's analytic gradients (float32) are compared with central
/// differences of a float64 reference implementation of the same function (tight: the reference's differences are
/// nearly exact), and the engine's forward values with the reference's.
/// </summary>
public static class GradCheck
{
    /// <summary>
    /// Checks <paramref name="op"/> against <paramref name="reference"/> on the given inputs.
    /// The scalar loss is Σ out·R for a fixed random R, so every output element matters.
    /// </summary>
    /// <param name="inputs">Input values and shapes; inputs listed in <paramref name="differentiable"/> get gradients.</param>
    /// <param name="op">The engine op under test.</param>
    /// <param name="reference">The same function in float64 on flat arrays (row-major), returning the flat output.</param>
    public static void Check(
        (float[] data, int[] shape)[] inputs,
        Func<Tensor[], Tensor> op,
        Func<double[][], double[]> reference,
        int[]? differentiable = null,
        double forwardTol = 1e-4,
        double gradTol = 2e-3,
        int seed = 7)
    {
        differentiable ??= Enumerable.Range(0, inputs.Length).ToArray();
        var tensors = inputs.Select(i => Tensor.FromArray(i.data, i.shape)).ToArray();
        foreach (var d in differentiable) tensors[d].RequiresGrad = true;

        var output = op(tensors);
        var outValues = output.ToArray();
        var refInputs = inputs.Select(i => i.data.Select(v => (double)v).ToArray()).ToArray();
        var refOut = reference(refInputs);
        Assert.Equal(refOut.Length, outValues.Length);
        var outScale = Math.Max(1.0, refOut.Select(Math.Abs).DefaultIfEmpty(0).Max());
        for (var i = 0; i < refOut.Length; i++)
            Assert.True(Math.Abs(outValues[i] - refOut[i]) <= forwardTol * outScale,
                $"forward[{i}]: engine {outValues[i]} vs reference {refOut[i]}");

        var rng = new Rng((ulong)seed);
        var r = new float[outValues.Length];
        for (var i = 0; i < r.Length; i++) r[i] = rng.NextFloat() * 2 - 1;
        var rT = Tensor.FromArray(r, output.ShapeArray);
        var loss = Ops.SumAll(Ops.Mul(output, rT));
        loss.Backward();

        foreach (var d in differentiable)
        {
            var analytic = tensors[d].Grad?.ToArray() ?? throw new Xunit.Sdk.XunitException($"input {d} got no gradient");
            var x = refInputs[d];
            var numeric = new double[x.Length];
            for (var j = 0; j < x.Length; j++)
            {
                var keep = x[j];
                var h = 1e-6 * Math.Max(1.0, Math.Abs(keep));
                x[j] = keep + h;
                var up = Dot(reference(refInputs), r);
                x[j] = keep - h;
                var down = Dot(reference(refInputs), r);
                x[j] = keep;
                numeric[j] = (up - down) / (2 * h);
            }
            var scale = Math.Max(1.0, numeric.Select(Math.Abs).DefaultIfEmpty(0).Max());
            for (var j = 0; j < x.Length; j++)
                Assert.True(Math.Abs(analytic[j] - numeric[j]) <= gradTol * scale,
                    $"grad of input {d} [{j}]: analytic {analytic[j]} vs numeric {numeric[j]} (scale {scale})");
        }
    }

    private static double Dot(double[] a, float[] b)
    {
        double s = 0;
        for (var i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>Random values in [-scale, scale).</summary>
    public static float[] Rand(Rng rng, int n, float scale = 1f)
    {
        var v = new float[n];
        for (var i = 0; i < v.Length; i++) v[i] = (rng.NextFloat() * 2 - 1) * scale;
        return v;
    }

    /// <summary>Random values bounded away from zero, in ±[lo, hi).</summary>
    public static float[] RandAway(Rng rng, int n, float lo, float hi)
    {
        var v = new float[n];
        for (var i = 0; i < v.Length; i++) v[i] = (lo + (hi - lo) * rng.NextFloat()) * (rng.NextFloat() < 0.5f ? -1 : 1);
        return v;
    }

    public static int Count(params int[] shape) => shape.Aggregate(1, (a, b) => a * b);
}
