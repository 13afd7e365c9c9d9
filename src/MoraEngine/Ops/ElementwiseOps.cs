using MoraEngine.Autograd;
using MoraEngine.Backends;

namespace MoraEngine;

public static partial class Ops
{
    /// <summary>a + b with broadcasting.</summary>
    public static Tensor Add(Tensor a, Tensor b) => BinaryOpImpl("Add", BinaryOp.Add, a, b);

    /// <summary>a − b with broadcasting.</summary>
    public static Tensor Sub(Tensor a, Tensor b) => BinaryOpImpl("Sub", BinaryOp.Sub, a, b);

    /// <summary>a · b (elementwise) with broadcasting.</summary>
    public static Tensor Mul(Tensor a, Tensor b) => BinaryOpImpl("Mul", BinaryOp.Mul, a, b);

    /// <summary>a / b (elementwise) with broadcasting.</summary>
    public static Tensor Div(Tensor a, Tensor b) => BinaryOpImpl("Div", BinaryOp.Div, a, b);

    private static Tensor BinaryOpImpl(string name, BinaryOp op, Tensor a, Tensor b)
    {
        Tensor.SameDevice(name, a, b);
        var plan = Broadcast.Plan(name, a.Shape, b.Shape);
        a = Contiguous(a);
        b = Contiguous(b);
        var c = Tensor.Empty(a.Device, plan.OutShape);
        var be = a.Device.Backend;
        be.Binary(op, a, b, c, plan);
        if (Graph.Needs(a, b))
            Graph.Record(name, c, [a, b], gc =>
            {
                switch (op)
                {
                    case BinaryOp.Add when plan.IsSameShape && b.RequiresGrad && b.Creator != null && b.Grad == null:
                        // Both inputs receive gc itself. Nothing reads gc once this node has run, so b (an op's
                        // output with no gradient yet, as a residual branch is) takes its buffer instead of a copy.
                        // a gets a copy: two gradients in one buffer would each see the other's later additions.
                        Graph.PassGradient(b, gc, alias: true);
                        if (a.RequiresGrad) PushBroadcast(gc, null, a, plan, 0, 1f);
                        break;
                    case BinaryOp.Add:
                    case BinaryOp.Sub:
                        if (a.RequiresGrad) PushBroadcast(gc, null, a, plan, 0, 1f);
                        if (b.RequiresGrad) PushBroadcast(gc, null, b, plan, 1, op == BinaryOp.Sub ? -1f : 1f);
                        break;
                    case BinaryOp.Mul:
                        if (a.RequiresGrad) PushBroadcast(gc, b, a, plan, 0, 1f);
                        if (b.RequiresGrad) PushBroadcast(gc, a, b, plan, 1, 1f);
                        break;
                    case BinaryOp.Div:
                        if (a.RequiresGrad)
                        {
                            var rb = Tensor.EmptyIn(b.Device, b.ShapeArray, MemoryScope.Current);
                            be.Fill(rb, 1f);
                            be.Binary(BinaryOp.Div, rb, b, rb, Broadcast.Plan(name, b.Shape, b.Shape));
                            PushBroadcast(gc, rb, a, plan, 0, 1f);
                        }
                        if (b.RequiresGrad)
                        {
                            // d(a/b)/db = −c / b
                            var cb = Tensor.EmptyIn(c.Device, c.ShapeArray, MemoryScope.Current);
                            be.Binary(BinaryOp.Div, c, b, cb, Broadcast.Plan(name, c.Shape, b.Shape));
                            PushBroadcast(gc, cb, b, Broadcast.Plan(name, c.Shape, b.Shape), 1, -1f, gradOther: true);
                        }
                        break;
                }
            });
        return c;
    }

    /// <summary>Reduces <paramref name="g"/> (·other) onto <paramref name="target"/>'s gradient.</summary>
    private static void PushBroadcast(Tensor g, Tensor? other, Tensor target, Broadcast plan, int which, float scale, bool gradOther = false)
    {
        var (gt, acc) = Graph.GradSlot(target);
        if (gradOther)
        {
            // other already has the output's shape: multiply first, then reduce with no second operand.
            var prod = Tensor.EmptyIn(g.Device, g.ShapeArray, MemoryScope.Current);
            g.Device.Backend.Binary(BinaryOp.Mul, g, other!, prod, Broadcast.Plan("Div", g.Shape, other!.Shape));
            g.Device.Backend.BroadcastBackward(prod, null, gt, plan, which, scale, acc);
            return;
        }
        if (other == null && plan.IsSameShape)
        {
            g.Device.Backend.Scale(g, scale, gt, acc);
            return;
        }
        g.Device.Backend.BroadcastBackward(g, other, gt, plan, which, scale, acc);
    }

    /// <summary>s · x.</summary>
    public static Tensor Scale(Tensor x, float s)
    {
        x = Contiguous(x);
        var y = Tensor.Empty(x.Device, (int[])x.ShapeArray.Clone());
        x.Device.Backend.Scale(x, s, y, false);
        if (Graph.Needs(x))
            Graph.Record("Scale", y, [x], gy =>
            {
                var (gx, acc) = Graph.GradSlot(x);
                x.Device.Backend.Scale(gy, s, gx, acc);
            });
        return y;
    }

    /// <summary>x + s.</summary>
    public static Tensor AddScalar(Tensor x, float s)
    {
        var y = Clone(x);
        y.Device.Backend.AddScalar(y, s);
        return y;
    }

    /// <summary>eˣ.</summary>
    public static Tensor Exp(Tensor x) => UnaryOpImpl("Exp", UnaryOp.Exp, x);

    /// <summary>Natural logarithm.</summary>
    public static Tensor Log(Tensor x) => UnaryOpImpl("Log", UnaryOp.Log, x);

    /// <summary>Hyperbolic tangent.</summary>
    public static Tensor Tanh(Tensor x) => UnaryOpImpl("Tanh", UnaryOp.Tanh, x);

    /// <summary>GELU in GPT-2's tanh form: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    public static Tensor Gelu(Tensor x) => UnaryOpImpl("Gelu", UnaryOp.Gelu, x);

    /// <summary>SiLU (swish): x·σ(x).</summary>
    public static Tensor Silu(Tensor x) => UnaryOpImpl("Silu", UnaryOp.Silu, x);

    /// <summary>
    /// SwiGLU's gated product silu(gate)·up for two tensors of one shape (LLaMA's MLP): the same values as
    /// <c>Mul(Silu(gate), up)</c>, in one pass forward and one backward, with no silu(gate) kept between them.
    /// </summary>
    public static Tensor SwiGlu(Tensor gate, Tensor up)
    {
        Tensor.SameDevice("SwiGlu", gate, up);
        if (!ShapeUtil.Equal(gate.Shape, up.Shape))
            throw new ArgumentException($"SwiGlu: gate {gate.ShapeText} and up {up.ShapeText} must have the same shape.");
        gate = Contiguous(gate);
        up = Contiguous(up);
        var y = Tensor.Empty(gate.Device, (int[])gate.ShapeArray.Clone());
        var be = gate.Device.Backend;
        be.SwiGlu(gate, up, y);
        if (Graph.Needs(gate, up))
            Graph.Record("SwiGlu", y, [gate, up], gy =>
            {
                Tensor? gGate = null, gUp = null;
                bool accGate = false, accUp = false;
                if (gate.RequiresGrad) (gGate, accGate) = Graph.GradSlot(gate);
                if (up.RequiresGrad)
                {
                    if (ReferenceEquals(up, gate))
                    {
                        // One tensor on both sides: its two contributions go through separate buffers.
                        gUp = Tensor.EmptyIn(gate.Device, gate.ShapeArray, MemoryScope.Current);
                        be.SwiGluBackward(gate, up, gy, gGate, accGate, gUp, false);
                        be.Scale(gUp, 1f, gGate!, true);
                        return;
                    }
                    (gUp, accUp) = Graph.GradSlot(up);
                }
                be.SwiGluBackward(gate, up, gy, gGate, accGate, gUp, accUp);
            });
        return y;
    }

    /// <summary>Logistic sigmoid.</summary>
    public static Tensor Sigmoid(Tensor x) => UnaryOpImpl("Sigmoid", UnaryOp.Sigmoid, x);

    /// <summary>max(x, 0).</summary>
    public static Tensor Relu(Tensor x) => UnaryOpImpl("Relu", UnaryOp.Relu, x);

    /// <summary>Square root.</summary>
    public static Tensor Sqrt(Tensor x) => UnaryOpImpl("Sqrt", UnaryOp.Sqrt, x);

    private static Tensor UnaryOpImpl(string name, UnaryOp op, Tensor x)
    {
        x = Contiguous(x);
        var y = Tensor.Empty(x.Device, (int[])x.ShapeArray.Clone());
        x.Device.Backend.Unary(op, x, y);
        if (Graph.Needs(x))
            Graph.Record(name, y, [x], gy =>
            {
                var (gx, acc) = Graph.GradSlot(x);
                x.Device.Backend.UnaryBackward(op, x, y, gy, gx, acc);
            });
        return y;
    }
}
