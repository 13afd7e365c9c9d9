using System.Collections.Concurrent;
using System.Diagnostics;
using MoraEngine.Adapters;

namespace MoraEngine.Backends.Cpu;

/// <summary>The four MoRA kernels, as flags of which ones run their generated specialisation.</summary>
[Flags]
internal enum MoraKernelUse
{
    None = 0,
    Compress = 1,
    CompressBackward = 2,
    DecompressAdd = 4,
    DecompressBackward = 8,
}

public sealed partial class CpuBackend
{
    // A generated kernel runs only where it was measured no slower than the generic one on this machine, and only if
    // it computes the same bits: then the choice, which depends on timing, cannot change any result. Measured once
    // per shape and process, on the first use of the shape.
    private static readonly ConcurrentDictionary<(int In, int Out, int RHat, MoraType Type), MoraKernelChoice> s_choice = new();

    /// <summary>The generated kernels of <paramref name="op"/> if they run <paramref name="which"/> here, else null.</summary>
    private IMoraKernels? Specialised(MoraOperator op, MoraKernelUse which) =>
        ChoiceFor(op) is { } c && (c.Use & which) != 0 ? op.Kernels : null;

    /// <summary>The measured choice for <paramref name="op"/>'s shape (measured now if it is new), or null without generated kernels.</summary>
    internal MoraKernelChoice? ChoiceFor(MoraOperator op)
    {
        if (op.Kernels is not { } k) return null;
        var key = (op.In, op.Out, op.RHat, op.Type);
        // Looked up on every kernel call: only a new shape builds the measuring closure.
        return s_choice.TryGetValue(key, out var c) ? c : s_choice.GetOrAdd(key, _ => Choose(op, k));
    }

    /// <summary>What the measurement of one shape found (for <c>mora bench kernels</c> and tests).</summary>
    internal sealed record MoraKernelChoice(MoraKernelUse Use, MoraKernelUse BitIdentical, double[] GenericUs, double[] SpecialisedUs);

    /// <summary>
    /// Runs each of the four kernels generic and specialised on the same random batch at the operator's active
    /// width: kernels whose outputs differ in any bit stay generic; the others are timed, alternating, and the
    /// specialisation is used when its best time is no worse than the generic one's.
    /// </summary>
    internal MoraKernelChoice Choose(MoraOperator op, IMoraKernels k)
    {
        var rows = Math.Clamp((1 << 16) / (op.In + op.Out), 16, 512);
        int chunks = op.ActiveChunks, w = chunks * op.RHat;
        using var _ = Autograd.Graph.NoGrad();
        var rng = new Rng(0x5eed);
        // Outside any memory scope (this may run inside a training step): a one-off batch for the garbage collector,
        // not buffers of odd sizes left in the device pool.
        Tensor Fresh(int n, int d, bool random)
        {
            var t = Tensor.EmptyIn(Device.Cpu, [n, d], null);
            var span = t.Span;
            for (var i = 0; i < span.Length; i++) span[i] = random ? rng.NextNormal() : 0f;
            return t;
        }
        Tensor R(int n, int d) => Fresh(n, d, random: true);
        var x = R(rows, op.In);
        var gy = R(rows, op.Out);
        var xc = R(rows, w);
        var y0 = R(rows, op.Out);
        var gx0 = R(rows, op.In);
        // Two output buffers (generic, specialised), each room for two [rows, width] results.
        var room = 2 * rows * Math.Max(op.In, Math.Max(op.Out, w));
        Tensor a = Fresh(1, room, random: false), b = Fresh(1, room, random: false);
        Tensor Part(Tensor t, int part, int d) => t.ViewOf(part * rows * d, [rows, d], false);

        var kernels = new (MoraKernelUse Which, Action<IMoraKernels?, Tensor> Run)[]
        {
            (MoraKernelUse.Compress, (s, dst) => MoraCompress(op, x, Part(dst, 0, w), rows, chunks, s)),
            (MoraKernelUse.CompressBackward, (s, dst) =>
            {
                // Both modes: overwrite, and accumulate into a gradient that holds values.
                MoraCompressBackward(op, xc, Part(dst, 0, op.In), rows, chunks, false, s);
                Copy(gx0, Part(dst, 1, op.In));
                MoraCompressBackward(op, xc, Part(dst, 1, op.In), rows, chunks, true, s);
            }),
            (MoraKernelUse.DecompressAdd, (s, dst) =>
            {
                Copy(y0, Part(dst, 0, op.Out));
                MoraDecompressAdd(op, xc, Part(dst, 0, op.Out), rows, chunks, s);
            }),
            (MoraKernelUse.DecompressBackward, (s, dst) => MoraDecompressBackward(op, gy, Part(dst, 0, w), rows, chunks, s)),
        };
        MoraKernelUse use = MoraKernelUse.None, same = MoraKernelUse.None;
        var tg = new double[4];
        var ts = new double[4];
        for (var i = 0; i < kernels.Length; i++)
        {
            var (which, run) = kernels[i];
            a.Span.Clear();
            b.Span.Clear();
            run(null, a);
            run(k, b);
            if (!a.Span.SequenceEqual(b.Span)) continue;
            same |= which;
            double bestG = double.MaxValue, bestS = double.MaxValue;
            for (var rep = 0; rep < 7; rep++)
            {
                var t0 = Stopwatch.GetTimestamp();
                run(null, a);
                bestG = Math.Min(bestG, Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                t0 = Stopwatch.GetTimestamp();
                run(k, b);
                bestS = Math.Min(bestS, Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            }
            tg[i] = bestG;
            ts[i] = bestS;
            if (bestS <= bestG) use |= which;
        }
        return new MoraKernelChoice(use, same, tg, ts);
    }
}
