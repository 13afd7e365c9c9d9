using System.Diagnostics;
using MoraEngine.Adapters;
using MoraEngine.Backends;

namespace MoraEngine.Diagnostics;

/// <summary>
/// Specialised vs generic MoRA kernels, and MoRA vs LoRA, on one layer shape over a batch of tokens: what
/// <c>mora bench kernels</c> prints and what bench/MoraEngine.Bench/KernelBenchmarks.cs measures in depth.
/// </summary>
internal static class MoraKernelBench
{
    /// <summary>The cases: (512, 2048), (1024, 1024) and (256, 1024) at LoRA rank 8, types 1 and 6.</summary>
    public static readonly (int In, int Out)[] DefaultShapes = [(512, 2048), (1024, 1024), (256, 1024)];

    public static readonly MoraType[] DefaultTypes = [MoraType.Sharing, MoraType.Rope];

    /// <summary>
    /// Median microseconds of one forward + backward (<c>*Kernels*</c>: compress and decompress only, run in sequence
    /// as a training step runs them; <c>*HotKernels*</c>: the sum of the four timed one at a time, each repeated on
    /// the same buffers, so its operands stay in cache as far as they fit). <see cref="KernelBytes"/> is what the four
    /// kernels must read and write at least, so <c>KernelBytes / time</c> is the memory throughput they reach.
    /// </summary>
    public sealed record Result(int In, int Out, int Rank, MoraType Type, int RHat, int Tokens, bool Specialised,
        double GenericUs, double SpecialisedUs, double LoraUs, double GenericKernelsUs, double SpecialisedKernelsUs,
        double GenericHotKernelsUs, double SpecialisedHotKernelsUs, long KernelBytes, double StreamUs, long StreamBytes,
        double BaseLayerUs, double UnfusedLayerUs, double FusedLayerUs, double EpilogueLayerUs, double LoraLayerUs,
        double UnfusedAdapterUs, double FusedAdapterUs, string ChosenKernels = "", string BitIdenticalKernels = "")
    {
        // UnfusedAdapterUs: what the adapter adds to its frozen layer, unfused with the generic kernels (Linear, then
        // MoraDelta). FusedAdapterUs: what it adds in Ops.LinearMora at these many tokens (the merged weight). Both are
        // medians over the rounds of the layer's time minus the frozen layer's time in the same round, not differences
        // of medians: the layers take tens of milliseconds and the adapter a few, so drift between rounds would swamp it.

        /// <summary>Unfused generic / fused time of the adapter's share of the layer (layer minus its frozen GEMMs).</summary>
        public double FusionSpeedup => UnfusedAdapterUs / Math.Max(1e-3, FusedAdapterUs);

        /// <summary>Unfused generic / fused time of the whole layer, frozen GEMMs included.</summary>
        public double LayerSpeedup => UnfusedLayerUs / FusedLayerUs;

        /// <summary>GB/s of plain streaming passes over the same buffers (<see cref="Layer.Stream"/>), timed the same way.</summary>
        public double StreamGBps => StreamBytes / (StreamUs * 1e3);

        /// <summary>The four kernels' <see cref="KernelBytes"/> at <see cref="StreamGBps"/>: the memory floor of compress + decompress.</summary>
        public double KernelFloorUs => KernelBytes / (StreamGBps * 1e3);

        /// <summary>Generic / specialised time of compress + decompress, forward + backward, in sequence.</summary>
        public double KernelSpeedup => GenericKernelsUs / SpecialisedKernelsUs;

        /// <summary>Generic / specialised time of the four kernels, each timed alone with its operands in cache.</summary>
        public double HotKernelSpeedup => GenericHotKernelsUs / SpecialisedHotKernelsUs;

        /// <summary>GB/s the specialised kernels move in sequence (<see cref="KernelBytes"/> over their time).</summary>
        public double SpecialisedGBps => KernelBytes / (SpecialisedKernelsUs * 1e3);

        /// <summary>The whole specialised MoRA path (compress, M, decompress) over LoRA's two small matmuls.</summary>
        public double MoraOverLora => SpecialisedUs / LoraUs;
    }

    /// <summary>The tensors of one layer's adapter path, allocated once.</summary>
    public sealed class Layer
    {
        private readonly IBackend _be;
        private readonly int _tokens, _r, _rows, _lr, _in, _out;
        private readonly Tensor _x, _xc, _yhat, _y, _gy, _gyhat, _gxc, _gx, _m, _gm, _a, _b, _h, _gh, _ga, _gb, _w, _bT, _wMerged;

        public Layer(int inFeatures, int outFeatures, int rank, MoraType type, int tokens, ulong seed = 1, Device? device = null)
        {
            device ??= Device.Cpu;
            var rHat = MoraOperator.RankHat(inFeatures, outFeatures, rank, type);
            Fast = new MoraOperator(inFeatures, outFeatures, rHat, type);
            Generic = new MoraOperator(inFeatures, outFeatures, rHat, type, specialise: false);
            _tokens = tokens;
            _r = rHat;
            _lr = rank;
            _in = inFeatures;
            _out = outFeatures;
            _rows = tokens * Fast.ActiveChunks;
            var rng = new Rng(seed);
            _x = Tensor.RandN(rng, 1f, tokens, inFeatures).To(device);
            _gy = Tensor.RandN(rng, 1f, tokens, outFeatures).To(device);
            _y = Tensor.Zeros(tokens, outFeatures).To(device);
            _gx = Tensor.Zeros(tokens, inFeatures).To(device);
            _xc = Tensor.Zeros(_rows, rHat).To(device);
            _yhat = Tensor.Zeros(_rows, rHat).To(device);
            _gyhat = Tensor.Zeros(_rows, rHat).To(device);
            _gxc = Tensor.Zeros(_rows, rHat).To(device);
            _m = Tensor.RandN(rng, 0.05f, rHat, rHat).To(device);
            _gm = Tensor.Zeros(rHat, rHat).To(device);
            _a = Tensor.RandN(rng, 0.05f, rank, inFeatures).To(device);
            _b = Tensor.RandN(rng, 0.05f, outFeatures, rank).To(device);
            _h = Tensor.Zeros(tokens, rank).To(device);
            _gh = Tensor.Zeros(tokens, rank).To(device);
            _ga = Tensor.Zeros(rank, inFeatures).To(device);
            _gb = Tensor.Zeros(outFeatures, rank).To(device);
            _w = Tensor.RandN(rng, 0.05f, outFeatures, inFeatures).To(device);
            _bT = Tensor.Zeros(rank, outFeatures).To(device);
            _wMerged = Tensor.Zeros(outFeatures, inFeatures).To(device);
            _be = _x.Device.Backend;
        }

        public MoraOperator Fast { get; }
        public MoraOperator Generic { get; }

        /// <summary>Bytes the four kernels read and write at the least (f32): x → x̂, ŷ → y (read and written), gy → gŷ, gx̂ → gx.</summary>
        public long KernelBytes => 4L * _tokens * ((_in + _r * Fast.ActiveChunks) * 2 + _r * Fast.ActiveChunks * 2 + _out * 3);

        /// <summary>Bytes <see cref="Stream"/> moves: x read, gx written, gy and y read, y written.</summary>
        public long StreamBytes => 4L * _tokens * (2 * _in + 3 * _out);

        /// <summary>
        /// gx = x, then y += gy: plain streaming passes over the same buffers the four kernels must read and write
        /// (all of it but the small compressed rows), in the same order: the memory floor in the same cache regime.
        /// </summary>
        public void Stream()
        {
            _be.Copy(_x, _gx);
            _be.Scale(_gy, 1f, _y, true);
        }

        /// <summary>One of the four kernels alone (0 compress, 1 decompress-add, 2 decompress backward, 3 compress backward).</summary>
        public void Kernel(MoraOperator op, int which)
        {
            var c = op.ActiveChunks;
            switch (which)
            {
                case 0: _be.MoraCompress(op, _x, _xc, _tokens, c); break;
                case 1: _be.MoraDecompressAdd(op, _yhat, _y, _tokens, c); break;
                case 2: _be.MoraDecompressBackward(op, _gy, _gyhat, _tokens, c); break;
                default: _be.MoraCompressBackward(op, _gxc, _gx, _tokens, c, false); break;
            }
        }

        /// <summary>Compress and decompress, forward and backward: the part the generator specialises.</summary>
        public void Kernels(MoraOperator op)
        {
            var c = op.ActiveChunks;
            _be.MoraCompress(op, _x, _xc, _tokens, c);
            _be.MoraDecompressAdd(op, _yhat, _y, _tokens, c);
            _be.MoraDecompressBackward(op, _gy, _gyhat, _tokens, c);
            _be.MoraCompressBackward(op, _gxc, _gx, _tokens, c, false);
        }

        /// <summary>The MoRA adapter path as <see cref="Ops.MoraDelta"/> runs it (without the copy of the base output).</summary>
        public void Mora(MoraOperator op)
        {
            int c = op.ActiveChunks, r = _r;
            _be.MoraCompress(op, _x, _xc, _tokens, c);
            _be.Gemm(1, _rows, r, r, 1f, _xc, false, 0, _m, true, 0, 0f, _yhat, 0);
            _be.MoraDecompressAdd(op, _yhat, _y, _tokens, c);
            _be.MoraDecompressBackward(op, _gy, _gyhat, _tokens, c);
            _be.Gemm(1, r, r, _rows, 1f, _gyhat, true, 0, _xc, false, 0, 0f, _gm, 0);
            _be.Gemm(1, _rows, r, r, 1f, _gyhat, false, 0, _m, false, 0, 0f, _gxc, 0);
            _be.MoraCompressBackward(op, _gxc, _gx, _tokens, c, false);
        }

        /// <summary>The frozen layer alone: y = x·Wᵀ and gx = gy·W (what every adapted layer costs at the least).</summary>
        public void BaseLayer()
        {
            _be.Gemm(1, _tokens, _out, _in, 1f, _x, false, 0, _w, true, 0, 0f, _y, 0);
            _be.Gemm(1, _tokens, _in, _out, 1f, _gy, false, 0, _w, false, 0, 0f, _gx, 0);
        }

        /// <summary>The frozen layer and its MoRA update unfused, as Linear followed by MoraDelta runs them.</summary>
        public void UnfusedLayer(MoraOperator op)
        {
            int c = op.ActiveChunks, r = _r;
            _be.Gemm(1, _tokens, _out, _in, 1f, _x, false, 0, _w, true, 0, 0f, _y, 0);
            _be.MoraCompress(op, _x, _xc, _tokens, c);
            _be.Gemm(1, _rows, r, r, 1f, _xc, false, 0, _m, true, 0, 0f, _yhat, 0);
            _be.MoraDecompressAdd(op, _yhat, _y, _tokens, c);
            _be.MoraDecompressBackward(op, _gy, _gyhat, _tokens, c);
            _be.Gemm(1, r, r, _rows, 1f, _gyhat, true, 0, _xc, false, 0, 0f, _gm, 0);
            _be.Gemm(1, _rows, r, r, 1f, _gyhat, false, 0, _m, false, 0, 0f, _gxc, 0);
            _be.MoraCompressBackward(op, _gxc, _gx, _tokens, c, false);
            _be.Gemm(1, _tokens, _in, _out, 1f, _gy, false, 0, _w, false, 0, 1f, _gx, 0);
        }

        /// <summary>
        /// The layer as <see cref="Ops.LinearMora"/> runs it for many tokens: W' = W + ΔW built from M, the plain GEMMs on
        /// W', and M's gradient from f_decompᵀ(gy) and x (<see cref="Backends.IBackend.MoraWeightGradient"/>).
        /// </summary>
        public void MergedLayer(MoraOperator op)
        {
            int c = op.ActiveChunks;
            _be.MoraMergeWeight(op, _w, _m, _wMerged);
            _be.Gemm(1, _tokens, _out, _in, 1f, _x, false, 0, _wMerged, true, 0, 0f, _y, 0);
            var identity = op.DecompressIsIdentity(c);
            if (!identity) _be.MoraDecompressBackward(op, _gy, _gyhat, _tokens, c);
            _be.MoraWeightGradient(op, identity ? _gy : _gyhat, _x, _gm, _tokens, c, accumulate: false);
            _be.Gemm(1, _tokens, _in, _out, 1f, _gy, false, 0, _wMerged, false, 0, 0f, _gx, 0);
        }

        /// <summary>The layer with the update as the GEMMs' epilogue, as <see cref="Ops.LinearMora"/> runs it for few tokens.</summary>
        public void FusedLayer(MoraOperator op)
        {
            int c = op.ActiveChunks, r = _r;
            _be.MoraCompress(op, _x, _xc, _tokens, c);
            _be.Gemm(1, _rows, r, r, 1f, _xc, false, 0, _m, true, 0, 0f, _yhat, 0);
            _be.MoraLinear(op, _x, _w, _yhat, _y, _tokens, c);
            _be.MoraDecompressBackward(op, _gy, _gyhat, _tokens, c);
            _be.Gemm(1, r, r, _rows, 1f, _gyhat, true, 0, _xc, false, 0, 0f, _gm, 0);
            _be.Gemm(1, _rows, r, r, 1f, _gyhat, false, 0, _m, false, 0, 0f, _gxc, 0);
            _be.MoraLinearInputGradient(op, _gy, _w, _gxc, _gx, _tokens, c, false);
        }

        /// <summary>The frozen layer with LoRA joined along K, as <see cref="Ops.LinearLora"/> runs it.</summary>
        public void LoraLayer()
        {
            int r = _lr;
            _be.Gemm(1, _tokens, r, _in, 2f, _x, false, 0, _a, true, 0, 0f, _h, 0);
            _be.GemmConcat(_tokens, _out, _in, 1f, _x, false, _w, true, r, _h, _b, 0f, _y);
            _be.Gemm(1, _out, r, _tokens, 1f, _gy, true, 0, _h, false, 0, 0f, _gb, 0);
            _be.Transpose(_b, _bT, 1, _out, r);
            _be.Gemm(1, _tokens, r, _out, 2f, _gy, false, 0, _bT, true, 0, 0f, _gh, 0);
            _be.Gemm(1, r, _in, _tokens, 1f, _gh, true, 0, _x, false, 0, 0f, _ga, 0);
            _be.GemmConcat(_tokens, _in, _out, 1f, _gy, false, _w, false, r, _gh, _a, 0f, _gx);
        }

        /// <summary>LoRA's path at the same budget, as <see cref="Ops.LoraDelta"/> runs it: two small matmuls and their gradients.</summary>
        public void Lora()
        {
            int r = _lr;
            _be.Gemm(1, _tokens, r, _in, 1f, _x, false, 0, _a, true, 0, 0f, _h, 0);
            _be.Gemm(1, _tokens, _out, r, 2f, _h, false, 0, _b, true, 0, 1f, _y, 0);
            _be.Gemm(1, _out, r, _tokens, 2f, _gy, true, 0, _h, false, 0, 0f, _gb, 0);
            _be.Gemm(1, _tokens, r, _out, 2f, _gy, false, 0, _b, false, 0, 0f, _gh, 0);
            _be.Gemm(1, r, _in, _tokens, 1f, _gh, true, 0, _x, false, 0, 0f, _ga, 0);
            _be.Gemm(1, _tokens, _in, r, 1f, _gh, false, 0, _a, false, 0, 0f, _gx, 0);
        }
    }

    /// <summary>
    /// Medians over <paramref name="repeats"/> rounds; each round times every variant once, interleaved (forward and
    /// reverse order in turn), so drift from other processes on the machine hits them alike. Each timing follows one untimed call of the same variant
    /// (so each starts from its own cache state) and repeats its call enough to last ≥ ~2 ms.
    /// </summary>
    public static Result Measure(int inFeatures, int outFeatures, int rank, MoraType type, int tokens, int repeats, Device? device = null)
    {
        device ??= Device.Cpu;
        var layer = new Layer(inFeatures, outFeatures, rank, type, tokens, device: device);
        var variants = new List<Action>
        {
            () => layer.Mora(layer.Generic),
            () => layer.Mora(layer.Fast),
            layer.Lora,
            () => layer.Kernels(layer.Generic),
            () => layer.Kernels(layer.Fast),
        };
        for (var k = 0; k < 4; k++)
        {
            var which = k;
            variants.Add(() => layer.Kernel(layer.Generic, which));
            variants.Add(() => layer.Kernel(layer.Fast, which));
        }
        variants.Add(layer.Stream);
        variants.Add(layer.BaseLayer);
        variants.Add(() => layer.UnfusedLayer(layer.Generic));
        variants.Add(() => layer.MergedLayer(layer.Fast));
        variants.Add(() => layer.FusedLayer(layer.Fast));
        variants.Add(layer.LoraLayer);
        var sync = () => Devices.Synchronize(device);
        // Warm up round-robin, so no variant is timed while another's code is still being recompiled: every call
        // site must pass tiered JIT's call counting (30 calls) and its 100 ms quiet period, and the tier-1 code is
        // compiled on a background thread that competes for the same two cores. Then size each timing to ≥ ~2 ms.
        var warm = Stopwatch.GetTimestamp();
        for (var n = 0; n < 40 || Stopwatch.GetElapsedTime(warm).TotalMilliseconds < 400; n++)
            foreach (var v in variants) v();
        sync();
        var inner = new int[variants.Count];
        for (var v = 0; v < variants.Count; v++)
        {
            var t0 = Stopwatch.GetTimestamp();
            var n = 0;
            do
            {
                variants[v]();
                n++;
                if (n % 8 == 0) sync();
            } while (n < 5 || Stopwatch.GetElapsedTime(t0).TotalMilliseconds < 20);
            sync();
            inner[v] = (int)Math.Clamp(2.0 / (Stopwatch.GetElapsedTime(t0).TotalMilliseconds / n), 1, 1000);
        }
        var samples = new double[variants.Count][];
        for (var v = 0; v < variants.Count; v++) samples[v] = new double[repeats];
        for (var i = 0; i < repeats; i++)
            for (var vv = 0; vv < variants.Count; vv++)
            {
                // Every other round runs the variants in reverse order, so each follows both of its neighbours equally
                // often: a variant timed right after LoRA's GEMMs runs measurably slower for a while.
                var v = i % 2 == 0 ? vv : variants.Count - 1 - vv;
                // One untimed call first: the variants share x, y, gy and gx (LoRA reads x and writes gx last), so
                // without it whichever variant follows another would find part of its data in cache.
                variants[v]();
                sync();
                var t0 = Stopwatch.GetTimestamp();
                for (var k = 0; k < inner[v]; k++) variants[v]();
                sync();
                samples[v][i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds / inner[v];
            }
        var med = samples.Select(Median).ToArray();
        double PairedOverBase(int v) => Median(samples[v].Select((t, i) => t - samples[14][i]).ToArray());
        double hotGeneric = 0, hotFast = 0;
        for (var k = 0; k < 4; k++)
        {
            hotGeneric += med[5 + 2 * k];
            hotFast += med[6 + 2 * k];
        }
        var specialised = ReferenceEquals(device, Device.Cpu) ? layer.Fast.Kernels != null : layer.Fast.DeviceKernels != null;
        // On the CPU the backend runs a generated kernel only where it measured it no slower and bit-identical.
        var choice = device.Backend is Backends.Cpu.CpuBackend cpu ? cpu.ChoiceFor(layer.Fast) : null;
        return new Result(inFeatures, outFeatures, rank, type, layer.Fast.RHat, tokens, specialised,
            med[0], med[1], med[2], med[3], med[4], hotGeneric, hotFast, layer.KernelBytes, med[13], layer.StreamBytes,
            med[14], med[15], med[16], med[17], med[18], PairedOverBase(15), PairedOverBase(16),
            choice?.Use.ToString() ?? "", choice?.BitIdentical.ToString() ?? "");
    }

    private static double Median(double[] xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
