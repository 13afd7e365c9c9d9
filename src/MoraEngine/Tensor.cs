using System.Runtime.CompilerServices;
using System.Text;
using MoraEngine.Autograd;

namespace MoraEngine;

/// <summary>
/// An n-dimensional float32 array on a device, row-major, with reverse-mode autodiff.
/// Views share storage: <see cref="Reshape"/>, <see cref="T"/> (the last two axes swapped, no copy) and
/// <see cref="Slice"/> along the first axis.
/// </summary>
public sealed partial class Tensor
{
    private readonly int[] _shape;
    private Storage? _storage;
    private readonly Tensor? _base;

    internal Tensor(Storage storage, int offset, int[] shape, bool transposed, Tensor? viewOf)
    {
        _storage = storage;
        Offset = offset;
        _shape = shape;
        IsTransposed = transposed;
        _base = viewOf;
        Length = ShapeUtil.Count(shape);
        Device = storage.Device;
    }

    /// <summary>The device whose memory holds this tensor.</summary>
    public Device Device { get; private set; }

    /// <summary>The dimensions, outermost first.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    internal int[] ShapeArray => _shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>Size of dimension <paramref name="axis"/>; negative counts from the end.</summary>
    public int Dim(int axis) => _shape[ShapeUtil.Axis(axis, Rank, "Dim")];

    /// <summary>
    /// True for a view whose last two axes are swapped relative to its storage (made by <see cref="T"/>).
    /// Matmul reads such views directly; other ops make a contiguous copy first.
    /// </summary>
    public bool IsTransposed { get; }

    /// <summary>Element offset of this view into its storage.</summary>
    internal int Offset { get; }

    /// <summary>Optional name, used in error messages and checkpoints.</summary>
    public string? Name { get; set; }

    internal MemoryScope? Scope { get; set; }

    /// <summary>The buffer behind this tensor; an error once its memory scope has ended.</summary>
    internal Storage Storage => _storage ?? throw new ObjectDisposedException(
        Name ?? $"tensor {ShapeUtil.Format(_shape)}",
        "This tensor's memory was handed back when its MemoryScope ended; read values before the scope ends or use MemoryScope.Keep.");

    /// <summary>True while the tensor's memory is valid.</summary>
    public bool IsAlive => _storage != null;

    internal bool OwnsStorage => _base == null;

    internal void ReleaseStorage()
    {
        var s = _storage;
        _storage = null;
        if (s != null && _base == null) Device.Pool.Return(s);
        Creator = null;
    }

    // ---------------------------------------------------------------- autodiff state

    private bool _requiresGrad;

    /// <summary>
    /// Whether gradients flow to this tensor. Set it on leaves (parameters); results of ops inherit it.
    /// </summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (!value && Creator != null)
                throw new InvalidOperationException("RequiresGrad cannot be turned off on the result of an op; use Detach().");
            _requiresGrad = value;
        }
    }

    /// <summary>The accumulated gradient, once a backward pass has reached this tensor.</summary>
    public Tensor? Grad { get; internal set; }

    /// <summary>
    /// False after <see cref="ZeroGrad"/>: the next backward overwrites <see cref="Grad"/> instead of adding to it,
    /// which saves clearing it.
    /// </summary>
    internal bool GradValid { get; set; }

    /// <summary>The op that produced this tensor (null for leaves and after backward has consumed it).</summary>
    internal Node? Creator { get; set; }

    /// <summary>True for tensors not produced by a recorded op.</summary>
    public bool IsLeaf => Creator == null;

    /// <summary>Forgets the gradient (cheaply: the next backward overwrites it).</summary>
    public void ZeroGrad() => GradValid = false;

    /// <summary>A tensor sharing this one's memory with no autodiff history.</summary>
    public Tensor Detach()
    {
        var t = new Tensor(Storage, Offset, _shape, IsTransposed, _base ?? this) { Name = Name };
        MemoryScope.Current?.Own(t);
        t.Scope = MemoryScope.Current;
        return t;
    }

    /// <summary>Runs backpropagation from this scalar (or with an explicit output gradient).</summary>
    public void Backward(Tensor? gradient = null) => Autograd.Graph.Backward(this, gradient);

    // ---------------------------------------------------------------- creation

    /// <summary>A new uninitialised tensor (pooled inside a <see cref="MemoryScope"/>).</summary>
    internal static Tensor Empty(Device device, int[] shape)
    {
        ShapeUtil.Validate(shape, "Tensor");
        var n = ShapeUtil.Count(shape);
        var scope = MemoryScope.Current;
        var storage = scope != null ? device.Pool.Rent(n) : device.Backend.Allocate(device, n);
        var t = new Tensor(storage, 0, shape, false, null) { Scope = scope };
        scope?.Own(t);
        return t;
    }

    /// <summary>A new tensor like <paramref name="like"/>'s shape on its device, in the same memory scope as it.</summary>
    internal static Tensor EmptyLike(Tensor like) => EmptyIn(like.Device, like.ShapeArray, like.Scope);

    internal static Tensor EmptyIn(Device device, int[] shape, MemoryScope? scope)
    {
        var n = ShapeUtil.Count(shape);
        var storage = scope != null ? device.Pool.Rent(n) : device.Backend.Allocate(device, n);
        var t = new Tensor(storage, 0, shape, false, null) { Scope = scope };
        scope?.Own(t);
        return t;
    }

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(params int[] shape) => Zeros(Device.Cpu, shape);

    /// <summary>A tensor of zeros on a device.</summary>
    public static Tensor Zeros(Device device, params int[] shape)
    {
        var t = Empty(device, (int[])shape.Clone());
        device.Backend.Fill(t, 0f);
        return t;
    }

    /// <summary>A tensor filled with one value.</summary>
    public static Tensor Full(float value, params int[] shape)
    {
        var t = Empty(Device.Cpu, (int[])shape.Clone());
        t.Device.Backend.Fill(t, value);
        return t;
    }

    /// <summary>A CPU tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(float[] data, params int[] shape)
    {
        ShapeUtil.Validate(shape, "FromArray");
        if (ShapeUtil.Count(shape) != data.Length)
            throw new ArgumentException($"FromArray: {data.Length} values do not fill shape {ShapeUtil.Format(shape)} ({ShapeUtil.Count(shape)} elements).", nameof(data));
        var t = Empty(Device.Cpu, (int[])shape.Clone());
        t.Device.Backend.Upload(t, data);
        return t;
    }

    /// <summary>A scalar (shape []) CPU tensor.</summary>
    public static Tensor Scalar(float value) => FromArray([value]);

    /// <summary>Normally distributed values with the given standard deviation.</summary>
    public static Tensor RandN(Rng rng, float std, params int[] shape)
    {
        var data = new float[ShapeUtil.Count(shape)];
        for (var i = 0; i < data.Length; i++) data[i] = rng.NextNormal() * std;
        return FromArray(data, shape);
    }

    /// <summary>Uniform values in [lo, hi).</summary>
    public static Tensor RandU(Rng rng, float lo, float hi, params int[] shape)
    {
        var data = new float[ShapeUtil.Count(shape)];
        for (var i = 0; i < data.Length; i++) data[i] = lo + (hi - lo) * rng.NextFloat();
        return FromArray(data, shape);
    }

    // ---------------------------------------------------------------- data access

    /// <summary>The values in logical row-major order (a copy).</summary>
    public float[] ToArray()
    {
        Tensor src = this;
        if (IsTransposed)
            using (Autograd.Graph.NoGrad())
                src = Ops.Contiguous(this);
        var result = new float[Length];
        Device.Backend.Download(src, result);
        return result;
    }

    /// <summary>The value of a one-element tensor.</summary>
    public float Item()
    {
        if (Length != 1)
            throw new InvalidOperationException($"Item: tensor of shape {ShapeUtil.Format(_shape)} has {Length} elements, not 1.");
        Span<float> one = stackalloc float[1];
        Device.Backend.Download(this, one);
        return one[0];
    }

    /// <summary>Copies values into this tensor (logical order; the tensor must be contiguous).</summary>
    public void CopyFrom(ReadOnlySpan<float> values)
    {
        if (values.Length != Length)
            throw new ArgumentException($"CopyFrom: {values.Length} values for a tensor of shape {ShapeUtil.Format(_shape)}.");
        if (IsTransposed) throw new InvalidOperationException("CopyFrom: cannot write through a transposed view.");
        Device.Backend.Upload(this, values);
    }

    /// <summary>
    /// A copy of this tensor on <paramref name="device"/> (this tensor itself if it already lives there), with no
    /// autodiff history. Inside a <see cref="MemoryScope"/> the copy belongs to the scope.
    /// </summary>
    public Tensor To(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (ReferenceEquals(device, Device)) return this;
        var values = ToArray();
        var t = Empty(device, (int[])_shape.Clone());
        t.Name = Name;
        device.Backend.Upload(t, values);
        return t;
    }

    /// <summary>
    /// Moves this tensor's values into <paramref name="storage"/> (on another device) in place: used by
    /// <see cref="Nn.Module.To"/> for parameters, which keep their identity (optimizers and adapters hold them).
    /// The gradient is dropped.
    /// </summary>
    internal void MoveTo(Storage storage)
    {
        if (_base != null || IsTransposed || Offset != 0)
            throw new InvalidOperationException($"Cannot move {Name ?? ShapeText}: only a tensor that owns its memory can move in place.");
        if (storage.Length != Length)
            throw new ArgumentException($"MoveTo: storage of {storage.Length} floats for a tensor of {Length}.");
        var values = ToArray();
        _storage = storage;
        Device = storage.Device;
        Grad = null;
        GradValid = false;
        Device.Backend.Upload(this, values);
    }

    /// <summary>The CPU memory of a contiguous CPU tensor (kernels and tests).</summary>
    internal Span<float> Span
    {
        get
        {
            if (Storage is not CpuStorage cpu) throw new InvalidOperationException($"Tensor lives on {Device.Name}, not the CPU.");
            return cpu.Data.AsSpan(Offset, Length);
        }
    }

    /// <summary>The whole CPU array behind this tensor.</summary>
    internal float[] CpuArray => Storage is CpuStorage cpu ? cpu.Data : throw new InvalidOperationException($"Tensor lives on {Device.Name}, not the CPU.");

    /// <summary>Shape as text, e.g. <c>[16, 128, 256]</c>.</summary>
    public string ShapeText => ShapeUtil.Format(_shape);

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("Tensor").Append(ShapeText);
        if (Name != null) sb.Append(' ').Append(Name);
        if (IsAlive && Length <= 16)
        {
            sb.Append(" {");
            var v = ToArray();
            for (var i = 0; i < v.Length; i++) sb.Append(i == 0 ? "" : ", ").Append(v[i].ToString("G5", System.Globalization.CultureInfo.InvariantCulture));
            sb.Append('}');
        }
        return sb.ToString();
    }

    // ---------------------------------------------------------------- views

    /// <summary>The same data under another shape (one dimension may be -1). A copy is made only for a transposed view.</summary>
    public Tensor Reshape(params int[] shape) => Ops.Reshape(this, shape);

    /// <summary>The last two axes swapped, as a view.</summary>
    public Tensor T => Ops.TransposeLast2(this);

    /// <summary>Rows [start, start + count) along the first axis, as a view.</summary>
    public Tensor Slice(int start, int count) => Ops.Slice(this, start, count);

    internal Tensor ViewOf(int offset, int[] shape, bool transposed)
    {
        var t = new Tensor(Storage, offset, shape, transposed, _base ?? this);
        var scope = MemoryScope.Current;
        t.Scope = scope;
        scope?.Own(t);
        return t;
    }

    // ---------------------------------------------------------------- operators

    public static Tensor operator +(Tensor a, Tensor b) => Ops.Add(a, b);
    public static Tensor operator -(Tensor a, Tensor b) => Ops.Sub(a, b);
    public static Tensor operator *(Tensor a, Tensor b) => Ops.Mul(a, b);
    public static Tensor operator /(Tensor a, Tensor b) => Ops.Div(a, b);
    public static Tensor operator *(Tensor a, float s) => Ops.Scale(a, s);
    public static Tensor operator *(float s, Tensor a) => Ops.Scale(a, s);
    public static Tensor operator -(Tensor a) => Ops.Scale(a, -1f);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void SameDevice(string op, Tensor a, Tensor b)
    {
        if (!ReferenceEquals(a.Device, b.Device))
            throw new ArgumentException($"{op}: tensors live on different devices ({a.Device.Name} and {b.Device.Name}); move one with To().");
    }
}
