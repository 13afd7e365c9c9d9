using MoraEngine.Training;

namespace MoraEngine.Adapters;

/// <summary>
/// ReLoRA / ReMoRA as a trainer callback: every <c>every</c> steps, merge the updates into the base weights,
/// re-initialise the adapters, cycle MoRA's operator type, clear the adapters' optimizer state and restart the
/// learning rate with a short warm-up (the schedule's <c>Restart</c>), so successive updates add up to a higher rank.
/// </summary>
public sealed class AdapterRestarts : ITrainerCallback
{
    private readonly AdaptedModel _model;
    private readonly MoraType[] _cycle;
    private int _next;

    /// <param name="model">The adapted model.</param>
    /// <param name="every">Steps between restarts (the official default is 50 for fine-tuning).</param>
    /// <param name="moraCycle">MoRA types to cycle through (default 1 → 2 → 1); ignored for LoRA.</param>
    public AdapterRestarts(AdaptedModel model, int every, MoraType[]? moraCycle = null)
    {
        if (every <= 0) throw new ArgumentOutOfRangeException(nameof(every), $"AdapterRestarts: period must be positive, got {every}.");
        _model = model;
        Every = every;
        _cycle = moraCycle ?? [MoraType.Sharing, MoraType.Interleave];
        if (_cycle.Length == 0) throw new ArgumentException("AdapterRestarts: empty MoRA type cycle.");
        _next = Math.Max(0, Array.IndexOf(_cycle, model.Config.MoraType)) + 1;
    }

    public int Every { get; }

    public void OnStepEnd(Trainer trainer, int step, float loss)
    {
        if (step % Every != 0) return;
        MoraType? type = null;
        if (_model.Config.Method == AdapterMethod.Mora)
        {
            type = _cycle[_next % _cycle.Length];
            _next++;
        }
        _model.Restart(type);
        trainer.Optimizer.ResetState(_model.AdapterParameters());
        trainer.Schedule.Restart(step);
    }
}
