using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MoraEngine.Backends.Ilgpu;

public sealed partial class IlgpuBackend
{
    // ---------------------------------------------------------------- Embedding

    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>? _kEmbedding;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>? _kEmbeddingBack;

    private static void EmbeddingKernel(Index1D index, ArrayView<float> w, ArrayView<int> ids, ArrayView<float> y, int d)
    {
        int idx = index;
        var i = idx / d;
        var c = idx - i * d;
        y[idx] = w[(long)ids[i] * d + c];
    }

    public void Embedding(Tensor weight, int[] ids, Tensor y, int d)
    {
        if (ids.Length == 0 || d == 0) return;
        (_kEmbedding ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(EmbeddingKernel))(
            ids.Length * d, V(weight), UploadInts(ids), V(y), d);
    }

    /// <summary>
    /// The scatter-add as a gather: the host sorts positions by id (stably, so each id keeps index order) into
    /// table = [ids of the used rows (u), row starts (u + 1), positions]; thread (used row, column) adds its
    /// positions' gradients in index order — the same order as the CPU backend, no atomics.
    /// </summary>
    private static void EmbeddingBackwardKernel(Index1D index, ArrayView<float> gy, ArrayView<int> table, ArrayView<float> gw, int d)
    {
        int idx = index;
        var used = table[0];
        var u = idx / d;
        var c = idx - u * d;
        var row = table[1 + u];
        int start = table[1 + used + u], end = table[2 + used + u];
        var at = (long)row * d + c;
        var s = gw[at];
        for (var k = start; k < end; k++) s += gy[(long)table[2 + 2 * used + k] * d + c];
        gw[at] = s;
    }

    public void EmbeddingBackward(Tensor gy, int[] ids, Tensor gweight, int d)
    {
        if (ids.Length == 0 || d == 0) return;
        // Counting sort of positions by id.
        var vocab = gweight.Length / d;
        var count = new int[vocab + 1];
        foreach (var id in ids) count[id + 1]++;
        var used = 0;
        for (var v = 0; v < vocab; v++)
            if (count[v + 1] > 0) used++;
        var table = new int[2 + 2 * used + ids.Length];
        table[0] = used;
        var next = new int[vocab];
        int u = 0, at = 0;
        for (var v = 0; v < vocab; v++)
        {
            if (count[v + 1] == 0) continue;
            table[1 + u] = v;
            table[1 + used + u] = at;
            next[v] = at;
            at += count[v + 1];
            u++;
        }
        table[1 + used + used] = at;
        for (var i = 0; i < ids.Length; i++) table[2 + 2 * used + next[ids[i]]++] = i;
        (_kEmbeddingBack ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(EmbeddingBackwardKernel))(
            used * d, V(gy), UploadInts(table), V(gweight), d);
    }
}
