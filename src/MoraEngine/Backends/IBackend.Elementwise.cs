namespace MoraEngine.Backends;

/// <summary>Binary arithmetic with broadcasting.</summary>
public enum BinaryOp
{
    Add,
    Sub,
    Mul,
    Div,
}

/// <summary>Pointwise functions with a derivative.</summary>
public enum UnaryOp
{
    Exp,
    Log,
    Tanh,
    /// <summary>GELU, tanh approximation (GPT-2).</summary>
    Gelu,
    /// <summary>x·sigmoid(x).</summary>
    Silu,
    Sigmoid,
    Relu,
    Sqrt,
}

public partial interface IBackend
{
    /// <summary>c = a ∘ b under a broadcast plan (see <see cref="Broadcast"/>).</summary>
    void Binary(BinaryOp op, Tensor a, Tensor b, Tensor c, Broadcast plan);

    /// <summary>
    /// Reduces <paramref name="src"/> (the plan's output shape) onto <paramref name="dst"/> (one of its inputs'
    /// shapes) by summing over the broadcast axes, after multiplying by <paramref name="other"/> (the other
    /// operand, in its own broadcast layout) when given. <paramref name="which"/> 0 = dst is operand a, 1 = b.
    /// Writes or, with <paramref name="accumulate"/>, adds.
    /// </summary>
    void BroadcastBackward(Tensor src, Tensor? other, Tensor dst, Broadcast plan, int which, float scale, bool accumulate);

    /// <summary>y = f(x).</summary>
    void Unary(UnaryOp op, Tensor x, Tensor y);

    /// <summary>gx (+)= f'(x)·gy; <paramref name="y"/> is f(x), used where cheaper.</summary>
    void UnaryBackward(UnaryOp op, Tensor x, Tensor y, Tensor gy, Tensor gx, bool accumulate);

    /// <summary>SwiGLU's product, y = silu(gate)·up, elementwise over three tensors of one shape.</summary>
    void SwiGlu(Tensor gate, Tensor up, Tensor y)
    {
        var s = Tensor.EmptyIn(gate.Device, gate.ShapeArray, MemoryScope.Current);
        Unary(UnaryOp.Silu, gate, s);
        Binary(BinaryOp.Mul, s, up, y, Broadcast.Plan("SwiGlu", s.Shape, up.Shape));
    }

    /// <summary>
    /// <see cref="SwiGlu"/>'s backward: gGate (+)= gy·up·silu′(gate) and gUp (+)= gy·silu(gate), each when given
    /// (with accumulate, added to what the buffer holds).
    /// </summary>
    void SwiGluBackward(Tensor gate, Tensor up, Tensor gy, Tensor? gGate, bool accumulateGate, Tensor? gUp, bool accumulateUp)
    {
        var plan = Broadcast.Plan("SwiGlu", gate.Shape, up.Shape);
        var s = Tensor.EmptyIn(gate.Device, gate.ShapeArray, MemoryScope.Current);
        Unary(UnaryOp.Silu, gate, s);
        if (gUp != null) BroadcastBackward(gy, s, gUp, plan, 1, 1f, accumulateUp);
        if (gGate == null) return;
        var t = Tensor.EmptyIn(gate.Device, gate.ShapeArray, MemoryScope.Current);
        Binary(BinaryOp.Mul, gy, up, t, plan);
        UnaryBackward(UnaryOp.Silu, gate, s, t, gGate, accumulateGate);
    }

    /// <summary>y = alpha·x (+ y when accumulate).</summary>
    void Scale(Tensor x, float alpha, Tensor y, bool accumulate);

    /// <summary>y += value.</summary>
    void AddScalar(Tensor y, float value);

    /// <summary>y[o, i] = Σ_j x[o, j, i] · scale for x viewed as outer×n×inner.</summary>
    void ReduceSum(Tensor x, Tensor y, int outer, int n, int inner, float scale);

    /// <summary>gx[o, j, i] (+)= gy[o, i] · scale (the backward of <see cref="ReduceSum"/>).</summary>
    void ExpandSum(Tensor gy, Tensor gx, int outer, int n, int inner, float scale, bool accumulate);

    /// <summary>Σ x² over the whole tensor, in double precision.</summary>
    double SumSquares(Tensor x);
}
