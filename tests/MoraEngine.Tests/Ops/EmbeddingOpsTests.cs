using MoraEngine;
using Xunit;

namespace MoraEngine.Tests;

public class EmbeddingOpsTests
{
    private static double[] RefEmbedding(double[] w, int[] ids, int d)
    {
        var y = new double[ids.Length * d];
        for (var i = 0; i < ids.Length; i++)
            for (var j = 0; j < d; j++) y[i * d + j] = w[ids[i] * d + j];
        return y;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(4, 5)]
    [InlineData(7, 17)]
    [InlineData(3, 33)]
    public void Embedding_MatchesReference_WithRepeatedIds(int vocab, int d)
    {
        var rng = new Rng((ulong)(vocab * 100 + d));
        var ids = new int[6];
        for (var i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(vocab);
        ids[5] = ids[0]; // at least one repeat
        GradCheck.Check([(GradCheck.Rand(rng, vocab * d), [vocab, d])],
            t =>
            {
                var y = Ops.Embedding(t[0], ids, 2, 3);
                Assert.Equal([2, 3, d], y.Shape.ToArray());
                return y;
            },
            r => RefEmbedding(r[0], ids, d));
    }

    [Fact]
    public void Embedding_RepeatedIds_GradientsAddUp()
    {
        var w = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 3, 2);
        w.RequiresGrad = true;
        var y = Ops.Embedding(w, [2, 0, 2, 2]);
        Assert.Equal([4, 2], y.Shape.ToArray());
        Assert.Equal([5f, 6f, 1f, 2f, 5f, 6f, 5f, 6f], y.ToArray());
        y.Backward(Tensor.FromArray([1f, 10f, 2f, 20f, 3f, 30f, 4f, 40f], 4, 2));
        Assert.Equal([2f, 20f, 0f, 0f, 8f, 80f], w.Grad!.ToArray());

        // A second backward through a new graph adds to the existing gradient (GradZeroed keeps it).
        var y2 = Ops.Embedding(w, [1]);
        y2.Backward(Tensor.FromArray([7f, 7f], 1, 2));
        Assert.Equal([2f, 20f, 7f, 7f, 8f, 80f], w.Grad!.ToArray());
    }

    [Fact]
    public void Embedding_LargeColumnSplit_MatchesReferenceAndIsDeterministic()
    {
        const int vocab = 50, d = 1000, n = 300;
        var rng = new Rng(51);
        var wData = GradCheck.Rand(rng, vocab * d);
        var gyData = GradCheck.Rand(rng, n * d);
        var ids = new int[n];
        for (var i = 0; i < n; i++) ids[i] = rng.NextInt(vocab);

        float[] Run()
        {
            var w = Tensor.FromArray(wData, vocab, d);
            w.RequiresGrad = true;
            var y = Ops.Embedding(w, ids, 10, 30);
            Assert.Equal(wData.AsSpan(ids[17] * d, d).ToArray(), y.ToArray().AsSpan(17 * d, d).ToArray());
            y.Backward(Tensor.FromArray(gyData, 10, 30, d));
            return w.Grad!.ToArray();
        }

        var g = Run();
        var expected = new double[vocab * d];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < d; j++) expected[ids[i] * d + j] += gyData[i * d + j];
        NormOpsTests.AssertClose(expected, g, 1e-5, "gweight");
        Assert.Equal(g, Run());
    }

    [Fact]
    public void Embedding_BadInputs_NameOpPositionAndId()
    {
        var w = Tensor.Zeros(4, 3);
        var ex = Assert.Throws<ArgumentException>(() => Ops.Embedding(w, [0, 3, 9, 1]));
        Assert.Contains("Embedding", ex.Message);
        Assert.Contains("id 9 at position 2", ex.Message);
        Assert.Contains("[4, 3]", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.Embedding(w, [0, -1]));
        Assert.Contains("id -1 at position 1", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.Embedding(w, [0, 1, 2], 2, 2));
        Assert.Contains("Embedding", ex.Message);
        Assert.Contains("[2, 2]", ex.Message);

        ex = Assert.Throws<ArgumentException>(() => Ops.Embedding(Tensor.Zeros(12), [0]));
        Assert.Contains("Embedding", ex.Message);
        Assert.Contains("[12]", ex.Message);
    }
}
