namespace MoraEngine.Backends;

/// <summary>
/// The parameters of one optimizer laid out by a backend for single-kernel updates (<see cref="IBackend.TryCreateFusedGroup"/>):
/// every parameter's gradient, first and second moment are given buffers the backend chose, and the optimizer's
/// reductions and updates run over all parameters at once.
/// </summary>
internal interface IFusedParameterGroup
{
    /// <summary>The persistent gradient buffer of each parameter (the optimizer checks a gradient was not replaced).</summary>
    Tensor[] Grads { get; }

    /// <summary>AdamW's first moments, one per parameter.</summary>
    Tensor[] M { get; }

    /// <summary>AdamW's second moments, one per parameter.</summary>
    Tensor[] V { get; }

    /// <summary>Σ g² over the gradients whose <paramref name="valid"/> entry is 1.</summary>
    double SumSquares(float[] valid);

    /// <summary>g ← scale·g for the gradients whose <paramref name="valid"/> entry is 1.</summary>
    void Scale(float scale, float[] valid);

    /// <summary>
    /// One AdamW update of every parameter: <paramref name="common"/> holds β1, β2 and eps; <paramref name="perParam"/>
    /// holds, per parameter, step size, decay, 1/√bc2 and 1 when its gradient is valid (else 0).
    /// </summary>
    void AdamW(AdamStep common, float[] perParam);
}
