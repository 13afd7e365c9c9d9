using MoraEngine.Autograd;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>
    /// Fused multi-head causal self-attention. <paramref name="q"/>, <paramref name="k"/>, <paramref name="v"/> are
    /// [B, T, D] with D = heads·headDim (head h uses columns [h·headDim, (h+1)·headDim), as produced by separate
    /// q/k/v Linear layers); the result is [B, T, D] in the same layout, ready for the output projection.
    /// Per batch and head: softmax(Q·Kᵀ/√headDim, position t attends to positions ≤ t)·V. The heads are read in
    /// place (no head-major copies); the attention probabilities [B, heads, T, T] are kept for backward.
    /// Apply <see cref="Rope"/> to q and k first for rotary positions.
    /// </summary>
    public static Tensor CausalSelfAttention(Tensor q, Tensor k, Tensor v, int heads)
    {
        Tensor.SameDevice("CausalSelfAttention", q, k);
        Tensor.SameDevice("CausalSelfAttention", q, v);
        if (q.Rank != 3 || !ShapeUtil.Equal(q.Shape, k.Shape) || !ShapeUtil.Equal(q.Shape, v.Shape))
            throw new ArgumentException($"CausalSelfAttention: q, k and v must share one [B, T, D] shape, got q {q.ShapeText}, k {k.ShapeText}, v {v.ShapeText}.");
        int B = q.Dim(0), T = q.Dim(1), D = q.Dim(2);
        if (heads <= 0 || D % heads != 0)
            throw new ArgumentException($"CausalSelfAttention: model width {D} of {q.ShapeText} is not divisible by {heads} heads.", nameof(heads));
        var hd = D / heads;
        q = Contiguous(q);
        k = Contiguous(k);
        v = Contiguous(v);
        var scale = hd == 0 ? 1f : 1f / MathF.Sqrt(hd);
        var output = Tensor.Empty(q.Device, [B, T, D]);
        var probs = Tensor.Empty(q.Device, [B, heads, T, T]);
        var be = q.Device.Backend;
        be.CausalAttention(q, k, v, D, output, probs, B, T, heads, hd, scale);

        if (Graph.Needs([q, k, v]))
            Graph.Record("CausalSelfAttention", output, [q, k, v], gy =>
            {
                // Slots in the order q, k, v: the kernel applies them in that order, so shared inputs add up correctly.
                Tensor? gq = null, gk = null, gv = null;
                bool aq = false, ak = false, av = false;
                if (q.RequiresGrad) (gq, aq) = Graph.GradSlot(q);
                if (k.RequiresGrad) (gk, ak) = Graph.GradSlot(k);
                if (v.RequiresGrad) (gv, av) = Graph.GradSlot(v);
                be.CausalAttentionBackward(q, k, v, D, probs, gy, gq, aq, gk, ak, gv, av, B, T, heads, hd, scale);
            });
        return output;
    }

    /// <summary>
    /// <see cref="CausalSelfAttention(Tensor, Tensor, Tensor, int)"/> of one fused projection <paramref name="qkv"/>
    /// [B, T, 3·D] whose rows hold q, k and v side by side (GPT-2's <c>c_attn</c>). The three are read in place and
    /// their gradients written into the columns of qkv's gradient: the same result as
    /// <see cref="Split"/> followed by the three-input op, without its three copies forward and its zeroed gradient
    /// and three strided adds backward.
    /// </summary>
    public static Tensor CausalSelfAttentionQkv(Tensor qkv, int heads)
    {
        if (qkv.Rank != 3 || qkv.Dim(2) % 3 != 0)
            throw new ArgumentException($"CausalSelfAttentionQkv: expects qkv of shape [B, T, 3·D], got {qkv.ShapeText}.", nameof(qkv));
        int B = qkv.Dim(0), T = qkv.Dim(1), D = qkv.Dim(2) / 3;
        if (heads <= 0 || D % heads != 0)
            throw new ArgumentException($"CausalSelfAttentionQkv: model width {D} of {qkv.ShapeText} is not divisible by {heads} heads.", nameof(heads));
        var hd = D / heads;
        qkv = Contiguous(qkv);
        var (q, k, v) = ColumnThirds(qkv, B, T, D);
        var scale = hd == 0 ? 1f : 1f / MathF.Sqrt(hd);
        var output = Tensor.Empty(qkv.Device, [B, T, D]);
        var probs = Tensor.Empty(qkv.Device, [B, heads, T, T]);
        var be = qkv.Device.Backend;
        be.CausalAttention(q, k, v, 3 * D, output, probs, B, T, heads, hd, scale);

        if (Graph.Needs(qkv))
            Graph.Record("CausalSelfAttentionQkv", output, [qkv], gy =>
            {
                // The three gradients fill disjoint columns, so a fresh slot needs no zeroing.
                var (g, acc) = Graph.GradSlot(qkv);
                var (gq, gk, gv) = ColumnThirds(g, B, T, D);
                be.CausalAttentionBackward(q, k, v, 3 * D, probs, gy, gq, acc, gk, acc, gv, acc, B, T, heads, hd, scale);
            });
        return output;
    }

    /// <summary>
    /// Views of x [B, T, 3·D] starting at columns 0, D and 2D, for kernels that step its rows by 3·D: each view's own
    /// shape [B, T, D] names its logical size, not a contiguous block.
    /// </summary>
    private static (Tensor, Tensor, Tensor) ColumnThirds(Tensor x, int B, int T, int D) =>
        (x.ViewOf(x.Offset, [B, T, D], false), x.ViewOf(x.Offset + D, [B, T, D], false), x.ViewOf(x.Offset + 2 * D, [B, T, D], false));
}

public static partial class Ops
{
    /// <summary>
    /// Grouped-query attention's key/value sharing: x [B, T, kvHeads·headDim] → [B, T, kvHeads·groups·headDim], where
    /// output head h is input head h / <paramref name="groups"/> (Hugging Face's <c>repeat_kv</c>, laid out by column).
    /// The backward sums each group's gradients into its shared head.
    /// </summary>
    public static Tensor RepeatHeads(Tensor x, int kvHeads, int groups)
    {
        if (x.Rank != 3)
            throw new ArgumentException($"RepeatHeads: expects x of shape [B, T, D], got {x.ShapeText}.", nameof(x));
        if (kvHeads <= 0 || x.Dim(2) % kvHeads != 0)
            throw new ArgumentException($"RepeatHeads: width {x.Dim(2)} of {x.ShapeText} does not split into {kvHeads} heads.", nameof(kvHeads));
        if (groups <= 0) throw new ArgumentOutOfRangeException(nameof(groups), $"RepeatHeads: groups must be positive, got {groups}.");
        if (groups == 1) return x;
        x = Contiguous(x);
        int B = x.Dim(0), T = x.Dim(1), D = x.Dim(2), hd = D / kvHeads, outD = D * groups, rows = B * T;
        var y = Tensor.Empty(x.Device, [B, T, outD]);
        var be = x.Device.Backend;
        for (var j = 0; j < kvHeads; j++)
            for (var g = 0; g < groups; g++)
                be.CopyColumns(x, j * hd, D, y, (j * groups + g) * hd, outD, rows, hd, false);
        if (Graph.Needs(x))
            Graph.Record("RepeatHeads", y, [x], gy =>
            {
                var gx = Graph.GradZeroed(x);
                for (var j = 0; j < kvHeads; j++)
                    for (var g = 0; g < groups; g++)
                        be.CopyColumns(gy, (j * groups + g) * hd, outD, gx, j * hd, D, rows, hd, true);
            });
        return y;
    }
}
