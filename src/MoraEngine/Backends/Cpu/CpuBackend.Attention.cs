using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoraEngine.Backends.Cpu;

/// <summary>
/// Fused causal attention, RoPE and strided column copies.
/// Attention runs one (batch, head) pair at a time per worker. Each product is an 8×32 (AVX-512) or 4×16 register tile
/// (<see cref="AttnTile"/>) over a per-thread packed copy of its right-hand operand; the left-hand operand is read
/// in place through row/column strides, which covers the strided head columns of q/k/v and the transposed reads
/// of P and dS. Tiles that start right of the diagonal are never computed. Above the diagonal, P and dS hold zeros
/// inside the diagonal blocks of a tile's height (8×8 or 4×4), which a tile reads, and are undefined (never read) elsewhere.
/// </summary>
public sealed partial class CpuBackend
{
    private static readonly bool AttnWide = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    /// <summary>Rows of a tile, and the side of the diagonal blocks zeroed above the diagonal: 8 with AVX-512, else 4.</summary>
    private static readonly int AttnRows = AttnWide ? 8 : 4;

    /// <summary>Columns of a tile: two 512-bit vectors with AVX-512, else two 256-bit ones.</summary>
    private static readonly int AttnCols = AttnWide ? 32 : 16;

    [ThreadStatic] private static float[]? _attnScratch;

    private static float[] AttnScratch(int length)
    {
        var s = _attnScratch;
        if (s == null || s.Length < length) _attnScratch = s = new float[length];
        return s;
    }

    private static int RoundUp(int n, int m) => (n + m - 1) / m * m;

    /// <summary>Pairs per worker chunk: small problems stay on the calling thread.</summary>
    private static int AttnGrain(int seq, int headDim) =>
        (int)Math.Max(1, (1L << 18) / Math.Max(1L, (long)seq * seq * Math.Max(1, headDim)));

    public unsafe void CausalAttention(Tensor q, Tensor k, Tensor v, int qkvStride, Tensor output, Tensor probs,
        int batch, int seq, int heads, int headDim, float scale)
    {
        float[] Q = q.CpuArray, K = k.CpuArray, V = v.CpuArray, O = output.CpuArray, P = probs.CpuArray;
        int qo = q.Offset, ko = k.Offset, vo = v.Offset, oo = output.Offset, po = probs.Offset;
        int T = seq, hd = headDim, D = heads * headDim, ld = qkvStride;
        if (T == 0 || hd == 0 || batch == 0 || heads == 0) return;
        int tPad = RoundUp(T, AttnCols), hdPad = RoundUp(hd, AttnCols);
        CpuParallel.For(batch * heads, AttnGrain(T, hd), (p0, p1) =>
        {
            var scratch = AttnScratch(hd * tPad + T * hdPad);
            fixed (float* pq = Q, pk = K, pv = V, pO = O, pP = P, ps = scratch)
            {
                for (var pair = p0; pair < p1; pair++)
                {
                    int b = pair / heads, h = pair % heads;
                    long head = (long)b * T * ld + h * hd, outHead = (long)b * T * D + h * hd;
                    AttentionPairForward(pq + qo + head, pk + ko + head, pv + vo + head, ld, pO + oo + outHead,
                        pP + po + (long)pair * T * T, ps, ps + hd * tPad, T, hd, D, tPad, hdPad, scale);
                }
            }
        });
    }

    /// <summary>One (batch, head) pair: q, k and v rows are <paramref name="ld"/> apart, o's rows <paramref name="D"/>.</summary>
    private static unsafe void AttentionPairForward(float* q, float* k, float* v, int ld, float* o, float* p,
        float* kt, float* vp, int T, int hd, int D, int tPad, int hdPad, float scale)
    {
        PackTransposed(k, ld, T, hd, kt, tPad);
        PackRows(v, ld, T, hd, vp, hdPad);

        // S = scale·Q·Kᵀ into P, tiles touching the lower triangle only.
        for (var i0 = 0; i0 < T; i0 += AttnRows)
        {
            var iEnd = Math.Min(T, i0 + AttnRows);
            for (var c0 = 0; c0 < iEnd; c0 += AttnCols)
                AttnTile(q, ld, 1, T, i0, 0, hd, kt, tPad, c0, Math.Min(AttnCols, T - c0), p, T, scale, false);
        }

        for (var i = 0; i < T; i++)
        {
            SoftmaxRow(p + (long)i * T, i + 1);
            ZeroDiagonalBlockTail(p, T, i);
        }

        // O = P·V: row block i0 needs columns j < i0 + AttnRows only (P is zero above the diagonal inside the block).
        for (var i0 = 0; i0 < T; i0 += AttnRows)
        {
            var pEnd = Math.Min(T, i0 + AttnRows);
            for (var c0 = 0; c0 < hd; c0 += AttnCols)
                AttnTile(p, T, 1, T, i0, 0, pEnd, vp, hdPad, c0, Math.Min(AttnCols, hd - c0), o, D, 1f, false);
        }
    }

    /// <summary>x = softmax(x) over n values, with Simd.Exp (deterministic: fixed summation order).</summary>
    /// <remarks>
    /// Lanes leave the registers by constant index, never through a vector stored to memory and read back one float
    /// at a time: each such read misses store forwarding (128 causal rows of 1 to 128 values: 16.6 → 11.2 µs).
    /// </remarks>
    private static unsafe void SoftmaxRow(float* x, int n)
    {
        int full = n & ~7, tail = n - full;
        var j = 0;
        var max = float.NegativeInfinity;
        if (full > 0)
        {
            var vm = Vector256.Load(x);
            for (j = 8; j < full; j += 8) vm = Vector256.Max(vm, Vector256.Load(x + j));
            var m4 = Vector128.Max(vm.GetLower(), vm.GetUpper());
            m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(2, 3, 0, 1)));
            max = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(1, 0, 3, 2))).ToScalar();
        }
        for (; j < n; j++) max = MathF.Max(max, x[j]);

        var vmax = Vector256.Create(max);
        var vs = Vector256<float>.Zero;
        for (j = 0; j < full; j += 8)
        {
            var e = Simd.Exp(Vector256.Load(x + j) - vmax);
            e.Store(x + j);
            vs += e;
        }
        var sum = Vector256.Sum(vs);
        if (tail > 0)
        {
            // The tail goes through the same vector exp (padded lanes discarded) so every element is computed alike,
            // and is added to the sum in order.
            float* t = x + j;
            var e = Simd.Exp(Vector256.Create(t[0] - max, tail > 1 ? t[1] - max : 0f, tail > 2 ? t[2] - max : 0f,
                tail > 3 ? t[3] - max : 0f, tail > 4 ? t[4] - max : 0f, tail > 5 ? t[5] - max : 0f, tail > 6 ? t[6] - max : 0f, 0f));
            var lo = e.GetLower();
            sum += t[0] = lo.ToScalar();
            if (tail > 1) sum += t[1] = lo.GetElement(1);
            if (tail > 2) sum += t[2] = lo.GetElement(2);
            if (tail > 3) sum += t[3] = lo.GetElement(3);
            if (tail > 4)
            {
                var hi = e.GetUpper();
                sum += t[4] = hi.ToScalar();
                if (tail > 5) sum += t[5] = hi.GetElement(1);
                if (tail > 6) sum += t[6] = hi.GetElement(2);
            }
        }

        var invS = 1f / sum;
        var inv = Vector256.Create(invS);
        for (j = 0; j < full; j += 8) (Vector256.Load(x + j) * inv).Store(x + j);
        for (; j < n; j++) x[j] *= invS;
    }

    /// <summary>d = p∘(d − Σ d∘p) over n values: the softmax backward, in place on d.</summary>
    private static unsafe void SoftmaxBackwardRow(float* d, float* p, int n)
    {
        var j = 0;
        var vs = Vector256<float>.Zero;
        for (; j + 8 <= n; j += 8) vs = Vector256.MultiplyAddEstimate(Vector256.Load(d + j), Vector256.Load(p + j), vs);
        var dot = Vector256.Sum(vs);
        for (var l = j; l < n; l++) dot += d[l] * p[l];
        var vd = Vector256.Create(dot);
        for (j = 0; j + 8 <= n; j += 8) ((Vector256.Load(d + j) - vd) * Vector256.Load(p + j)).Store(d + j);
        for (; j < n; j++) d[j] = (d[j] - dot) * p[j];
    }

    /// <summary>Zeros row i's cells right of the diagonal up to the end of its diagonal block (<see cref="AttnRows"/> on a side).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void ZeroDiagonalBlockTail(float* m, int T, int i)
    {
        var end = Math.Min(T, (i | (AttnRows - 1)) + 1);
        for (var j = i + 1; j < end; j++) m[(long)i * T + j] = 0f;
    }

    public unsafe void CausalAttentionBackward(Tensor q, Tensor k, Tensor v, int qkvStride, Tensor probs, Tensor gradOutput,
        Tensor? gradQ, bool accumulateQ, Tensor? gradK, bool accumulateK, Tensor? gradV, bool accumulateV,
        int batch, int seq, int heads, int headDim, float scale)
    {
        float[] Q = q.CpuArray, K = k.CpuArray, V = v.CpuArray, P = probs.CpuArray, GO = gradOutput.CpuArray;
        int qo = q.Offset, ko = k.Offset, vo = v.Offset, po = probs.Offset, goo = gradOutput.Offset;
        // Absent gradients point at a dummy array; the pair kernel skips them by flag.
        float[] GQ = gradQ?.CpuArray ?? [0f], GK = gradK?.CpuArray ?? [0f], GV = gradV?.CpuArray ?? [0f];
        int gqo = gradQ?.Offset ?? 0, gko = gradK?.Offset ?? 0, gvo = gradV?.Offset ?? 0;
        bool wantQ = gradQ != null, wantK = gradK != null, wantV = gradV != null;
        int T = seq, hd = headDim, D = heads * headDim, ld = qkvStride;
        if (T == 0 || hd == 0 || batch == 0 || heads == 0) return;
        int tPad = RoundUp(T, AttnCols), hdPad = RoundUp(hd, AttnCols);
        var packLen = Math.Max(hd * tPad, T * hdPad);
        CpuParallel.For(batch * heads, AttnGrain(T, hd), (p0, p1) =>
        {
            var scratch = AttnScratch(T * T + packLen);
            fixed (float* pq = Q, pk = K, pv = V, pP = P, pgo = GO, pgq = GQ, pgk = GK, pgv = GV, ps = scratch)
            {
                for (var pair = p0; pair < p1; pair++)
                {
                    int b = pair / heads, h = pair % heads;
                    long head = (long)b * T * ld + h * hd, outHead = (long)b * T * D + h * hd;
                    AttentionPairBackward(pq + qo + head, pk + ko + head, pv + vo + head, ld, pP + po + (long)pair * T * T,
                        pgo + goo + outHead,
                        wantQ ? pgq + gqo + head : null, accumulateQ,
                        wantK ? pgk + gko + head : null, accumulateK,
                        wantV ? pgv + gvo + head : null, accumulateV,
                        ps, ps + T * T, T, hd, D, tPad, hdPad, scale);
                }
            }
        });
    }

    /// <summary>One (batch, head) pair: q, k, v and their gradients' rows are <paramref name="ld"/> apart, dO's <paramref name="D"/>.</summary>
    private static unsafe void AttentionPairBackward(float* q, float* k, float* v, int ld, float* p, float* go,
        float* gq, bool accQ, float* gk, bool accK, float* gv, bool accV,
        float* ds, float* pack, int T, int hd, int D, int tPad, int hdPad, float scale)
    {
        if (gq != null || gk != null)
        {
            // dP = dO·Vᵀ (lower triangle), then dS = P∘(dP − rowsum(dP∘P)) in place.
            PackTransposed(v, ld, T, hd, pack, tPad);
            for (var i0 = 0; i0 < T; i0 += AttnRows)
            {
                var iEnd = Math.Min(T, i0 + AttnRows);
                for (var c0 = 0; c0 < iEnd; c0 += AttnCols)
                    AttnTile(go, D, 1, T, i0, 0, hd, pack, tPad, c0, Math.Min(AttnCols, T - c0), ds, T, 1f, false);
            }
            for (var i = 0; i < T; i++)
            {
                SoftmaxBackwardRow(ds + (long)i * T, p + (long)i * T, i + 1);
                ZeroDiagonalBlockTail(ds, T, i);
            }
        }

        // Order dQ, dK, dV: the op takes gradient slots in that order, so a shared buffer is overwritten first.
        if (gq != null)
        {
            // dQ_i = scale·Σ_{j≤i} dS_ij·K_j
            PackRows(k, ld, T, hd, pack, hdPad);
            for (var i0 = 0; i0 < T; i0 += AttnRows)
            {
                var pEnd = Math.Min(T, i0 + AttnRows);
                for (var c0 = 0; c0 < hd; c0 += AttnCols)
                    AttnTile(ds, T, 1, T, i0, 0, pEnd, pack, hdPad, c0, Math.Min(AttnCols, hd - c0), gq, ld, scale, accQ);
            }
        }
        if (gk != null)
        {
            // dK_j = scale·Σ_{i≥j} dS_ij·Q_i: dS read transposed (row stride 1, column stride T).
            PackRows(q, ld, T, hd, pack, hdPad);
            for (var j0 = 0; j0 < T; j0 += AttnRows)
                for (var c0 = 0; c0 < hd; c0 += AttnCols)
                    AttnTile(ds, 1, T, T, j0, j0, T, pack, hdPad, c0, Math.Min(AttnCols, hd - c0), gk, ld, scale, accK);
        }
        if (gv != null)
        {
            // dV_j = Σ_{i≥j} P_ij·dO_i
            PackRows(go, D, T, hd, pack, hdPad);
            for (var j0 = 0; j0 < T; j0 += AttnRows)
                for (var c0 = 0; c0 < hd; c0 += AttnCols)
                    AttnTile(p, 1, T, T, j0, j0, T, pack, hdPad, c0, Math.Min(AttnCols, hd - c0), gv, ld, 1f, accV);
        }
    }

    /// <summary>dst[r·ldd + c] = src[r·lds + c] for a rows×cols block.</summary>
    private static unsafe void PackRows(float* src, nint lds, int rows, int cols, float* dst, nint ldd)
    {
        for (var r = 0; r < rows; r++)
            new ReadOnlySpan<float>(src + r * lds, cols).CopyTo(new Span<float>(dst + r * ldd, cols));
    }

    /// <summary>dst[c·ldd + r] = src[r·lds + c] for a rows×cols block.</summary>
    private static unsafe void PackTransposed(float* src, nint lds, int rows, int cols, float* dst, nint ldd)
    {
        for (var r = 0; r < rows; r++)
        {
            var s = src + r * lds;
            var d = dst + r;
            for (var c = 0; c < cols; c++) d[c * ldd] = s[c];
        }
    }

    /// <summary>
    /// One <see cref="AttnRows"/>×<see cref="AttnCols"/> tile: C[r0+r, c0+c] (+)= alpha·Σ_{p0≤p&lt;p1} A(r0+r, p)·B[p, c0+c] for r &lt; AttnRows, c &lt; AttnCols, where
    /// A(r, p) = a[r·rs + p·ps] and B is packed with row stride ldb (a multiple of AttnCols, so a whole tile's columns can always be
    /// loaded). Only the first min(AttnRows, rowsTotal − r0) rows and <paramref name="cols"/> columns are stored; rows past
    /// the end re-read the last row so every load stays in bounds, and lanes past <paramref name="cols"/> are dropped.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void AttnTile(float* a, nint rs, nint ps, int rowsTotal, int r0, int p0, int p1,
        float* b, nint ldb, int c0, int cols, float* c, nint ldc, float alpha, bool accumulate)
    {
        if (AttnWide) AttnTile512(a, rs, ps, rowsTotal, r0, p0, p1, b, ldb, c0, cols, c, ldc, alpha, accumulate);
        else AttnTile256(a, rs, ps, rowsTotal, r0, p0, p1, b, ldb, c0, cols, c, ldc, alpha, accumulate);
    }

    /// <summary>
    /// <see cref="AttnTile"/> as an 8×32 tile of 512-bit vectors: sixteen independent FMA chains, each step two loads
    /// of B and eight broadcasts of A. Every element is summed in the same order as by <see cref="AttnTile256"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void AttnTile512(float* a, nint rs, nint ps, int rowsTotal, int r0, int p0, int p1,
        float* b, nint ldb, int c0, int cols, float* c, nint ldc, float alpha, bool accumulate)
    {
        var rows = Math.Min(8, rowsTotal - r0);
        var last = rowsTotal - 1;
        var a0 = a + r0 * rs;
        var a1 = a + Math.Min(r0 + 1, last) * rs;
        var a2 = a + Math.Min(r0 + 2, last) * rs;
        var a3 = a + Math.Min(r0 + 3, last) * rs;
        var a4 = a + Math.Min(r0 + 4, last) * rs;
        var a5 = a + Math.Min(r0 + 5, last) * rs;
        var a6 = a + Math.Min(r0 + 6, last) * rs;
        var a7 = a + Math.Min(r0 + 7, last) * rs;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default,
            c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        var bp = b + p0 * ldb + c0;
        for (nint p = p0; p < p1; p++, bp += ldb)
        {
            var b0 = Vector512.Load(bp);
            var b1 = Vector512.Load(bp + 16);
            var ap = p * ps;
            var x = Vector512.Create(a0[ap]);
            c00 = Avx512F.FusedMultiplyAdd(x, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[ap]);
            c10 = Avx512F.FusedMultiplyAdd(x, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[ap]);
            c20 = Avx512F.FusedMultiplyAdd(x, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[ap]);
            c30 = Avx512F.FusedMultiplyAdd(x, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a4[ap]);
            c40 = Avx512F.FusedMultiplyAdd(x, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a5[ap]);
            c50 = Avx512F.FusedMultiplyAdd(x, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a6[ap]);
            c60 = Avx512F.FusedMultiplyAdd(x, b0, c60);
            c61 = Avx512F.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a7[ap]);
            c70 = Avx512F.FusedMultiplyAdd(x, b0, c70);
            c71 = Avx512F.FusedMultiplyAdd(x, b1, c71);
        }
        var cp = c + r0 * ldc + c0;
        if (rows == 8 && cols == 32)
        {
            var al = Vector512.Create(alpha);
            StoreRow512(cp, c00 * al, c01 * al, accumulate);
            StoreRow512(cp + ldc, c10 * al, c11 * al, accumulate);
            StoreRow512(cp + 2 * ldc, c20 * al, c21 * al, accumulate);
            StoreRow512(cp + 3 * ldc, c30 * al, c31 * al, accumulate);
            StoreRow512(cp + 4 * ldc, c40 * al, c41 * al, accumulate);
            StoreRow512(cp + 5 * ldc, c50 * al, c51 * al, accumulate);
            StoreRow512(cp + 6 * ldc, c60 * al, c61 * al, accumulate);
            StoreRow512(cp + 7 * ldc, c70 * al, c71 * al, accumulate);
        }
        else
        {
            StoreTilePartial512(cp, ldc, rows, cols, alpha, accumulate, c00, c01, c10, c11, c20, c21, c30, c31,
                c40, c41, c50, c51, c60, c61, c70, c71);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void StoreTilePartial512(float* cp, nint ldc, int rows, int cols, float alpha, bool accumulate,
        Vector512<float> c00, Vector512<float> c01, Vector512<float> c10, Vector512<float> c11,
        Vector512<float> c20, Vector512<float> c21, Vector512<float> c30, Vector512<float> c31,
        Vector512<float> c40, Vector512<float> c41, Vector512<float> c50, Vector512<float> c51,
        Vector512<float> c60, Vector512<float> c61, Vector512<float> c70, Vector512<float> c71)
    {
        var t = stackalloc float[8 * 32];
        c00.Store(t); c01.Store(t + 16); c10.Store(t + 32); c11.Store(t + 48);
        c20.Store(t + 64); c21.Store(t + 80); c30.Store(t + 96); c31.Store(t + 112);
        c40.Store(t + 128); c41.Store(t + 144); c50.Store(t + 160); c51.Store(t + 176);
        c60.Store(t + 192); c61.Store(t + 208); c70.Store(t + 224); c71.Store(t + 240);
        StoreTilePartial(t, 32, cp, ldc, rows, cols, alpha, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRow512(float* dst, Vector512<float> lo, Vector512<float> hi, bool accumulate)
    {
        if (accumulate)
        {
            lo += Vector512.Load(dst);
            hi += Vector512.Load(dst + 16);
        }
        lo.Store(dst);
        hi.Store(dst + 16);
    }

    /// <summary>The first <paramref name="rows"/> × <paramref name="cols"/> of a tile spilled to <paramref name="t"/> (row stride <paramref name="ldt"/>), scaled, into C.</summary>
    private static unsafe void StoreTilePartial(float* t, int ldt, float* cp, nint ldc, int rows, int cols, float alpha, bool accumulate)
    {
        for (var r = 0; r < rows; r++)
        {
            var dst = cp + r * ldc;
            var src = t + r * ldt;
            for (var j = 0; j < cols; j++)
                dst[j] = accumulate ? dst[j] + alpha * src[j] : alpha * src[j];
        }
    }

    /// <summary><see cref="AttnTile"/> as a 4×16 tile of 256-bit vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void AttnTile256(float* a, nint rs, nint ps, int rowsTotal, int r0, int p0, int p1,
        float* b, nint ldb, int c0, int cols, float* c, nint ldc, float alpha, bool accumulate)
    {
        var rows = Math.Min(4, rowsTotal - r0);
        var last = rowsTotal - 1;
        var a0 = a + r0 * rs;
        var a1 = a + Math.Min(r0 + 1, last) * rs;
        var a2 = a + Math.Min(r0 + 2, last) * rs;
        var a3 = a + Math.Min(r0 + 3, last) * rs;
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default;
        var bp = b + p0 * ldb + c0;
        for (nint p = p0; p < p1; p++, bp += ldb)
        {
            var b0 = Vector256.Load(bp);
            var b1 = Vector256.Load(bp + 8);
            var ap = p * ps;
            var x = Vector256.Create(a0[ap]);
            c00 = Vector256.MultiplyAddEstimate(x, b0, c00);
            c01 = Vector256.MultiplyAddEstimate(x, b1, c01);
            x = Vector256.Create(a1[ap]);
            c10 = Vector256.MultiplyAddEstimate(x, b0, c10);
            c11 = Vector256.MultiplyAddEstimate(x, b1, c11);
            x = Vector256.Create(a2[ap]);
            c20 = Vector256.MultiplyAddEstimate(x, b0, c20);
            c21 = Vector256.MultiplyAddEstimate(x, b1, c21);
            x = Vector256.Create(a3[ap]);
            c30 = Vector256.MultiplyAddEstimate(x, b0, c30);
            c31 = Vector256.MultiplyAddEstimate(x, b1, c31);
        }
        var cp = c + r0 * ldc + c0;
        if (rows == 4 && cols == 16)
        {
            var al = Vector256.Create(alpha);
            StoreRow(cp, c00 * al, c01 * al, accumulate);
            StoreRow(cp + ldc, c10 * al, c11 * al, accumulate);
            StoreRow(cp + 2 * ldc, c20 * al, c21 * al, accumulate);
            StoreRow(cp + 3 * ldc, c30 * al, c31 * al, accumulate);
        }
        else
        {
            StoreTilePartial(cp, ldc, rows, cols, alpha, accumulate, c00, c01, c10, c11, c20, c21, c30, c31);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRow(float* dst, Vector256<float> lo, Vector256<float> hi, bool accumulate)
    {
        if (accumulate)
        {
            lo += Vector256.Load(dst);
            hi += Vector256.Load(dst + 8);
        }
        lo.Store(dst);
        hi.Store(dst + 8);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void StoreTilePartial(float* cp, nint ldc, int rows, int cols, float alpha, bool accumulate,
        Vector256<float> c00, Vector256<float> c01, Vector256<float> c10, Vector256<float> c11,
        Vector256<float> c20, Vector256<float> c21, Vector256<float> c30, Vector256<float> c31)
    {
        var t = stackalloc float[4 * 16];
        c00.Store(t); c01.Store(t + 8);
        c10.Store(t + 16); c11.Store(t + 24);
        c20.Store(t + 32); c21.Store(t + 40);
        c30.Store(t + 48); c31.Store(t + 56);
        StoreTilePartial(t, 16, cp, ldc, rows, cols, alpha, accumulate);
    }

    // ---------------------------------------------------------------- RoPE

    public unsafe void Rope(Tensor x, Tensor y, Tensor cos, Tensor sin, int batch, int seq, int heads, int headDim,
        int positionOffset, bool inverse, bool accumulate)
    {
        float[] X = x.CpuArray, Y = y.CpuArray, C = cos.CpuArray, S = sin.CpuArray;
        int xo = x.Offset, yo = y.Offset, co = cos.Offset, so = sin.Offset;
        int D = heads * headDim, half = headDim / 2;
        var sign = inverse ? -1f : 1f;
        CpuParallel.For(batch * seq, Math.Max(1, ParallelGrain / Math.Max(1, D)), (r0, r1) =>
        {
            fixed (float* px = X, py = Y, pc = C, psn = S)
            {
                for (var r = r0; r < r1; r++)
                {
                    var pos = (long)(r % seq + positionOffset) * half;
                    for (var h = 0; h < heads; h++)
                    {
                        var at = (long)r * D + h * headDim;
                        RopeHead(px + xo + at, py + yo + at, pc + co + pos, psn + so + pos, half, sign, accumulate);
                    }
                }
            }
        });
    }

    /// <summary>y (+)= (x₁·cos − x₂·sin·sign, x₂·cos + x₁·sin·sign) for x = (x₁, x₂) halves.</summary>
    private static unsafe void RopeHead(float* x, float* y, float* c, float* s, int half, float sign, bool accumulate)
    {
        var j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var sg = Vector256.Create(sign);
            for (; j + 8 <= half; j += 8)
            {
                var x1 = Vector256.Load(x + j);
                var x2 = Vector256.Load(x + half + j);
                var cv = Vector256.Load(c + j);
                var sv = Vector256.Load(s + j) * sg;
                var y1 = x1 * cv - x2 * sv;
                var y2 = x2 * cv + x1 * sv;
                if (accumulate)
                {
                    y1 += Vector256.Load(y + j);
                    y2 += Vector256.Load(y + half + j);
                }
                y1.Store(y + j);
                y2.Store(y + half + j);
            }
        }
        for (; j < half; j++)
        {
            float x1 = x[j], x2 = x[half + j], cv = c[j], sv = s[j] * sign;
            var y1 = x1 * cv - x2 * sv;
            var y2 = x2 * cv + x1 * sv;
            if (accumulate)
            {
                y1 += y[j];
                y2 += y[half + j];
            }
            y[j] = y1;
            y[half + j] = y2;
        }
    }

    // ---------------------------------------------------------------- strided copies

    public void CopyColumns(Tensor src, int srcColumn, int srcStride, Tensor dst, int dstColumn, int dstStride,
        int rows, int width, bool accumulate)
    {
        if (rows == 0 || width == 0) return;
        float[] S = src.CpuArray, Dst = dst.CpuArray;
        int so = src.Offset + srcColumn, dOff = dst.Offset + dstColumn;
        CpuParallel.For(rows, Math.Max(1, ParallelGrain / width), (r0, r1) =>
        {
            for (var r = r0; r < r1; r++)
            {
                ReadOnlySpan<float> s = S.AsSpan(so + r * srcStride, width);
                var d = Dst.AsSpan(dOff + r * dstStride, width);
                if (accumulate) Simd.Add(d, s, d);
                else s.CopyTo(d);
            }
        });
    }
}
