namespace MoraEngine.Optim;

/// <summary>A learning rate as a function of the step (0-based).</summary>
public abstract class LrSchedule
{
    public abstract float At(int step);

    /// <summary>Restarts are announced here (ReLoRA/ReMoRA): the schedule may add a fresh warm-up from that step.</summary>
    public virtual void Restart(int step)
    {
    }
}

/// <summary>The same rate at every step.</summary>
public sealed class ConstantLr(float lr) : LrSchedule
{
    public override float At(int step) => lr;
}

/// <summary>
/// Linear warm-up from 0 to the peak over <c>warmup</c> steps, then cosine decay to <c>minLr</c> at
/// <c>total</c>. After a <see cref="Restart"/>, the rate ramps up again over <c>restartWarmup</c> steps towards the
/// value the cosine has reached by then ("jagged" cosine).
/// </summary>
public sealed class WarmupCosineLr : LrSchedule
{
    private int _lastRestart = -1;

    public WarmupCosineLr(float peak, int warmup, int total, float minLr = 0f, int restartWarmup = 0)
    {
        if (total <= 0) throw new ArgumentOutOfRangeException(nameof(total), $"WarmupCosineLr: total steps must be positive, got {total}.");
        if (warmup < 0 || warmup > total) throw new ArgumentOutOfRangeException(nameof(warmup), $"WarmupCosineLr: warmup {warmup} must be in [0, {total}].");
        Peak = peak;
        Warmup = warmup;
        Total = total;
        MinLr = minLr;
        RestartWarmup = restartWarmup;
    }

    public float Peak { get; }
    public int Warmup { get; }
    public int Total { get; }
    public float MinLr { get; }
    public int RestartWarmup { get; }

    public override float At(int step)
    {
        float lr;
        if (step < Warmup) lr = Peak * (step + 1) / Warmup;
        else
        {
            var progress = Math.Min(1.0, (double)(step - Warmup) / Math.Max(1, Total - Warmup));
            lr = (float)(MinLr + 0.5 * (Peak - MinLr) * (1 + Math.Cos(Math.PI * progress)));
        }
        if (_lastRestart >= 0 && RestartWarmup > 0 && step >= _lastRestart && step < _lastRestart + RestartWarmup)
            lr *= (float)(step - _lastRestart + 1) / RestartWarmup;
        return lr;
    }

    public override void Restart(int step) => _lastRestart = step;

    /// <summary>The step of the last restart (−1 if none), for checkpoints.</summary>
    public int LastRestart
    {
        get => _lastRestart;
        set => _lastRestart = value;
    }
}
