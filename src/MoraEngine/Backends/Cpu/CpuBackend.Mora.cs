using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MoraEngine.Adapters;

namespace MoraEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    // Every MoRA kernel works row by row (rows are independent), so a fixed split over rows is deterministic.
    // Contiguous pieces (whole chunks, tiles, RoPE halves) go through SIMD; interleave groups are short runs
    // (⌊in/r̂⌋ items) where a scalar loop is as fast.

    // An operator that found generated kernels for its shape (MoraOperator.Kernels) runs them on the same fixed row
    // split, each kernel only where it computes the generic kernel's bits and was measured no slower on this machine
    // (CpuBackend.MoraChoice.cs); the generic code below is the reference and the fallback. Both skip tiered compilation
    // (AggressiveOptimization): these loops are hot from the first step, and without it the generic ones can run
    // unoptimised code for seconds while the background compiler competes for the same cores.

    public void MoraCompress(MoraOperator op, Tensor x, Tensor xc, int rows, int chunks) =>
        MoraCompress(op, x, xc, rows, chunks, Specialised(op, MoraKernelUse.Compress));

    internal void MoraCompress(MoraOperator op, Tensor x, Tensor xc, int rows, int chunks, IMoraKernels? specialised)
    {
        float[] X = x.CpuArray, XC = xc.CpuArray;
        int xo = x.Offset, co = xc.Offset, n = op.In, r = op.RHat, w = chunks * r;
        int full = op.FullChunks, tail = op.Tail;
        if (specialised is { } k)
        {
            CpuParallel.For(rows, RowsPerPiece(n + w), (r0, r1) =>
                k.Compress(X.AsSpan(xo + r0 * n, (r1 - r0) * n), XC.AsSpan(co + r0 * w, (r1 - r0) * w), r1 - r0, chunks));
            return;
        }
        CpuParallel.For(rows, RowsPerPiece(n + w), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (r0, r1) =>
        {
            // Scratch for the wrap-padded last RoPE chunk (one chunk, not a padded copy of x).
            Span<float> tmp = op.Type == MoraType.Rope && tail > 0 ? (r <= 1024 ? stackalloc float[r] : new float[r]) : default;
            for (var row = r0; row < r1; row++)
            {
                ReadOnlySpan<float> src = X.AsSpan(xo + row * n, n);
                var dst = XC.AsSpan(co + row * w, w);
                switch (op.Type)
                {
                    case MoraType.Truncation:
                        src[..r].CopyTo(dst);
                        break;
                    case MoraType.Sharing or MoraType.SharingInterleave:
                        SumChunks(src, full, r, dst);
                        if (tail > 0)
                        {
                            // The last chunk is x[full·r ..) followed by the wrap padding x[0 .. r − tail).
                            Simd.Add(dst[..tail], src.Slice(full * r, tail), dst[..tail]);
                            Simd.Add(dst[tail..], src[..(r - tail)], dst[tail..]);
                        }
                        break;
                    case MoraType.Interleave or MoraType.InterleaveTile:
                    {
                        var s = op.InGroupStartArray;
                        for (var i = 0; i < r; i++)
                        {
                            var sum = 0f;
                            for (var k = s[i]; k < s[i + 1]; k++) sum += src[k];
                            dst[i] = sum;
                        }
                        break;
                    }
                    case MoraType.Rope:
                    {
                        var h = r / 2;
                        for (var g = 0; g < chunks; g++)
                        {
                            if (g >= full)
                            {
                                src[(full * r)..].CopyTo(tmp);
                                src[..(r - tail)].CopyTo(tmp[tail..]);
                            }
                            ReadOnlySpan<float> c = g < full ? src.Slice(g * r, r) : tmp;
                            RotateHalf(c, op.RopeCosArray.AsSpan(g * h, h), op.RopeSinArray.AsSpan(g * h, h),
                                dst.Slice(g * r, r), 1f, false);
                        }
                        break;
                    }
                }
            }
        });
    }

    public void MoraCompressBackward(MoraOperator op, Tensor gxc, Tensor gx, int rows, int chunks, bool accumulate) =>
        MoraCompressBackward(op, gxc, gx, rows, chunks, accumulate, Specialised(op, MoraKernelUse.CompressBackward));

    internal void MoraCompressBackward(MoraOperator op, Tensor gxc, Tensor gx, int rows, int chunks, bool accumulate, IMoraKernels? specialised)
    {
        float[] GC = gxc.CpuArray, GX = gx.CpuArray;
        int co = gxc.Offset, xo = gx.Offset, n = op.In, r = op.RHat, w = chunks * r;
        int full = op.FullChunks, tail = op.Tail;
        if (specialised is { } k)
        {
            CpuParallel.For(rows, RowsPerPiece(n + w), (r0, r1) =>
                k.CompressBackward(GC.AsSpan(co + r0 * w, (r1 - r0) * w), GX.AsSpan(xo + r0 * n, (r1 - r0) * n), r1 - r0, chunks, accumulate));
            return;
        }
        CpuParallel.For(rows, RowsPerPiece(n + w), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (r0, r1) =>
        {
            // Scratch for the wrap-padded last RoPE chunk (one chunk, not a padded copy of x).
            Span<float> tmp = op.Type == MoraType.Rope && tail > 0 ? (r <= 1024 ? stackalloc float[r] : new float[r]) : default;
            for (var row = r0; row < r1; row++)
            {
                ReadOnlySpan<float> g = GC.AsSpan(co + row * w, w);
                var dst = GX.AsSpan(xo + row * n, n);
                switch (op.Type)
                {
                    case MoraType.Truncation:
                        Put(g, dst[..r], accumulate);
                        if (!accumulate) dst[r..].Clear();
                        break;
                    case MoraType.Sharing or MoraType.SharingInterleave:
                        // Every input position receives the gradient of the compressed slot it was summed into.
                        for (var c = 0; c < full; c++) Put(g, dst.Slice(c * r, r), accumulate);
                        if (tail > 0)
                        {
                            Put(g[..tail], dst[(full * r)..], accumulate);
                            Simd.Add(dst[..(r - tail)], g[tail..], dst[..(r - tail)]);
                        }
                        break;
                    case MoraType.Interleave or MoraType.InterleaveTile:
                    {
                        var s = op.InGroupStartArray;
                        for (var i = 0; i < r; i++)
                        {
                            var v = g[i];
                            if (accumulate)
                                for (var k = s[i]; k < s[i + 1]; k++) dst[k] += v;
                            else
                                dst[s[i]..s[i + 1]].Fill(v);
                        }
                        break;
                    }
                    case MoraType.Rope:
                    {
                        // The rotation is orthogonal: its transpose rotates by −a.
                        var h = r / 2;
                        var whole = Math.Min(chunks, full);
                        for (var c = 0; c < whole; c++)
                            RotateHalf(g.Slice(c * r, r), op.RopeCosArray.AsSpan(c * h, h), op.RopeSinArray.AsSpan(c * h, h),
                                dst.Slice(c * r, r), -1f, accumulate);
                        if (chunks > full)
                        {
                            // The wrap-padded last chunk: its tail part maps to x[full·r ..), the padding back to x[0 ..).
                            RotateHalf(g.Slice(full * r, r), op.RopeCosArray.AsSpan(full * h, h), op.RopeSinArray.AsSpan(full * h, h),
                                tmp, -1f, false);
                            Put(tmp[..tail], dst[(full * r)..], accumulate);
                            Simd.Add(dst[..(r - tail)], tmp[tail..], dst[..(r - tail)]);
                        }
                        else if (!accumulate)
                        {
                            dst[(whole * r)..].Clear(); // chunks cut off by f_decomp get no gradient
                        }
                        break;
                    }
                }
            }
        });
    }

    public void MoraDecompressAdd(MoraOperator op, Tensor yhat, Tensor y, int rows, int chunks) =>
        MoraDecompressAdd(op, yhat, y, rows, chunks, Specialised(op, MoraKernelUse.DecompressAdd));

    internal void MoraDecompressAdd(MoraOperator op, Tensor yhat, Tensor y, int rows, int chunks, IMoraKernels? specialised)
    {
        float[] YH = yhat.CpuArray, Y = y.CpuArray;
        int ho = yhat.Offset, yo = y.Offset, m = op.Out, r = op.RHat, w = chunks * r;
        if (specialised is { } k)
        {
            CpuParallel.For(rows, RowsPerPiece(m + w), (r0, r1) =>
                k.DecompressAdd(YH.AsSpan(ho + r0 * w, (r1 - r0) * w), Y.AsSpan(yo + r0 * m, (r1 - r0) * m), r1 - r0, chunks));
            return;
        }
        CpuParallel.For(rows, RowsPerPiece(m + w), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (r0, r1) =>
        {
            for (var row = r0; row < r1; row++)
            {
                ReadOnlySpan<float> src = YH.AsSpan(ho + row * w, w);
                var dst = Y.AsSpan(yo + row * m, m);
                switch (op.Type)
                {
                    case MoraType.Truncation:
                        Simd.Add(dst[..r], src[..r], dst[..r]);
                        break;
                    case MoraType.Sharing or MoraType.InterleaveTile or MoraType.Rope:
                        // Tile ŷ (Rope: the concatenated chunk outputs) over the output and cut it to out.
                        for (var s = 0; s < m; s += w)
                        {
                            var len = Math.Min(w, m - s);
                            var d = dst.Slice(s, len);
                            Simd.Add(d, src[..len], d);
                        }
                        break;
                    case MoraType.Interleave or MoraType.SharingInterleave:
                    {
                        var s = op.OutGroupStartArray;
                        for (var i = 0; i < r; i++)
                        {
                            var v = src[i];
                            for (var k = s[i]; k < s[i + 1]; k++) dst[k] += v;
                        }
                        break;
                    }
                }
            }
        });
    }

    public void MoraDecompressBackward(MoraOperator op, Tensor gy, Tensor gyhat, int rows, int chunks) =>
        MoraDecompressBackward(op, gy, gyhat, rows, chunks, Specialised(op, MoraKernelUse.DecompressBackward));

    internal void MoraDecompressBackward(MoraOperator op, Tensor gy, Tensor gyhat, int rows, int chunks, IMoraKernels? specialised)
    {
        float[] G = gy.CpuArray, GH = gyhat.CpuArray;
        int go = gy.Offset, ho = gyhat.Offset, m = op.Out, r = op.RHat, w = chunks * r;
        if (specialised is { } k)
        {
            CpuParallel.For(rows, RowsPerPiece(m + w), (r0, r1) =>
                k.DecompressBackward(G.AsSpan(go + r0 * m, (r1 - r0) * m), GH.AsSpan(ho + r0 * w, (r1 - r0) * w), r1 - r0, chunks));
            return;
        }
        CpuParallel.For(rows, RowsPerPiece(m + w), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (r0, r1) =>
        {
            for (var row = r0; row < r1; row++)
            {
                ReadOnlySpan<float> src = G.AsSpan(go + row * m, m);
                var dst = GH.AsSpan(ho + row * w, w);
                switch (op.Type)
                {
                    case MoraType.Truncation:
                        src[..r].CopyTo(dst);
                        break;
                    case MoraType.Sharing or MoraType.InterleaveTile or MoraType.Rope:
                    {
                        // Transpose of tiling: sum the tiles. Slots past out (Rope with out < chunks·r̂) get zero.
                        var first = Math.Min(w, m);
                        src[..first].CopyTo(dst);
                        dst[first..].Clear();
                        for (var s = w; s < m; s += w)
                        {
                            var len = Math.Min(w, m - s);
                            Simd.Add(dst[..len], src.Slice(s, len), dst[..len]);
                        }
                        break;
                    }
                    case MoraType.Interleave or MoraType.SharingInterleave:
                    {
                        var s = op.OutGroupStartArray;
                        for (var i = 0; i < r; i++)
                        {
                            var sum = 0f;
                            for (var k = s[i]; k < s[i + 1]; k++) sum += src[k];
                            dst[i] = sum;
                        }
                        break;
                    }
                }
            }
        });
    }

    // The fused layer: the base GEMM with MoRA's column map as its epilogue (Sgemm.MultiplyGatherAdd), so the
    // update lands in each block of y (or gx) while it is in cache instead of in a second pass over [rows, out].

    public void MoraLinear(MoraOperator op, Tensor x, Tensor weight, Tensor yhat, Tensor y, int rows, int chunks)
    {
        int n = op.Out, k = op.In, w = chunks * op.RHat;
        Sgemm.MultiplyGatherAdd(false, true, rows, n, k, 1f, x.CpuArray.AsSpan(x.Offset), k, weight.CpuArray.AsSpan(weight.Offset), k,
            0f, y.CpuArray.AsSpan(y.Offset), n, yhat.CpuArray.AsSpan(yhat.Offset), w, w, op.DecompressMap(chunks));
    }

    public void MoraLinearInputGradient(MoraOperator op, Tensor gy, Tensor weight, Tensor gxhat, Tensor gx, int rows, int chunks, bool accumulate)
    {
        int n = op.In, k = op.Out, w = chunks * op.RHat;
        if (op.Type == MoraType.Rope && rows > 0) RotateChunksBack(op, gxhat, rows, chunks);
        Sgemm.MultiplyGatherAdd(false, false, rows, n, k, 1f, gy.CpuArray.AsSpan(gy.Offset), k, weight.CpuArray.AsSpan(weight.Offset), n,
            accumulate ? 1f : 0f, gx.CpuArray.AsSpan(gx.Offset), n, gxhat.CpuArray.AsSpan(gxhat.Offset), w, w, op.CompressTransposeMap(chunks));
    }

    public void MoraWeightGradient(MoraOperator op, Tensor gyhat, Tensor x, Tensor gm, int rows, int chunks, bool accumulate)
    {
        int r = op.RHat, n = op.In, w = chunks * r;
        if (op.Type != MoraType.Rope || chunks != op.ActiveChunks || rows == 0)
        {
            IBackend.MoraWeightGradientFromCopy(this, op, gyhat, x, gm, rows, chunks, accumulate);
            return;
        }
        // Rope: G_c = gŷ_cᵀ·x_c [r̂, r̂] for every chunk in one pass over the rows of gŷ and x, reading chunk c's slice
        // of x in place (a last chunk that wraps reads x's first columns after its last ones), then gM (+)= Σ_c
        // G_c·(rotation rows of chunk c), one product with the chunks as its depth. No rotated copy of x,
        // [rows, chunks·r̂], is written.
        var g = Tensor.EmptyIn(x.Device, [r, w], MemoryScope.Current);
        float[] G = g.CpuArray;
        Sgemm.MultiplyTnBlocks(chunks, r, r, rows, 1f, gyhat.CpuArray.AsSpan(gyhat.Offset, rows * w), w,
            x.CpuArray.AsSpan(x.Offset, rows * n), n, n, 0f, G.AsSpan(g.Offset, r * w), w);
        Sgemm.Multiply(false, false, r, r, w, 1f, G.AsSpan(g.Offset, r * w), w, op.RopeStack(), r, accumulate ? 1f : 0f, gm.CpuArray.AsSpan(gm.Offset, r * r), r);
    }

    public void MoraMergeWeight(MoraOperator op, Tensor weight, Tensor m, Tensor merged)
    {
        int n = op.In, r = op.RHat, chunks = op.ActiveChunks;
        var source = op.DecompressSources(chunks);
        float[] W = weight.CpuArray, D = merged.CpuArray;
        int wo = weight.Offset, d0 = merged.Offset;
        var (q, v) = op.CompressTaps();
        var runs = op.CompressTapRuns();
        // ΔW[i, j] = Σ taps V·M[a, Q] for output i's slot (c, a): one pass over W, M's row a in L1. Inputs that do not
        // reach chunk c (Rope: all but the chunk's own r̂) have no taps there, and their W is copied.
        float[] M = m.CpuArray;
        int mo = m.Offset;
        CpuParallel.For(op.Out, RowsPerPiece(2 * n), (i0, i1) =>
        {
            for (var i = i0; i < i1; i++)
            {
                var dst = D.AsSpan(d0 + i * n, n);
                ReadOnlySpan<float> src = W.AsSpan(wo + i * n, n);
                var s = source[i];
                if (s < 0) { src.CopyTo(dst); continue; }
                int c = s / r, t = 2 * c * n, done = 0;
                var run = runs[c];
                for (var k = 0; k < run.Length; k += 2)
                {
                    int lo = run[k], hi = run[k + 1];
                    src[done..lo].CopyTo(dst[done..lo]);
                    MergeRow(src, M.AsSpan(mo + s % r * r, r), q.AsSpan(t, 2 * n), v.AsSpan(t, 2 * n), dst, lo, hi);
                    done = hi;
                }
                src[done..].CopyTo(dst[done..]);
            }
        });
    }

    /// <summary>
    /// dst[j] = w[j] + (v[j]·mRow[q[j]] + v[n + j]·mRow[q[n + j]]) for j in [lo, hi), the second tap fused (n = w's
    /// length).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void MergeRow(ReadOnlySpan<float> w, ReadOnlySpan<float> mRow, ReadOnlySpan<int> q, ReadOnlySpan<float> v, Span<float> dst,
        int lo, int hi)
    {
        int n = w.Length;
        fixed (float* pw = w, pm = mRow, pv = v, pd = dst)
        fixed (int* pq = q)
        {
            int j = lo;
            if (Avx2.IsSupported && Fma.IsSupported)
                for (; j + 8 <= hi; j += 8)
                {
                    var g1 = Avx2.GatherVector256(pm, Vector256.Load(pq + j), 4);
                    var g2 = Avx2.GatherVector256(pm, Vector256.Load(pq + n + j), 4);
                    var t = Fma.MultiplyAdd(Vector256.Load(pv + n + j), g2,
                        Vector256.Load(pv + j) * g1);
                    Vector256.Store(Vector256.Load(pw + j) + t, pd + j);
                }
            for (; j < hi; j++) pd[j] = pw[j] + MathF.FusedMultiplyAdd(pv[n + j], pm[pq[n + j]], pv[j] * pm[pq[j]]);
        }
    }

    /// <summary>Rope: every chunk of gx̂ [rows, chunks·r̂] rotated by −a in place (the transpose of f_comp's rotation).</summary>
    private static void RotateChunksBack(MoraOperator op, Tensor gxhat, int rows, int chunks)
    {
        float[] G = gxhat.CpuArray;
        int o = gxhat.Offset, r = op.RHat, h = r / 2, w = chunks * r;
        CpuParallel.For(rows, RowsPerPiece(w), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (r0, r1) =>
        {
            Span<float> tmp = r <= 1024 ? stackalloc float[r] : new float[r];
            for (var row = r0; row < r1; row++)
                for (var c = 0; c < chunks; c++)
                {
                    var chunk = G.AsSpan(o + row * w + c * r, r);
                    chunk.CopyTo(tmp);
                    RotateHalf(tmp, op.RopeCosArray.AsSpan(c * h, h), op.RopeSinArray.AsSpan(c * h, h), chunk, -1f, false);
                }
        });
    }

    /// <summary>dst = Σ_{c &lt; count} src[c·r .. c·r + r), summed in chunk order with one store per element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SumChunks(ReadOnlySpan<float> src, int count, int r, Span<float> dst)
    {
        ref var s = ref MemoryMarshal.GetReference(src);
        ref var d = ref MemoryMarshal.GetReference(dst);
        var j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vw = Vector<float>.Count;
            for (; j <= r - vw; j += vw)
            {
                var acc = Vector.LoadUnsafe(ref s, (nuint)j);
                for (var c = 1; c < count; c++) acc += Vector.LoadUnsafe(ref s, (nuint)(c * r + j));
                acc.StoreUnsafe(ref d, (nuint)j);
            }
        }
        for (; j < r; j++)
        {
            var acc = Unsafe.Add(ref s, j);
            for (var c = 1; c < count; c++) acc += Unsafe.Add(ref s, c * r + j);
            Unsafe.Add(ref d, j) = acc;
        }
    }

    /// <summary>dst = src, or dst += src.</summary>
    private static void Put(ReadOnlySpan<float> src, Span<float> dst, bool accumulate)
    {
        if (accumulate) Simd.Add(dst, src, dst);
        else src.CopyTo(dst);
    }

    /// <summary>
    /// RoPE rotate-half of one chunk c (length 2h) with cos/sin of length h: dst (+)= c·cos + (−c[h..], c[..h])·(sign·sin).
    /// sign = −1 is the inverse (transposed) rotation. dst must not overlap c.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RotateHalf(ReadOnlySpan<float> c, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin,
        Span<float> dst, float sign, bool accumulate)
    {
        var h = cos.Length;
        ref var c0 = ref MemoryMarshal.GetReference(c);
        ref var c1 = ref Unsafe.Add(ref c0, h);
        ref var d0 = ref MemoryMarshal.GetReference(dst);
        ref var d1 = ref Unsafe.Add(ref d0, h);
        ref var co = ref MemoryMarshal.GetReference(cos);
        ref var si = ref MemoryMarshal.GetReference(sin);
        var j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vw = Vector<float>.Count;
            var sg = new Vector<float>(sign);
            for (; j <= h - vw; j += vw)
            {
                var o = (nuint)j;
                var a = Vector.LoadUnsafe(ref c0, o);
                var b = Vector.LoadUnsafe(ref c1, o);
                var vc = Vector.LoadUnsafe(ref co, o);
                var vs = Vector.LoadUnsafe(ref si, o) * sg;
                var r0 = a * vc - b * vs;
                var r1 = b * vc + a * vs;
                if (accumulate)
                {
                    r0 += Vector.LoadUnsafe(ref d0, o);
                    r1 += Vector.LoadUnsafe(ref d1, o);
                }
                r0.StoreUnsafe(ref d0, o);
                r1.StoreUnsafe(ref d1, o);
            }
        }
        for (; j < h; j++)
        {
            float a = Unsafe.Add(ref c0, j), b = Unsafe.Add(ref c1, j), vc = Unsafe.Add(ref co, j), vs = sign * Unsafe.Add(ref si, j);
            var r0 = a * vc - b * vs;
            var r1 = b * vc + a * vs;
            if (accumulate)
            {
                Unsafe.Add(ref d0, j) += r0;
                Unsafe.Add(ref d1, j) += r1;
            }
            else
            {
                Unsafe.Add(ref d0, j) = r0;
                Unsafe.Add(ref d1, j) = r1;
            }
        }
    }
}
