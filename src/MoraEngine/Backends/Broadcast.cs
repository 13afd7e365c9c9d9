namespace MoraEngine.Backends;

/// <summary>
/// How two shapes broadcast against each other (NumPy rules), with adjacent axes merged where both operands agree
/// so kernels see as few axes as possible: a same-shape add is one axis, a bias add two.
/// </summary>
public sealed class Broadcast
{
    private Broadcast(int[] outShape, int[] dims, int[] stridesA, int[] stridesB)
    {
        OutShape = outShape;
        Dims = dims;
        StridesA = stridesA;
        StridesB = stridesB;
        Length = ShapeUtil.Count(outShape);
    }

    /// <summary>The broadcast result shape.</summary>
    public int[] OutShape { get; }

    /// <summary>Merged axes of the result.</summary>
    public int[] Dims { get; }

    /// <summary>Element strides of a along <see cref="Dims"/> (0 where a is broadcast).</summary>
    public int[] StridesA { get; }

    /// <summary>Element strides of b along <see cref="Dims"/> (0 where b is broadcast).</summary>
    public int[] StridesB { get; }

    /// <summary>Elements in the result.</summary>
    public int Length { get; }

    /// <summary>True when both operands have the result's shape.</summary>
    public bool IsSameShape => Dims.Length == 1 && StridesA[0] == 1 && StridesB[0] == 1;

    /// <summary>Plans <paramref name="a"/> ∘ <paramref name="b"/>; an <see cref="ArgumentException"/> naming the op and both shapes if they do not broadcast.</summary>
    public static Broadcast Plan(string op, ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        var rank = Math.Max(a.Length, b.Length);
        var outShape = new int[rank];
        var sa = new int[rank];
        var sb = new int[rank];
        int strideA = 1, strideB = 1;
        for (var i = rank - 1; i >= 0; i--)
        {
            var ia = i - (rank - a.Length);
            var ib = i - (rank - b.Length);
            var da = ia >= 0 ? a[ia] : 1;
            var db = ib >= 0 ? b[ib] : 1;
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"{op}: shapes {ShapeUtil.Format(a)} and {ShapeUtil.Format(b)} do not broadcast (axis {i}: {da} vs {db}).");
            var d = Math.Max(da, db);
            if (da == 0 || db == 0) d = 0;
            outShape[i] = d;
            sa[i] = da == 1 && d != 1 ? 0 : strideA;
            sb[i] = db == 1 && d != 1 ? 0 : strideB;
            strideA *= da;
            strideB *= db;
        }

        // Merge axis i into i+1 when both operands are contiguous across the pair (or broadcast across both).
        var dims = new List<int>(rank);
        var msa = new List<int>(rank);
        var msb = new List<int>(rank);
        for (var i = rank - 1; i >= 0; i--)
        {
            if (outShape[i] == 1 && rank > 1) continue;
            if (dims.Count > 0)
            {
                var j = dims.Count - 1;
                var mergeA = sa[i] == (msa[j] == 0 ? 0 : msa[j] * dims[j]) && (msa[j] != 0 || sa[i] == 0);
                var mergeB = sb[i] == (msb[j] == 0 ? 0 : msb[j] * dims[j]) && (msb[j] != 0 || sb[i] == 0);
                if (mergeA && mergeB)
                {
                    dims[j] *= outShape[i];
                    continue;
                }
            }
            dims.Add(outShape[i]);
            msa.Add(sa[i]);
            msb.Add(sb[i]);
        }
        if (dims.Count == 0)
        {
            dims.Add(1);
            msa.Add(1);
            msb.Add(1);
        }
        dims.Reverse();
        msa.Reverse();
        msb.Reverse();
        return new Broadcast(outShape, dims.ToArray(), msa.ToArray(), msb.ToArray());
    }
}
