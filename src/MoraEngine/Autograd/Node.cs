namespace MoraEngine.Autograd;

/// <summary>
/// One recorded op: its inputs and the function that turns the output's gradient into the inputs' gradients.
/// The backward function is written right next to the op's forward (see <c>Ops/</c>).
/// </summary>
internal sealed class Node
{
    public Node(string op, Tensor output, Tensor[] inputs, Action<Tensor> backward)
    {
        Op = op;
        Output = output;
        Inputs = inputs;
        BackwardFn = backward;
    }

    public string Op { get; }

    public Tensor Output { get; }

    public Tensor[] Inputs { get; }

    /// <summary>Receives the gradient of <see cref="Output"/>; null once backward has run.</summary>
    public Action<Tensor>? BackwardFn { get; private set; }

    internal int Mark;

    public void Consume() => BackwardFn = null;
}
