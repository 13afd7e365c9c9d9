namespace MoraEngine;

/// <summary>
/// Owns every tensor created on this thread while it is active and hands their buffers back to the device
/// pool when disposed, so a training step that runs inside a scope allocates nothing after the first step.
/// Tensors created outside any scope (parameters, user data) are ordinary garbage-collected tensors.
/// </summary>
/// <example><code>
/// using (MemoryScope.Begin())
/// {
///     var loss = model.Loss(batch);
///     loss.Backward();
///     lossValue = loss.Item();   // read what you need before the scope ends
/// }
/// </code></example>
public sealed class MemoryScope : IDisposable
{
    [ThreadStatic] private static MemoryScope? _current;

    private readonly MemoryScope? _parent;
    private readonly List<Tensor> _owned = new(1024);
    private bool _disposed;

    private MemoryScope(MemoryScope? parent) => _parent = parent;

    /// <summary>The innermost active scope on this thread, if any.</summary>
    public static MemoryScope? Current => _current;

    /// <summary>Starts a scope on this thread; nest freely, dispose in reverse order.</summary>
    public static MemoryScope Begin()
    {
        var scope = new MemoryScope(_current);
        _current = scope;
        return scope;
    }

    /// <summary>Number of tensors this scope will release.</summary>
    public int Count => _owned.Count;

    internal void Own(Tensor t) => _owned.Add(t);

    /// <summary>
    /// Moves a tensor out of this scope so it survives it (its buffer then belongs to the garbage collector or to
    /// the enclosing scope).
    /// </summary>
    public Tensor Keep(Tensor t)
    {
        var i = _owned.LastIndexOf(t);
        if (i >= 0)
        {
            _owned.RemoveAt(i);
            t.Scope = _parent;
            _parent?.Own(t);
        }
        return t;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_current != this)
            throw new InvalidOperationException("MemoryScope disposed out of order: dispose inner scopes first.");
        _current = _parent;
        for (var i = _owned.Count - 1; i >= 0; i--) _owned[i].ReleaseStorage();
        _owned.Clear();
    }
}
