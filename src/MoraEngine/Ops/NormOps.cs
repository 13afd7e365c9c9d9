using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// Layer normalisation over the last axis: (x − mean)/√(var + eps)·weight + bias, with the biased variance,
    /// for x [.., d] and weight/bias [d]. One fused kernel each way; the per-row mean and 1/std are kept for the
    /// backward, and the weight/bias gradients are summed over rows in a fixed order (bit-identical run to run).
    /// </summary>
    public static Tensor LayerNorm(Tensor x, Tensor weight, Tensor? bias, float eps = 1e-5f)
    {
        var d = CheckNorm("LayerNorm", x, weight, bias, eps);
        x = Contiguous(x);
        var rows = x.Length / d;
        var be = x.Device.Backend;
        var y = Tensor.Empty(x.Device, (int[])x.ShapeArray.Clone());
        var mean = Tensor.Empty(x.Device, [rows]);
        var rstd = Tensor.Empty(x.Device, [rows]);
        be.LayerNorm(x, weight, bias, y, mean, rstd, rows, d, eps);

        var inputs = bias == null ? new[] { x, weight } : new[] { x, weight, bias };
        if (Graph.Needs(inputs))
            Graph.Record("LayerNorm", y, inputs, gy =>
            {
                Tensor? gx = null, gw = null, gb = null;
                bool accX = false, accW = false, accB = false;
                if (x.RequiresGrad) (gx, accX) = Graph.GradSlot(x);
                if (weight.RequiresGrad) (gw, accW) = Graph.GradSlot(weight);
                if (bias is { RequiresGrad: true }) (gb, accB) = Graph.GradSlot(bias);
                be.LayerNormBackward(x, weight, mean, rstd, gy, gx, accX, gw, accW, gb, accB, rows, d);
            });
        return y;
    }

    /// <summary>
    /// RMS normalisation over the last axis (LLaMA): x/√(mean(x²) + eps)·weight, for x [.., d] and weight [d].
    /// Fused kernels; the per-row 1/rms is kept for the backward; the weight gradient is summed in a fixed order.
    /// </summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, float eps = 1e-6f)
    {
        var d = CheckNorm("RmsNorm", x, weight, null, eps);
        x = Contiguous(x);
        var rows = x.Length / d;
        var be = x.Device.Backend;
        var y = Tensor.Empty(x.Device, (int[])x.ShapeArray.Clone());
        var rstd = Tensor.Empty(x.Device, [rows]);
        be.RmsNorm(x, weight, y, rstd, rows, d, eps);

        if (Graph.Needs(x, weight))
            Graph.Record("RmsNorm", y, [x, weight], gy =>
            {
                Tensor? gx = null, gw = null;
                bool accX = false, accW = false;
                if (x.RequiresGrad) (gx, accX) = Graph.GradSlot(x);
                if (weight.RequiresGrad) (gw, accW) = Graph.GradSlot(weight);
                be.RmsNormBackward(x, weight, rstd, gy, gx, accX, gw, accW, rows, d);
            });
        return y;
    }

    /// <summary>Validates a normalisation's operands; returns the normalised size d.</summary>
    private static int CheckNorm(string op, Tensor x, Tensor weight, Tensor? bias, float eps)
    {
        Tensor.SameDevice(op, x, weight);
        if (bias != null) Tensor.SameDevice(op, x, bias);
        if (x.Rank < 1 || x.Dim(-1) == 0)
            throw new ArgumentException($"{op}: input {x.ShapeText} needs a non-empty last axis to normalise over.", nameof(x));
        var d = x.Dim(-1);
        if (weight.Rank != 1 || weight.Dim(0) != d)
            throw new ArgumentException($"{op}: weight {weight.ShapeText} does not match input {x.ShapeText} (expects [{d}]).", nameof(weight));
        if (bias != null && (bias.Rank != 1 || bias.Dim(0) != d))
            throw new ArgumentException($"{op}: bias {bias.ShapeText} does not match input {x.ShapeText} (expects [{d}]).", nameof(bias));
        if (!(eps >= 0f) || float.IsInfinity(eps))
            throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{op}: eps must be finite and non-negative, got {eps}.");
        return d;
    }
}
