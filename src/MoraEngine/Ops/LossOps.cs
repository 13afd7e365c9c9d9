using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// Mean cross-entropy of <paramref name="logits"/> ([N, V], or [B, T, V] and so on, flattened to rows of V)
    /// against class indices, one per row, skipping rows whose target is <paramref name="ignoreIndex"/>.
    /// Returns a scalar; if every row is ignored the loss and its gradient are 0.
    /// Fused: the forward keeps only each row's log-sum-exp, and the backward writes
    /// (softmax − onehot)·gy/count in one pass. <paramref name="targets"/> is copied when a backward is recorded.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, int[] targets, int ignoreIndex = -100)
    {
        ArgumentNullException.ThrowIfNull(targets);
        var (rows, v) = CheckCrossEntropy(logits, targets, null);
        var count = 0;
        for (var r = 0; r < rows; r++)
        {
            var t = targets[r];
            if (t == ignoreIndex) continue;
            if ((uint)t >= (uint)v)
                throw new ArgumentException($"CrossEntropy: target {t} at row {r} is outside [0, {v}) for logits {logits.ShapeText} (and is not the ignore index {ignoreIndex}).", nameof(targets));
            count++;
        }
        return CrossEntropyImpl(logits, targets, null, ignoreIndex, rows, v, count);
    }

    /// <summary>
    /// Weighted mean cross-entropy: Σ mask·nll / Σ mask over rows, for logits flattened to rows of V, one target and
    /// one non-negative weight per row. Rows of weight 0 are skipped entirely (their target is not checked), so a
    /// padding mask can sit next to any placeholder target. If Σ mask is 0 the loss and its gradient are 0.
    /// <paramref name="targets"/> and <paramref name="mask"/> are copied when a backward is recorded.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, int[] targets, float[] mask)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(mask);
        var (rows, v) = CheckCrossEntropy(logits, targets, mask);
        double total = 0;
        for (var r = 0; r < rows; r++)
        {
            var m = mask[r];
            if (!(m >= 0f) || float.IsInfinity(m))
                throw new ArgumentException($"CrossEntropy: mask value {m} at row {r} must be finite and non-negative.", nameof(mask));
            if (m == 0f) continue;
            var t = targets[r];
            if ((uint)t >= (uint)v)
                throw new ArgumentException($"CrossEntropy: target {t} at row {r} is outside [0, {v}) for logits {logits.ShapeText}.", nameof(targets));
            total += m;
        }
        return CrossEntropyImpl(logits, targets, mask, int.MinValue, rows, v, total);
    }

    private static (int rows, int v) CheckCrossEntropy(Tensor logits, int[] targets, float[]? mask)
    {
        if (logits.Rank < 2 || logits.Dim(-1) == 0)
            throw new ArgumentException($"CrossEntropy: logits {logits.ShapeText} must be [.., V] with at least 2 dimensions and V > 0.", nameof(logits));
        var v = logits.Dim(-1);
        var rows = logits.Length / v;
        if (targets.Length != rows)
            throw new ArgumentException($"CrossEntropy: {targets.Length} targets for logits {logits.ShapeText} ({rows} rows).", nameof(targets));
        if (mask != null && mask.Length != rows)
            throw new ArgumentException($"CrossEntropy: {mask.Length} mask values for logits {logits.ShapeText} ({rows} rows).", nameof(mask));
        return (rows, v);
    }

    private static Tensor CrossEntropyImpl(Tensor logits, int[] targets, float[]? weights, int ignoreIndex, int rows, int v, double denominator)
    {
        logits = Contiguous(logits);
        var be = logits.Device.Backend;
        var scale = denominator > 0 ? (float)(1.0 / denominator) : 0f;
        var lse = Tensor.Empty(logits.Device, [rows]);
        var loss = Tensor.Empty(logits.Device, []);
        be.CrossEntropy(logits, targets, weights, ignoreIndex, scale, lse, loss, rows, v);
        if (Graph.Needs(logits))
        {
            // The caller may refill its arrays before backward runs (a reused batch buffer).
            var t = (int[])targets.Clone();
            var w = (float[]?)weights?.Clone();
            Graph.Record("CrossEntropy", loss, [logits], gy =>
            {
                var (gl, acc) = Graph.GradSlot(logits);
                be.CrossEntropyBackward(logits, t, w, ignoreIndex, scale, lse, gy, gl, acc, rows, v);
            });
        }
        return loss;
    }
}
