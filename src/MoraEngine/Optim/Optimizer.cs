using MoraEngine.Backends;

namespace MoraEngine.Optim;

/// <summary>Updates a fixed list of parameters from their gradients.</summary>
public abstract class Optimizer
{
    protected Optimizer(IEnumerable<Tensor> parameters)
    {
        Parameters = parameters.ToArray();
        if (Parameters.Length == 0) throw new ArgumentException("Optimizer: no parameters to optimise (is everything frozen?).");
    }

    /// <summary>
    /// The parameters, gradients and state laid out for single-kernel updates on an ILGPU device (null elsewhere):
    /// gradients live in persistent buffers of one arena, so clipping and the update are one launch each.
    /// </summary>
    internal IFusedParameterGroup? Fused { get; private protected set; }

    /// <summary>The parameters this optimizer updates.</summary>
    public Tensor[] Parameters { get; }

    /// <summary>Learning rate used by the next <see cref="Step"/> (schedules set it every step).</summary>
    public float LearningRate { get; set; }

    /// <summary>Updates done so far.</summary>
    public int StepCount { get; protected set; }

    /// <summary>Applies one update from the current gradients (parameters without a gradient are skipped).</summary>
    public abstract void Step();

    /// <summary>Forgets every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.ZeroGrad();
    }

    /// <summary>Clears the optimizer state of the given parameters (used by ReLoRA/ReMoRA restarts).</summary>
    public abstract void ResetState(IEnumerable<Tensor> parameters);

    /// <summary>Per-parameter state tensors by suffix (e.g. "m", "v"), for checkpoints.</summary>
    public abstract IEnumerable<(int Index, string Slot, Tensor State)> StateTensors();

    /// <summary>Restores the step counter (state tensors are restored in place through <see cref="StateTensors"/>).</summary>
    public void RestoreStepCount(int steps) => StepCount = steps;

    /// <summary>
    /// Scales all gradients so their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before
    /// clipping.
    /// </summary>
    public double ClipGradNorm(float maxNorm)
    {
        if (Fused != null)
        {
            // One device reduction over every valid gradient and one read-back, instead of one per parameter.
            var valid = new float[Parameters.Length];
            for (var i = 0; i < valid.Length; i++)
                valid[i] = ReferenceEquals(Parameters[i].Grad, Fused.Grads[i]) && Parameters[i].GradValid ? 1f : 0f;
            var n = Math.Sqrt(Fused.SumSquares(valid));
            if (maxNorm > 0 && n > maxNorm) Fused.Scale((float)(maxNorm / (n + 1e-6)), valid);
            return n;
        }
        double sum = 0;
        foreach (var p in Parameters)
            if (p.Grad != null && p.GradValid) sum += p.Device.Backend.SumSquares(p.Grad);
        var norm = Math.Sqrt(sum);
        if (maxNorm > 0 && norm > maxNorm)
        {
            var s = (float)(maxNorm / (norm + 1e-6));
            foreach (var p in Parameters)
                if (p.Grad != null && p.GradValid) p.Device.Backend.Scale(p.Grad, s, p.Grad, false);
        }
        return norm;
    }
}

/// <summary>
/// Adam with decoupled weight decay (Loshchilov &amp; Hutter) and bias correction. Weight decay applies to
/// matrices only (rank ≥ 2), not to norm gains or biases.
/// </summary>
public sealed class AdamW : Optimizer
{
    private readonly Tensor?[] _m;
    private readonly Tensor?[] _v;
    private readonly int[] _steps;

    public AdamW(IEnumerable<Tensor> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0.01f)
        : base(parameters)
    {
        if (lr < 0) throw new ArgumentOutOfRangeException(nameof(lr), $"AdamW: learning rate must be ≥ 0, got {lr}.");
        if (beta1 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta1), $"AdamW: beta1 must be in [0, 1), got {beta1}.");
        if (beta2 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta2), $"AdamW: beta2 must be in [0, 1), got {beta2}.");
        LearningRate = lr;
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        WeightDecay = weightDecay;
        _beta1 = Decimal(beta1);
        _beta2 = Decimal(beta2);
        _eps = Decimal(eps);
        _m = new Tensor?[Parameters.Length];
        _v = new Tensor?[Parameters.Length];
        _steps = new int[Parameters.Length];
        // When the backend can (ILGPU, with the parameters in one arena from Module.To), state and gradients get
        // arenas too and the update is one kernel over all parameters.
        Fused = Parameters.Length > 0 ? Parameters[0].Device.Backend.TryCreateFusedGroup(Parameters) : null;
        if (Fused != null)
        {
            for (var i = 0; i < Parameters.Length; i++)
            {
                _m[i] = Fused.M[i];
                _v[i] = Fused.V[i];
            }
            return;
        }
        // State lives as long as the optimizer, outside any step's memory scope.
        for (var i = 0; i < Parameters.Length; i++)
        {
            _m[i] = Tensor.EmptyIn(Parameters[i].Device, Parameters[i].ShapeArray, null);
            _v[i] = Tensor.EmptyIn(Parameters[i].Device, Parameters[i].ShapeArray, null);
            Parameters[i].Device.Backend.Fill(_m[i]!, 0f);
            Parameters[i].Device.Backend.Fill(_v[i]!, 0f);
        }
    }

    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Eps { get; }
    public float WeightDecay { get; }

    public override void Step()
    {
        StepCount++;
        if (Fused != null)
        {
            // Per parameter: step size, decay, 1/√bc2 and whether its gradient is valid; then one launch.
            var per = new float[4 * Parameters.Length];
            for (var i = 0; i < Parameters.Length; i++)
            {
                var p = Parameters[i];
                if (p.Grad == null || !p.GradValid) continue;
                if (!ReferenceEquals(p.Grad, Fused.Grads[i]))
                    throw new InvalidOperationException($"AdamW: the gradient of {p.Name ?? p.ShapeText} was replaced; the fused update needs the buffer it was given.");
                var a = Coefficients(p, ++_steps[i]);
                per[4 * i] = a.StepSize;
                per[4 * i + 1] = a.Decay;
                per[4 * i + 2] = a.InvBc2Sqrt;
                per[4 * i + 3] = 1f;
            }
            Fused.AdamW(AdamStep.Create(LearningRate, _beta1, _beta2, _eps, 0, 1), per);
            return;
        }
        for (var i = 0; i < Parameters.Length; i++)
        {
            var p = Parameters[i];
            if (p.Grad == null || !p.GradValid) continue;
            // Bias correction counts this parameter's own updates, so a restarted adapter starts afresh.
            p.Device.Backend.AdamW(p, p.Grad, _m[i]!, _v[i]!, Coefficients(p, ++_steps[i]));
        }
    }

    /// <summary>
    /// This update's coefficients for <paramref name="p"/> (weight decay on matrices only), in double. The float
    /// hyperparameters are read as the decimals they were written as (0.999f is 0.999, not 0.99900001287), so
    /// 1 − β2 is 0.001 as in PyTorch, whose hyperparameters are Python floats.
    /// </summary>
    private AdamStep Coefficients(Tensor p, int t) =>
        AdamStep.Create(LearningRate, _beta1, _beta2, _eps, p.Rank >= 2 ? Decimal(WeightDecay) : 0, t);

    /// <summary>The shortest decimal that rounds to <paramref name="f"/>, as a double (float → decimal keeps 7 significant digits).</summary>
    private static double Decimal(float f) => float.IsFinite(f) && Math.Abs(f) < 7.9e27f ? (double)(decimal)f : f;

    private readonly double _beta1, _beta2, _eps;

    public override void ResetState(IEnumerable<Tensor> parameters)
    {
        foreach (var p in parameters)
        {
            var i = Array.IndexOf(Parameters, p);
            if (i < 0) continue;
            p.Device.Backend.Fill(_m[i]!, 0f);
            p.Device.Backend.Fill(_v[i]!, 0f);
            _steps[i] = 0;
        }
    }

    public override IEnumerable<(int Index, string Slot, Tensor State)> StateTensors()
    {
        for (var i = 0; i < Parameters.Length; i++)
        {
            yield return (i, "m", _m[i]!);
            yield return (i, "v", _v[i]!);
        }
    }

    /// <summary>Per-parameter update counts (for checkpoints).</summary>
    public int[] ParameterSteps => _steps;
}

/// <summary>SGD with optional momentum and (coupled) weight decay.</summary>
public sealed class Sgd : Optimizer
{
    private readonly Tensor?[] _buf;

    public Sgd(IEnumerable<Tensor> parameters, float lr = 1e-2f, float momentum = 0.9f, float weightDecay = 0f) : base(parameters)
    {
        if (momentum is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(momentum), $"Sgd: momentum must be in [0, 1), got {momentum}.");
        LearningRate = lr;
        Momentum = momentum;
        WeightDecay = weightDecay;
        _buf = new Tensor?[Parameters.Length];
        if (momentum > 0)
            for (var i = 0; i < Parameters.Length; i++)
            {
                _buf[i] = Tensor.EmptyIn(Parameters[i].Device, Parameters[i].ShapeArray, null);
                Parameters[i].Device.Backend.Fill(_buf[i]!, 0f);
            }
    }

    public float Momentum { get; }
    public float WeightDecay { get; }

    public override void Step()
    {
        StepCount++;
        for (var i = 0; i < Parameters.Length; i++)
        {
            var p = Parameters[i];
            if (p.Grad == null || !p.GradValid) continue;
            p.Device.Backend.Sgd(p, p.Grad, _buf[i], LearningRate, Momentum, p.Rank >= 2 ? WeightDecay : 0f);
        }
    }

    public override void ResetState(IEnumerable<Tensor> parameters)
    {
        foreach (var p in parameters)
        {
            var i = Array.IndexOf(Parameters, p);
            if (i >= 0 && _buf[i] != null) p.Device.Backend.Fill(_buf[i]!, 0f);
        }
    }

    public override IEnumerable<(int Index, string Slot, Tensor State)> StateTensors()
    {
        for (var i = 0; i < Parameters.Length; i++)
            if (_buf[i] != null) yield return (i, "momentum", _buf[i]!);
    }
}
