namespace MoraEngine.Adapters;

/// <summary>
/// The fixed (parameter-free) compression and decompression of one MoRA layer: in → r̂ (or G chunks of r̂ for
/// <see cref="MoraType.Rope"/>) and r̂ → out, so that ΔW·x = f_decomp(M · f_comp(x)) for the trainable r̂ × r̂ matrix M.
/// Follows the official implementation exactly, including wrap padding with the input's own first elements
/// (see <c>docs/MORA.md</c>). Immutable and shareable; the tables the kernels need are computed once here.
/// </summary>
public sealed class MoraOperator
{
    private readonly float[] _ropeCos;
    private readonly float[] _ropeSin;
    // The same angles in float64, for the reference f_comp (CompressReference) that builds the merge taps.
    private readonly double[] _ropeCos64;
    private readonly double[] _ropeSin64;
    private readonly int[] _inGroupStart;
    private readonly int[] _outGroupStart;

    /// <summary>
    /// r̂ for a LoRA rank r: ⌊√((in + out)·r) + 0.5⌋, so r̂² ≈ r·(in + out) (the same parameter budget as LoRA),
    /// rounded down to even for <see cref="MoraType.Rope"/>; r itself for <see cref="MoraType.Truncation"/>.
    /// </summary>
    public static int RankHat(int inFeatures, int outFeatures, int loraRank, MoraType type)
    {
        if (inFeatures <= 0 || outFeatures <= 0 || loraRank <= 0)
            throw new ArgumentException($"MoraOperator.RankHat: in ({inFeatures}), out ({outFeatures}) and LoRA rank ({loraRank}) must be positive.");
        CheckType(type, "MoraOperator.RankHat");
        return Shared.MoraShapes.RankHat(inFeatures, outFeatures, loraRank, (int)type);
    }

    /// <summary>An operator for a layer of <paramref name="inFeatures"/> → <paramref name="outFeatures"/> with an r̂ × r̂ matrix.</summary>
    /// <exception cref="ArgumentException">
    /// Non-positive sizes, r̂ greater than min(in, out) (the official code's wrap padding and interleave groups need
    /// r̂ ≤ in, and r̂ &gt; out would waste rank), an odd r̂ for <see cref="MoraType.Rope"/>, or an unknown type.
    /// </exception>
    public MoraOperator(int inFeatures, int outFeatures, int rHat, MoraType type)
        : this(inFeatures, outFeatures, rHat, type, specialise: true)
    {
    }

    /// <summary>As the public constructor; <paramref name="specialise"/> = false forces the generic kernels (parity tests, benchmarks).</summary>
    internal MoraOperator(int inFeatures, int outFeatures, int rHat, MoraType type, bool specialise)
    {
        CheckType(type, "MoraOperator");
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"MoraOperator: in_features ({inFeatures}) and out_features ({outFeatures}) must be positive.");
        if (rHat <= 0)
            throw new ArgumentException($"MoraOperator: r̂ must be positive, got {rHat} (layer {inFeatures} → {outFeatures}, type {type}).", nameof(rHat));
        if (rHat > Math.Min(inFeatures, outFeatures))
            throw new ArgumentException($"MoraOperator: r̂ = {rHat} exceeds min(in_features, out_features) = min({inFeatures}, {outFeatures}) = {Math.Min(inFeatures, outFeatures)} (type {type}); use a smaller LoRA rank for this layer.", nameof(rHat));
        if (type == MoraType.Rope && rHat % 2 != 0)
            throw new ArgumentException($"MoraOperator: type Rope needs an even r̂ (it rotates pairs (j, j + r̂/2)), got {rHat} (layer {inFeatures} → {outFeatures}).", nameof(rHat));

        In = inFeatures;
        Out = outFeatures;
        RHat = rHat;
        Type = type;
        FullChunks = inFeatures / rHat;
        Tail = inFeatures - FullChunks * rHat;
        var g = (inFeatures + rHat - 1) / rHat;
        Chunks = type == MoraType.Rope ? g : 1;
        CompressedWidth = type == MoraType.Rope ? g * rHat : rHat;
        // Rope: chunk outputs are concatenated and cut to `out`, so chunks starting at or after `out` never reach y.
        ActiveChunks = type == MoraType.Rope ? Math.Min(g, (outFeatures + rHat - 1) / rHat) : 1;

        _inGroupStart = type is MoraType.Interleave or MoraType.InterleaveTile ? GroupStarts(inFeatures, rHat) : [];
        _outGroupStart = type is MoraType.Interleave or MoraType.SharingInterleave ? GroupStarts(outFeatures, rHat) : [];

        if (type == MoraType.Rope)
        {
            var h = rHat / 2;
            _ropeCos = new float[g * h];
            _ropeSin = new float[g * h];
            _ropeCos64 = new double[g * h];
            _ropeSin64 = new double[g * h];
            for (var c = 0; c < g; c++)
                for (var k = 0; k < h; k++)
                {
                    var a = Angle(c, k);
                    _ropeCos64[c * h + k] = Math.Cos(a);
                    _ropeSin64[c * h + k] = Math.Sin(a);
                    _ropeCos[c * h + k] = (float)_ropeCos64[c * h + k];
                    _ropeSin[c * h + k] = (float)_ropeSin64[c * h + k];
                }
        }
        else
        {
            _ropeCos = _ropeSin = [];
            _ropeCos64 = _ropeSin64 = [];
        }
        Kernels = specialise ? MoraKernelRegistry.Find(inFeatures, outFeatures, rHat, type) : null;
        DeviceKernels = specialise ? MoraKernelRegistry.FindDevice(inFeatures, outFeatures, rHat, type) : null;
    }

    /// <summary>
    /// The generated ILGPU kernels specialised to this shape, or null: the ILGPU backend then runs its generic kernels.
    /// </summary>
    public IMoraDeviceKernels? DeviceKernels { get; }

    /// <summary>
    /// The generated kernels specialised to this shape, found in <see cref="MoraKernelRegistry"/> at construction, or
    /// null: the CPU backend then runs its generic kernels.
    /// </summary>
    public IMoraKernels? Kernels { get; }

    /// <summary>Input width (in_features).</summary>
    public int In { get; }

    /// <summary>Output width (out_features).</summary>
    public int Out { get; }

    /// <summary>r̂: M is r̂ × r̂.</summary>
    public int RHat { get; }

    /// <summary>The compression/decompression pair.</summary>
    public MoraType Type { get; }

    /// <summary>
    /// Chunks of r̂ in f_comp(x): G = ⌈in / r̂⌉ for <see cref="MoraType.Rope"/> (each wrap-padded chunk of x is
    /// rotated and kept); 1 for the other types (sharing also cuts x into G chunks, but sums them into one).
    /// </summary>
    public int Chunks { get; }

    /// <summary>Width of f_comp(x): G·r̂ for <see cref="MoraType.Rope"/> (G rotated chunks), r̂ otherwise.</summary>
    public int CompressedWidth { get; }

    /// <summary>
    /// Rope: the leading chunks whose outputs reach y, min(G, ⌈out / r̂⌉) (later chunks are cut off by
    /// f_decomp, so they contribute neither to ΔW·x nor to any gradient); 1 for the other types.
    /// <see cref="Ops.MoraDelta(Tensor, Tensor, MoraOperator, Tensor)"/> computes only these.
    /// </summary>
    public int ActiveChunks { get; }

    /// <summary><see cref="ActiveChunks"/>·r̂ for Rope, r̂ otherwise: the compressed width the fused op works on.</summary>
    public int ActiveWidth => ActiveChunks * RHat;

    /// <summary>⌊in / r̂⌋: chunks that lie wholly inside x (the rest, if any, is the wrap-padded last chunk).</summary>
    internal int FullChunks { get; }

    /// <summary>in − ⌊in / r̂⌋·r̂: inputs in the last, wrap-padded chunk (0 when r̂ divides in).</summary>
    internal int Tail { get; }

    /// <summary>Rope: cos(g·θ_k) for chunk g and k &lt; r̂/2, row-major [G, r̂/2] (position j uses k = j mod r̂/2). Empty otherwise.</summary>
    public ReadOnlySpan<float> RopeCos => _ropeCos;

    /// <summary>Rope: sin(g·θ_k), laid out like <see cref="RopeCos"/>.</summary>
    public ReadOnlySpan<float> RopeSin => _ropeSin;

    /// <summary>
    /// Interleaved compression (types 2, 3): output i sums inputs [s_i, s_{i+1}); r̂ + 1 boundaries. Empty otherwise.
    /// </summary>
    public ReadOnlySpan<int> InGroupStart => _inGroupStart;

    /// <summary>
    /// Repeat-interleave decompression (types 2, 4): ŷ_i fills outputs [s_i, s_{i+1}); r̂ + 1 boundaries. Empty otherwise.
    /// </summary>
    public ReadOnlySpan<int> OutGroupStart => _outGroupStart;

    internal float[] RopeCosArray => _ropeCos;
    internal float[] RopeSinArray => _ropeSin;
    internal int[] InGroupStartArray => _inGroupStart;
    internal int[] OutGroupStartArray => _outGroupStart;

    public override string ToString() => $"MoRA {Type} {In} → {Out}, r̂ = {RHat}{(Kernels != null ? " (specialised)" : "")}";

    /// <summary>
    /// ΔW [out × in] row-major for a given M [r̂ × r̂] (row-major): column j is f_decomp(M · f_comp(e_j)), so
    /// ΔW·x equals the operator exactly (up to rounding; computed in float64). Used to merge the adapter into W.
    /// </summary>
    public float[] DeltaWeight(ReadOnlySpan<float> m)
    {
        var r = RHat;
        if (m.Length != r * r)
            throw new ArgumentException($"MoraOperator.DeltaWeight: M has {m.Length} values, expected r̂ × r̂ = {r} × {r} = {r * r}.", nameof(m));
        var md = new double[r * r];
        for (var i = 0; i < md.Length; i++) md[i] = m[i];
        var w = new float[(long)Out * In];
        var yh = new double[CompressedWidth];
        var y = new double[Out];
        ForEachUnitCompression((j, xc) =>
        {
            // f_comp(e_j) is sparse (one entry, or a rotated pair per chunk): M·xc from the non-zero columns only.
            Array.Clear(yh);
            for (var c = 0; c < ActiveChunks; c++)
                for (var q = 0; q < r; q++)
                {
                    var v = xc[c * r + q];
                    if (v == 0) continue;
                    for (var p = 0; p < r; p++) yh[c * r + p] += md[p * r + q] * v;
                }
            DecompressReference(yh, y);
            for (var i = 0; i < Out; i++) w[(long)i * In + j] = (float)y[i];
        });
        return w;
    }

    /// <summary>Calls <paramref name="body"/>(j, f_comp(e_j)) in float64 for every unit vector e_j, j &lt; in (the vector is reused).</summary>
    private void ForEachUnitCompression(Action<int, double[]> body)
    {
        var e = new double[In];
        var xc = new double[CompressedWidth];
        for (var j = 0; j < In; j++)
        {
            e[j] = 1;
            CompressReference(e, xc);
            e[j] = 0;
            body(j, xc);
        }
    }

    /// <summary>Scalar float64 f_comp of one input vector (x: in values; xc: <see cref="CompressedWidth"/> values).</summary>
    internal void CompressReference(ReadOnlySpan<double> x, Span<double> xc)
    {
        var r = RHat;
        switch (Type)
        {
            case MoraType.Truncation:
                x[..r].CopyTo(xc);
                break;
            case MoraType.Sharing or MoraType.SharingInterleave:
                xc[..r].Clear();
                var nChunks = (In + r - 1) / r;
                for (var k = 0; k < nChunks * r; k++) xc[k % r] += x[k % In];
                break;
            case MoraType.Interleave or MoraType.InterleaveTile:
                for (var i = 0; i < r; i++)
                {
                    double s = 0;
                    for (var k = _inGroupStart[i]; k < _inGroupStart[i + 1]; k++) s += x[k];
                    xc[i] = s;
                }
                break;
            case MoraType.Rope:
                var h = r / 2;
                for (var g = 0; g < Chunks; g++)
                    for (var j = 0; j < r; j++)
                    {
                        var c = x[(g * r + j) % In];
                        var rot = j < h ? -x[(g * r + j + h) % In] : x[(g * r + j - h) % In];
                        xc[g * r + j] = c * _ropeCos64[g * h + j % h] + rot * _ropeSin64[g * h + j % h];
                    }
                break;
        }
    }

    /// <summary>
    /// Scalar float64 f_decomp of one vector: ŷ holds r̂ values (Rope: at least <see cref="ActiveChunks"/>·r̂, all
    /// <see cref="ActiveChunks"/> or <see cref="Chunks"/> chunks); y receives <see cref="Out"/> values.
    /// </summary>
    internal void DecompressReference(ReadOnlySpan<double> yhat, Span<double> y)
    {
        var r = RHat;
        switch (Type)
        {
            case MoraType.Truncation:
                y.Clear();
                yhat[..r].CopyTo(y);
                break;
            case MoraType.Sharing or MoraType.InterleaveTile:
                for (var i = 0; i < Out; i++) y[i] = yhat[i % r];
                break;
            case MoraType.Interleave or MoraType.SharingInterleave:
                for (var i = 0; i < r; i++)
                    for (var k = _outGroupStart[i]; k < _outGroupStart[i + 1]; k++) y[k] = yhat[i];
                break;
            case MoraType.Rope:
                // Tiling the active chunks equals tiling all G: when out > G·r̂ every chunk is active.
                var w = ActiveWidth;
                for (var i = 0; i < Out; i++) y[i] = yhat[i % w];
                break;
        }
    }

    private readonly Lock _basisGate = new();
    private readonly Dictionary<Device, Tensor> _basis = [];

    /// <summary>
    /// f_comp of every unit vector, kept on <paramref name="device"/>: row j of this [in, <see cref="ActiveWidth"/>]
    /// matrix is f_comp(e_j) (its first <see cref="ActiveChunks"/> chunks), so that ΔWᵀ row j =
    /// f_decomp(M·f_comp(e_j)) is one GEMM (rows · Mᵀ, chunk by chunk) and one decompression. Computed in float64
    /// once per device and reused: the operator is fixed.
    /// </summary>
    internal Tensor CompressBasis(Device device)
    {
        lock (_basisGate)
        {
            if (_basis.TryGetValue(device, out var t)) return t;
            var w = ActiveWidth;
            var values = new float[(long)In * w];
            ForEachUnitCompression((j, xc) =>
            {
                for (var q = 0; q < w; q++) values[(long)j * w + q] = (float)xc[q];
            });
            t = Tensor.EmptyIn(device, [In * ActiveChunks, RHat], null);
            t.CopyFrom(values);
            _basis[device] = t;
            return t;
        }
    }

    /// <summary>
    /// Frees the f_comp bases cached on devices (<see cref="CompressBasis"/>): a ReMoRA restart replaces its
    /// operator, and device memory is not left to the garbage collector.
    /// </summary>
    internal void ReleaseCaches()
    {
        lock (_basisGate)
        {
            foreach (var t in _basis.Values) (t.Storage as IDisposable)?.Dispose();
            _basis.Clear();
        }
    }

    private readonly Lock _tapsGate = new();
    private (int[] Q, float[] V)? _taps;

    /// <summary>
    /// The f_comp basis (<see cref="CompressBasis"/>) as at most two taps per input and active chunk: chunk c of
    /// f_comp(e_j) is V[t]·e_{Q[t]} + V[t + in]·e_{Q[t + in]} for t = 2c·in + j (two planes of in taps per chunk), with
    /// the taps in ascending q and an unused tap (Q 0, V 0) in the second plane. Interleave and truncation have one
    /// tap, sharing up to two (an input and its wrap-padding copy), Rope up to two (a position and its rotation
    /// partner): r̂ ≤ in keeps every input within two positions of a chunk. ΔW is a gather from M: ΔW[i, j] = Σ taps V·M[a, Q] with (c, a) the slot
    /// f_decomp copies into output i. Built in float64 on first use and kept.
    /// </summary>
    internal (int[] Q, float[] V) CompressTaps()
    {
        lock (_tapsGate)
        {
            if (_taps is { } built) return built;
            int r = RHat, chunks = ActiveChunks;
            var q = new int[2 * chunks * In];
            var v = new float[2 * chunks * In];
            ForEachUnitCompression((j, xc) =>
            {
                for (var c = 0; c < chunks; c++)
                {
                    var t = 2 * c * In + j;
                    var used = 0;
                    for (var k = 0; k < r; k++)
                    {
                        var value = (float)xc[c * r + k];
                        if (value == 0) continue;
                        if (used == 2) throw new InvalidOperationException($"MoraOperator ({this}): input {j} reaches chunk {c} at more than two positions.");
                        q[t + used * In] = k;
                        v[t + used * In] = value;
                        used++;
                    }
                }
            });
            _taps = (q, v);
            return (q, v);
        }
    }

    private int[][]? _tapRuns;

    /// <summary>
    /// Per active chunk c, the inputs j that reach it (a nonzero tap in <see cref="CompressTaps"/>) as maximal runs
    /// [lo, hi), flattened in pairs. Rope's chunk c is its own r̂ inputs (and a wrap), so a merged weight row touches
    /// only those; the other types reach every chunk from every input (one run [0, in)). Built on first use and kept.
    /// </summary>
    internal int[][] CompressTapRuns()
    {
        var (_, v) = CompressTaps();
        lock (_tapsGate)
        {
            if (_tapRuns is { } built) return built;
            var runs = new int[ActiveChunks][];
            var list = new List<int>();
            for (var c = 0; c < runs.Length; c++)
            {
                list.Clear();
                int t = 2 * c * In, start = -1;
                for (var j = 0; j <= In; j++)
                {
                    bool on = j < In && (v[t + j] != 0 || v[t + In + j] != 0);
                    if (on && start < 0) start = j;
                    else if (!on && start >= 0)
                    {
                        list.Add(start);
                        list.Add(j);
                        start = -1;
                    }
                }
                runs[c] = list.ToArray();
            }
            return _tapRuns = runs;
        }
    }

    private float[]? _ropeStack;

    /// <summary>
    /// Rope: the active chunks' rotations stacked, [<see cref="ActiveWidth"/>, r̂] row-major, row c·r̂ + l = chunk c's
    /// rotation of a unit value at position l. Chunk c of f_comp(x) is Σ_l x[(c·r̂ + l) mod in]·row (c·r̂ + l), so
    /// Σ_tokens gŷ_cᵀ·f_comp(x)_c = (Σ_tokens gŷ_cᵀ·x's slice for chunk c)·this chunk's rows: M's gradient can read x in
    /// place (<see cref="Backends.IBackend.MoraWeightGradient"/>). Built from <see cref="CompressTaps"/> on first use and kept.
    /// </summary>
    internal float[] RopeStack()
    {
        if (Type != MoraType.Rope) throw new InvalidOperationException($"MoraOperator ({this}): only Rope has chunk rotations.");
        lock (_tapsGate)
        {
            if (_ropeStack != null) return _ropeStack;
        }
        var (q, v) = CompressTaps();
        int r = RHat, w = ActiveWidth;
        var stack = new float[(long)w * r];
        for (var c = 0; c < ActiveChunks; c++)
            for (var l = 0; l < r; l++)
            {
                var j = (c * r + l) % In;
                for (var t = 0; t < 2; t++)
                {
                    var idx = (2 * c + t) * In + j;
                    if (v[idx] != 0) stack[(long)(c * r + l) * r + q[idx]] = v[idx];
                }
            }
        lock (_tapsGate) return _ropeStack ??= stack;
    }

    /// <summary>Devices holding a cached f_comp basis (tests).</summary>
    internal int CachedBases
    {
        get { lock (_basisGate) return _basis.Count; }
    }

    private int[]? _decompressMap, _compressTransposeMap, _decompressSources;

    /// <summary>
    /// f_decomp as a column map from ŷ [rows, chunks·r̂] into y [rows, out]: quadruples (dst, src, len, broadcast)
    /// with y[dst + t] += ŷ[src + t] (ŷ[src] when broadcast) for t &lt; len, the form a GEMM epilogue applies
    /// (<see cref="Backends.IBackend.MoraLinear"/>). Tiles (types 0, 1, 3, 6) are slices; repeat-interleave groups
    /// (types 2, 4) are broadcasts. Rope needs chunks ≥ <see cref="ActiveChunks"/>.
    /// </summary>
    internal int[] DecompressMap(int chunks)
    {
        if (chunks == ActiveChunks && _decompressMap != null) return _decompressMap;
        var r = RHat;
        var map = new List<int>();
        void Add(int d, int s, int len, int bc) { if (len > 0) map.AddRange([d, s, len, bc]); }
        switch (Type)
        {
            case MoraType.Truncation:
                Add(0, 0, r, 0);
                break;
            case MoraType.Sharing or MoraType.InterleaveTile or MoraType.Rope:
                var w = Type == MoraType.Rope ? chunks * r : r;
                for (var s = 0; s < Out; s += w) Add(s, 0, Math.Min(w, Out - s), 0);
                break;
            case MoraType.Interleave or MoraType.SharingInterleave:
                for (var i = 0; i < r; i++) Add(_outGroupStart[i], i, _outGroupStart[i + 1] - _outGroupStart[i], 1);
                break;
        }
        var result = map.ToArray();
        if (chunks == ActiveChunks) _decompressMap = result;
        return result;
    }

    /// <summary>
    /// True when f_decomp over <paramref name="chunks"/> chunks is the identity (the compressed width equals out and
    /// one slice covers it: Rope whose active chunks tile y exactly once, or a tile or truncation with r̂ = out), so
    /// that f_decompᵀ(gy) is gy itself.
    /// </summary>
    internal bool DecompressIsIdentity(int chunks)
    {
        if (chunks * RHat != Out) return false;
        var map = DecompressMap(chunks);
        return map.Length == 4 && map[0] == 0 && map[1] == 0 && map[2] == Out && map[3] == 0;
    }

    /// <summary>
    /// For every output i, the compressed slot f_decomp copies into it (y_i = ŷ[p(i)]), or −1 when none does
    /// (truncation past r̂): <see cref="DecompressMap"/> as one source per output, which every type has.
    /// </summary>
    internal int[] DecompressSources(int chunks)
    {
        if (chunks == ActiveChunks && _decompressSources != null) return _decompressSources;
        var p = new int[Out];
        Array.Fill(p, -1);
        var map = DecompressMap(chunks);
        for (var q = 0; q < map.Length; q += 4)
            for (var t = 0; t < map[q + 2]; t++) p[map[q] + t] = map[q + 3] != 0 ? map[q + 1] : map[q + 1] + t;
        if (chunks == ActiveChunks) _decompressSources = p;
        return p;
    }

    /// <summary>
    /// f_compᵀ as a column map from gx̂ [rows, chunks·r̂] into gx [rows, in], in <see cref="DecompressMap"/>'s form:
    /// sharing scatters every chunk (and the wrap padding back to x's first elements), interleave repeats each slot
    /// over its group, truncation is one slice. For Rope the map applies to the gradient already rotated back
    /// chunk by chunk (the rotation is not a column map); chunks past <paramref name="chunks"/> get nothing.
    /// </summary>
    internal int[] CompressTransposeMap(int chunks)
    {
        if (chunks == ActiveChunks && _compressTransposeMap != null) return _compressTransposeMap;
        var r = RHat;
        var map = new List<int>();
        void Add(int d, int s, int len, int bc) { if (len > 0) map.AddRange([d, s, len, bc]); }
        switch (Type)
        {
            case MoraType.Truncation:
                Add(0, 0, r, 0);
                break;
            case MoraType.Sharing or MoraType.SharingInterleave:
                for (var c = 0; c < FullChunks; c++) Add(c * r, 0, r, 0);
                if (Tail > 0)
                {
                    // The last chunk is x[full·r̂ ..) followed by the wrap padding x[0 .. r̂ − tail).
                    Add(FullChunks * r, 0, Tail, 0);
                    Add(0, Tail, r - Tail, 0);
                }
                break;
            case MoraType.Interleave or MoraType.InterleaveTile:
                for (var i = 0; i < r; i++) Add(_inGroupStart[i], i, _inGroupStart[i + 1] - _inGroupStart[i], 1);
                break;
            case MoraType.Rope:
                var whole = Math.Min(chunks, FullChunks);
                for (var c = 0; c < whole; c++) Add(c * r, c * r, r, 0);
                if (chunks > FullChunks)
                {
                    Add(FullChunks * r, FullChunks * r, Tail, 0);
                    Add(0, FullChunks * r + Tail, r - Tail, 0);
                }
                break;
        }
        var result = map.ToArray();
        if (chunks == ActiveChunks) _compressTransposeMap = result;
        return result;
    }

    /// <summary>RoPE angle of chunk g at frequency index k &lt; r̂/2: g·10000^(−2k/r̂).</summary>
    private double Angle(int g, int k) => g * Math.Pow(10000.0, -2.0 * k / RHat);

    /// <summary>
    /// Interleave groups of n items into r parts: nr = ⌊n/r⌋, the first n − r·nr parts take nr + 1 items, the rest nr.
    /// </summary>
    private static int[] GroupStarts(int n, int r)
    {
        var nr = n / r;
        var m = n - r * nr;
        var s = new int[r + 1];
        for (var i = 0; i < r; i++) s[i + 1] = s[i] + (i < m ? nr + 1 : nr);
        return s;
    }

    private static void CheckType(MoraType type, string op)
    {
        if (!Enum.IsDefined(type))
            throw new ArgumentException($"{op}: unknown MoRA type {(int)type} (expected 0, 1, 2, 3, 4 or 6).", nameof(type));
    }
}
