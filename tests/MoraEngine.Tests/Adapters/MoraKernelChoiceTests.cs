using MoraEngine.Adapters;
using MoraEngine.Backends.Cpu;
using Xunit;

namespace MoraEngine.Tests;

/// <summary>
/// The CPU backend runs a generated MoRA kernel only where it was measured no slower than the generic one and computes
/// the same bits, so what it runs never changes a result: every loaded shape, every kernel, both accumulate modes.
/// </summary>
public class MoraKernelChoiceTests
{
    public static IEnumerable<object[]> Shapes() =>
        MoraKernelRegistry.Loaded.Where(k => k.IsAccelerated).Select(k => new object[] { k.In, k.Out, k.RHat, k.Type });

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TheKernelsThatRunAreBitIdenticalToTheGenericOnes(int inF, int outF, int rHat, MoraType type)
    {
        var fast = new MoraOperator(inF, outF, rHat, type);
        var generic = new MoraOperator(inF, outF, rHat, type, specialise: false);
        var be = (CpuBackend)Device.Cpu.Backend;
        var choice = be.ChoiceFor(fast);
        Assert.NotNull(choice);
        Assert.Equal(choice.Use, choice.Use & choice.BitIdentical);

        foreach (var rows in new[] { 3, 301 })
        {
            int chunks = fast.ActiveChunks, w = chunks * rHat;
            var rng = new Rng((ulong)(rows + inF * 7 + outF));
            var x = Tensor.RandN(rng, 1f, rows, inF);
            var gy = Tensor.RandN(rng, 1f, rows, outF);
            var xc = Tensor.RandN(rng, 1f, rows, w);
            var y0 = Tensor.RandN(rng, 1f, rows, outF);
            var gx0 = Tensor.RandN(rng, 1f, rows, inF);
            float[] Run(MoraOperator op, int which)
            {
                switch (which)
                {
                    case 0: { var t = Tensor.Zeros(rows, w); be.MoraCompress(op, x, t, rows, chunks); return t.ToArray(); }
                    case 1: { var t = Tensor.Zeros(rows, inF); be.MoraCompressBackward(op, xc, t, rows, chunks, false); return t.ToArray(); }
                    case 2: { var t = Tensor.FromArray(gx0.ToArray(), rows, inF); be.MoraCompressBackward(op, xc, t, rows, chunks, true); return t.ToArray(); }
                    case 3: { var t = Tensor.FromArray(y0.ToArray(), rows, outF); be.MoraDecompressAdd(op, xc, t, rows, chunks); return t.ToArray(); }
                    default: { var t = Tensor.Zeros(rows, w); be.MoraDecompressBackward(op, gy, t, rows, chunks); return t.ToArray(); }
                }
            }
            string[] names = ["compress", "compress backward", "compress backward (accumulate)", "decompress add", "decompress backward"];
            for (var which = 0; which < names.Length; which++)
                Assert.True(Run(generic, which).AsSpan().SequenceEqual(Run(fast, which)), $"{fast}, {rows} rows: {names[which]} differs from the generic kernel (chosen: {choice.Use})");
        }
    }
}
