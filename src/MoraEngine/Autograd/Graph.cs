namespace MoraEngine.Autograd;

/// <summary>Recording of ops and the reverse walk over them.</summary>
public static class Graph
{
    [ThreadStatic] private static int _noGradDepth;
    [ThreadStatic] private static int _markEpoch;

    /// <summary>Whether ops on this thread record their backward.</summary>
    public static bool IsEnabled => _noGradDepth == 0;

    /// <summary>Turns recording off on this thread until disposed (evaluation, optimizer updates).</summary>
    public static NoGradScope NoGrad()
    {
        _noGradDepth++;
        return new NoGradScope();
    }

    /// <summary>Ends a <see cref="NoGrad"/> region.</summary>
    public readonly struct NoGradScope : IDisposable
    {
        public void Dispose() => _noGradDepth--;
    }

    /// <summary>True when an op on these inputs must record its backward.</summary>
    internal static bool Needs(Tensor a) => _noGradDepth == 0 && a.RequiresGrad;

    internal static bool Needs(Tensor a, Tensor b) => _noGradDepth == 0 && (a.RequiresGrad || b.RequiresGrad);

    internal static bool Needs(ReadOnlySpan<Tensor> xs)
    {
        if (_noGradDepth != 0) return false;
        foreach (var x in xs)
            if (x.RequiresGrad) return true;
        return false;
    }

    /// <summary>Attaches a backward function to <paramref name="output"/>.</summary>
    internal static void Record(string op, Tensor output, Tensor[] inputs, Action<Tensor> backward)
    {
        output.Creator = new Node(op, output, inputs, backward);
        output.RequiresGrad = true;
    }

    /// <summary>
    /// The gradient buffer of <paramref name="t"/> for a backward kernel to write into, and whether the kernel must
    /// add to it (true) or may overwrite it (false: the first contribution since the last ZeroGrad).
    /// </summary>
    internal static (Tensor grad, bool accumulate) GradSlot(Tensor t)
    {
        if (t.Grad == null)
        {
            t.Grad = Tensor.EmptyIn(t.Device, t.ShapeArray, t.Scope);
            t.GradValid = true;
            return (t.Grad, false);
        }
        if (!t.GradValid)
        {
            t.GradValid = true;
            return (t.Grad, false);
        }
        return (t.Grad, true);
    }

    /// <summary>
    /// Adds <paramref name="gy"/> to <paramref name="t"/>'s gradient. With <paramref name="alias"/>, when this is the
    /// first contribution, <paramref name="t"/>'s gradient becomes <paramref name="gy"/> itself instead of a copy: for
    /// ops whose output equals an input plus something (an adapter's y = base + Δ) when that input has no other
    /// consumer, so nothing can later add into the shared buffer.
    /// </summary>
    internal static void PassGradient(Tensor t, Tensor gy, bool alias)
    {
        if (alias && t.Grad == null && ShapeUtil.Equal(t.Shape, gy.Shape) && !gy.IsTransposed)
        {
            t.Grad = gy;
            t.GradValid = true;
            return;
        }
        var (g, acc) = GradSlot(t);
        t.Device.Backend.Scale(gy, 1f, g, acc);
    }

    /// <summary>The gradient buffer of <paramref name="t"/>, zero-filled if it held no valid gradient (for kernels that scatter).</summary>
    internal static Tensor GradZeroed(Tensor t)
    {
        var (g, acc) = GradSlot(t);
        if (!acc) t.Device.Backend.Fill(g, 0f);
        return g;
    }

    internal static void Backward(Tensor root, Tensor? gradient)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException("Backward: this tensor does not require grad (no parameter it depends on has RequiresGrad, or it was computed under NoGrad).");
        if (gradient == null && root.Length != 1)
            throw new ArgumentException($"Backward: an implicit gradient needs a one-element output, got shape {root.ShapeText}; pass the output gradient.");
        if (gradient != null && !ShapeUtil.Equal(gradient.Shape, root.Shape))
            throw new ArgumentException($"Backward: gradient shape {gradient.ShapeText} does not match output shape {root.ShapeText}.");

        var order = TopologicalOrder(root);
        foreach (var node in order)
            if (node.BackwardFn == null)
                throw new InvalidOperationException($"Backward: the graph was already used by a previous Backward (op '{node.Op}'); run a new forward pass.");

        using (NoGrad())
        {
            var (g, acc) = GradSlot(root);
            if (gradient == null)
            {
                if (acc) Ops.AddInPlace(g, 1f);
                else root.Device.Backend.Fill(g, 1f);
            }
            else if (acc) Ops.AddInPlace(g, gradient);
            else root.Device.Backend.Copy(gradient, g);

            for (var i = order.Count - 1; i >= 0; i--)
            {
                var node = order[i];
                var fn = node.BackwardFn!;
                node.Consume();
                var outGrad = node.Output.Grad;
                if (outGrad != null && node.Output.GradValid) fn(outGrad);
            }
        }
    }

    private static List<Node> TopologicalOrder(Tensor root)
    {
        var order = new List<Node>();
        if (root.Creator == null) return order;
        var epoch = ++_markEpoch;
        var stack = new Stack<(Node node, int next)>();
        root.Creator.Mark = epoch;
        stack.Push((root.Creator, 0));
        while (stack.Count > 0)
        {
            var (node, next) = stack.Pop();
            if (next < node.Inputs.Length)
            {
                stack.Push((node, next + 1));
                var child = node.Inputs[next].Creator;
                if (child != null && child.Mark != epoch)
                {
                    child.Mark = epoch;
                    stack.Push((child, 0));
                }
            }
            else
            {
                order.Add(node);
            }
        }
        return order;
    }
}
