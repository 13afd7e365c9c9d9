using System.Globalization;
using MoraEngine.Adapters;
using MoraEngine.Backends;
using MoraEngine.Backends.Ilgpu;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;

namespace MoraEngine.Diagnostics;

/// <summary>
/// Kernel parity checks of a device against the managed CPU reference: every <see cref="IBackend"/> member on
/// random inputs of awkward sizes, run on both backends and compared. Shared by the unit tests (ILGPU's CPU
/// accelerator) and <c>mora selftest</c> (a real GPU), so the GPU host runs exactly the checks CI runs.
/// </summary>
internal static class BackendParity
{
    internal sealed record Result(string Name, bool Passed, double MaxError, double Tolerance, string Detail);

    /// <summary>Two copies of one tensor: the reference (CPU) and the device under test.</summary>
    internal sealed class Pair(Tensor cpu, Tensor dev)
    {
        public Tensor Cpu { get; } = cpu;
        public Tensor Dev { get; } = dev;
    }

    internal sealed class Ctx(Device device, int seed)
    {
        private readonly Rng _rng = new((ulong)seed);
        private readonly List<(string What, double Err, double Tol)> _checks = new();

        public Device Device { get; } = device;

        public IlgpuBackend? Ilgpu => Device.Backend as IlgpuBackend;

        public Pair Of(float[] values, params int[] shape)
        {
            var c = Tensor.FromArray(values, shape);
            return new Pair(c, c.To(Device));
        }

        public Pair Rand(params int[] shape) => RandRange(-1f, 1f, shape);

        public Pair RandRange(float lo, float hi, params int[] shape)
        {
            var v = new float[ShapeUtil.Count(shape)];
            for (var i = 0; i < v.Length; i++) v[i] = lo + (hi - lo) * _rng.NextFloat();
            return Of(v, shape);
        }

        public int[] Ints(int n, int below)
        {
            var r = new int[n];
            for (var i = 0; i < n; i++) r[i] = _rng.NextInt(below);
            return r;
        }

        /// <summary>Runs <paramref name="f"/> on the CPU backend with the CPU copies, then on the device with its copies.</summary>
        public void Both(Action<IBackend, Func<Pair, Tensor>> f)
        {
            f(MoraEngine.Device.Cpu.Backend, p => p.Cpu);
            f(Device.Backend, p => p.Dev);
        }

        /// <summary>max |dev − cpu| / max(1, max |cpu|) over the elements selected by <paramref name="mask"/>.</summary>
        public void Check(string what, Pair p, double tol = 1e-4, Func<int, bool>? mask = null)
        {
            var a = p.Cpu.ToArray();
            var b = p.Dev.ToArray();
            double scale = 1, err = 0;
            for (var i = 0; i < a.Length; i++)
                if (mask == null || mask(i)) scale = Math.Max(scale, Math.Abs(a[i]));
            for (var i = 0; i < a.Length; i++)
            {
                if (mask != null && !mask(i)) continue;
                var e = Math.Abs((double)a[i] - b[i]);
                if (double.IsNaN(e) || double.IsNaN(b[i]) != double.IsNaN(a[i])) e = double.PositiveInfinity;
                err = Math.Max(err, e / scale);
            }
            _checks.Add((what, err, tol));
        }

        public void CheckValue(string what, double cpu, double dev, double tol)
        {
            var e = Math.Abs(cpu - dev) / Math.Max(1, Math.Abs(cpu));
            _checks.Add((what, double.IsNaN(e) ? double.PositiveInfinity : e, tol));
        }

        public Result Finish(string name)
        {
            var worst = _checks.Count == 0 ? (What: "nothing checked", Err: double.PositiveInfinity, Tol: 0.0)
                : _checks.MaxBy(c => c.Err / c.Tol);
            var passed = _checks.Count > 0 && _checks.All(c => c.Err <= c.Tol);
            var failed = _checks.Where(c => c.Err > c.Tol).Select(c => $"{c.What}: {c.Err:G3} > {c.Tol:G3}").ToArray();
            return new Result(name, passed, worst.Err, worst.Tol,
                passed ? $"{_checks.Count} checks, worst {worst.What}" : string.Join("; ", failed));
        }
    }

    private static readonly (string Name, bool LargeOnly, Action<Ctx> Run)[] Cases = BuildCases();

    /// <summary>Names of the kernel cases (large ones only run on a GPU).</summary>
    internal static IEnumerable<string> CaseNames(bool includeLarge) => Cases.Where(c => includeLarge || !c.LargeOnly).Select(c => c.Name);

    /// <summary>Runs one case against <paramref name="device"/>.</summary>
    internal static Result Run(string name, Device device, int seed = 1)
    {
        var c = Cases.FirstOrDefault(x => x.Name == name);
        if (c.Run == null) throw new ArgumentException($"No parity case '{name}'.");
        var ctx = new Ctx(device, seed + name.GetHashCode(StringComparison.Ordinal) % 1000 + 1000);
        try
        {
            using (Autograd.Graph.NoGrad()) c.Run(ctx);
            return ctx.Finish(name);
        }
        catch (Exception e)
        {
            return new Result(name, false, double.PositiveInfinity, 0, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private static (string, bool, Action<Ctx>)[] BuildCases()
    {
        var list = new List<(string, bool, Action<Ctx>)>
        {
            ("fill-copy-transpose", false, FillCopyTranspose),
        };

        // GEMM: every transpose variant on the simple and the tiled kernel, a batched/broadcast case, split-k.
        foreach (var (ta, tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
        {
            var v = $"{(ta ? 't' : 'n')}{(tb ? 't' : 'n')}";
            list.Add(($"gemm-{v}-simple", false, c => Gemm(c, 1, 37, 45, 29, ta, tb, 0.75f, 0f, tiled: false, bShared: false)));
            list.Add(($"gemm-{v}-tiled", false, c => Gemm(c, 1, 70, 33, 19, ta, tb, 1f, 0.5f, tiled: true, bShared: false)));
            list.Add(($"gemm-{v}-large", true, c => Gemm(c, 1, 300, 261, 520, ta, tb, 1f, 0.25f, tiled: true, bShared: false)));
        }
        list.Add(("gemm-batched", false, c => Gemm(c, 3, 9, 11, 7, false, true, 1f, 1f, tiled: false, bShared: false)));
        list.Add(("gemm-batched-shared-b", false, c => Gemm(c, 2, 13, 6, 10, true, false, 1f, 0f, tiled: false, bShared: true)));
        list.Add(("gemm-batched-tiled", false, c => Gemm(c, 2, 20, 17, 9, false, false, 1f, 0f, tiled: true, bShared: false)));
        list.Add(("gemm-splitk-tiled", false, c => Gemm(c, 1, 20, 17, 600, true, false, 1f, 1f, tiled: true, bShared: false)));
        // TF32 tensor-core kernel (mma emulated with warp shuffles off CUDA): on TF32-exact inputs it must match the
        // float32 reference as closely as the float32 kernel does; on arbitrary inputs, within TF32's rounding.
        foreach (var (ta, tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
        {
            var v = $"{(ta ? 't' : 'n')}{(tb ? 't' : 'n')}";
            // One tile, every warp partly inside (rows 0–99 of 128, columns 0–99), two k slices: the emulated mma is slow.
            list.Add(($"gemm-tf32-{v}", false, c => GemmTf32(c, 1, 100, 100, 11, ta, tb, 0.75f, 0.5f, exact: true)));
            list.Add(($"gemm-tf32-{v}-large", true, c => GemmTf32(c, 1, 300, 261, 520, ta, tb, 1f, 0.25f, exact: true)));
        }
        list.Add(("gemm-tf32-batched", false, c => GemmTf32(c, 2, 20, 17, 9, false, true, 1f, 0f, exact: true)));
        list.Add(("gemm-tf32-rounding", false, c => GemmTf32(c, 1, 40, 30, 16, false, false, 1f, 0f, exact: false)));
        list.Add(("gemm-tf32-splitk-large", true, c => GemmTf32(c, 1, 200, 130, 8192, true, false, 1f, 0f, exact: true)));
        list.Add(("gemm-splitk-large", true, c => Gemm(c, 1, 200, 130, 8192, true, false, 1f, 0f, tiled: true, bShared: false)));

        list.Add(("binary", false, Binary));
        list.Add(("broadcast-backward", false, BroadcastBackward));
        list.Add(("unary", false, Unary));
        list.Add(("unary-backward", false, UnaryBackward));
        list.Add(("swiglu", false, SwiGlu));
        list.Add(("scale-addscalar", false, ScaleAdd));
        list.Add(("reduce-expand-sum", false, ReduceExpand));
        list.Add(("sum-squares", false, SumSquares));
        list.Add(("layernorm", false, c => LayerNorm(c, bias: true)));
        list.Add(("layernorm-nobias", false, c => LayerNorm(c, bias: false)));
        list.Add(("rmsnorm", false, RmsNorm));
        list.Add(("softmax", false, Softmax));
        list.Add(("cross-entropy", false, c => CrossEntropy(c, weighted: false)));
        list.Add(("cross-entropy-weighted", false, c => CrossEntropy(c, weighted: true)));
        list.Add(("embedding", false, Embedding));
        list.Add(("dropout", false, Dropout));
        list.Add(("attention", false, c => Attention(c, 2, 13, 3, 6)));
        list.Add(("attention-large", true, c => Attention(c, 4, 128, 8, 64)));
        list.Add(("attention-fused-qkv", false, c => AttentionFusedQkv(c, 2, 13, 3, 6)));
        list.Add(("rope", false, Rope));
        list.Add(("copy-columns", false, CopyColumns));
        foreach (var t in new[] { MoraType.Truncation, MoraType.Sharing, MoraType.Interleave, MoraType.InterleaveTile, MoraType.SharingInterleave, MoraType.Rope })
        {
            list.Add(($"mora-{(int)t}-in37-out29", false, c => Mora(c, t, 37, 29, t == MoraType.Rope ? 6 : 5)));
            list.Add(($"mora-{(int)t}-in24-out50", false, c => Mora(c, t, 24, 50, t == MoraType.Rope ? 8 : 7)));
        }
        // Every generated device specialisation (the library's, and in tests the test assembly's awkward shapes).
        foreach (var k in MoraKernelRegistry.Loaded.Where(k => k.Device != null))
            list.Add(($"mora-specialised-{k.In}x{k.Out}-r{k.RHat}-{(int)k.Type}", false, c => MoraSpecialised(c, k)));
        list.Add(("adamw", false, AdamW));
        list.Add(("sgd", false, Sgd));
        return list.ToArray();
    }

    // ---------------------------------------------------------------- cases

    private static void FillCopyTranspose(Ctx c)
    {
        var x = c.Rand(3, 5, 7);
        var y = c.Rand(3, 7, 5);
        var z = c.Rand(3, 5, 7);
        c.Both((be, t) =>
        {
            be.Transpose(t(x), t(y), 3, 5, 7);
            be.Copy(t(x), t(z));
        });
        c.Check("transpose", y, 0);
        c.Check("copy", z, 0);
        c.Both((be, t) => be.Fill(t(z), 2.5f));
        c.Check("fill", z, 0);
    }

    private static void Gemm(Ctx c, int batch, int m, int n, int k, bool ta, bool tb, float alpha, float beta, bool tiled, bool bShared)
    {
        long sA = (long)m * k, sB = bShared ? 0 : (long)k * n, sC = (long)m * n;
        var a = c.Rand(Math.Max(1, batch * m * k));
        var b = c.Rand(Math.Max(1, (bShared ? 1 : batch) * k * n));
        var cc = c.Rand(batch * m * n);
        var il = c.Ilgpu;
        var keep = il?.ForceTiledGemm ?? false;
        if (il != null) il.ForceTiledGemm = tiled;
        try
        {
            c.Both((be, t) => be.Gemm(batch, m, n, k, alpha, t(a), ta, sA, t(b), tb, sB, beta, t(cc), sC));
        }
        finally
        {
            if (il != null) il.ForceTiledGemm = keep;
        }
        c.Check("C", cc, 2e-5 * Math.Max(8, Math.Sqrt(k)));
    }

    /// <summary>x rounded to TF32 (10 mantissa bits; round to nearest, ties away from zero), as cvt.rna does.</summary>
    internal static float RoundTf32(float x)
    {
        var u = BitConverter.SingleToUInt32Bits(x);
        return (u & 0x7F800000u) == 0x7F800000u ? x : BitConverter.UInt32BitsToSingle((u + 0x1000u) & 0xFFFFE000u);
    }

    /// <summary>
    /// The TF32 GEMM against the float32 CPU reference. exact: inputs are TF32 values, so every product is exact in
    /// float32 and only the summation order differs (the float32 tolerance applies); otherwise the tolerance is
    /// TF32's (2⁻¹¹ relative per input, growing with √k).
    /// </summary>
    private static void GemmTf32(Ctx c, int batch, int m, int n, int k, bool ta, bool tb, float alpha, float beta, bool exact)
    {
        var il = c.Ilgpu ?? throw new InvalidOperationException("TF32 GEMM cases need an ILGPU device.");
        long sA = (long)m * k, sB = (long)k * n, sC = (long)m * n;
        Pair Input(int count)
        {
            var p = c.Rand(count);
            if (!exact) return p;
            var v = p.Cpu.ToArray();
            for (var i = 0; i < v.Length; i++) v[i] = RoundTf32(v[i]);
            return c.Of(v, count);
        }
        var a = Input(batch * m * k);
        var b = Input(batch * k * n);
        var cc = c.Rand(batch * m * n);
        bool keepTiled = il.ForceTiledGemm, keepTf32 = il.Tf32;
        il.ForceTiledGemm = true;
        il.Tf32 = true;
        try
        {
            c.Both((be, t) => be.Gemm(batch, m, n, k, alpha, t(a), ta, sA, t(b), tb, sB, beta, t(cc), sC));
        }
        finally
        {
            il.ForceTiledGemm = keepTiled;
            il.Tf32 = keepTf32;
        }
        c.Check("C", cc, exact ? 2e-5 * Math.Max(8, Math.Sqrt(k)) : 2e-3 * Math.Max(1, Math.Sqrt(k)));
    }

    private static readonly (int[] A, int[] B)[] BinaryShapes =
    [
        ([3, 5, 7], [3, 5, 7]),
        ([3, 5, 7], [5, 7]),
        ([3, 1, 7], [3, 6, 1]),
        ([1], [4, 5]),
        ([2, 3, 1, 4], [3, 5, 1]),
    ];

    private static void Binary(Ctx c)
    {
        foreach (var (sa, sb) in BinaryShapes)
            foreach (var op in Enum.GetValues<BinaryOp>())
            {
                var a = c.Rand(sa);
                var b = op == BinaryOp.Div ? c.RandRange(0.5f, 2f, sb) : c.Rand(sb);
                var plan = Broadcast.Plan("Binary", sa, sb);
                var y = c.Rand(plan.OutShape);
                c.Both((be, t) => be.Binary(op, t(a), t(b), t(y), plan));
                c.Check($"{op} {ShapeUtil.Format(sa)}·{ShapeUtil.Format(sb)}", y, 1e-6);
            }
    }

    private static void BroadcastBackward(Ctx c)
    {
        foreach (var (sa, sb) in BinaryShapes)
            foreach (var which in new[] { 0, 1 })
                foreach (var withOther in new[] { false, true })
                    foreach (var acc in new[] { false, true })
                    {
                        var plan = Broadcast.Plan("BroadcastBackward", sa, sb);
                        var src = c.Rand(plan.OutShape);
                        var other = c.Rand(which == 0 ? sb : sa);
                        var dst = c.Rand(which == 0 ? sa : sb);
                        c.Both((be, t) => be.BroadcastBackward(t(src), withOther ? t(other) : null, t(dst), plan, which, 0.5f, acc));
                        c.Check($"{ShapeUtil.Format(sa)}·{ShapeUtil.Format(sb)} which {which} other {withOther} acc {acc}", dst, 1e-5);
                    }
    }

    private static Pair UnaryInput(Ctx c, UnaryOp op, int n) =>
        op is UnaryOp.Log or UnaryOp.Sqrt ? c.RandRange(0.1f, 3f, n) : c.RandRange(-4f, 4f, n);

    private static void Unary(Ctx c)
    {
        foreach (var op in Enum.GetValues<UnaryOp>())
        {
            var x = UnaryInput(c, op, 1031);
            var y = c.Rand(1031);
            c.Both((be, t) => be.Unary(op, t(x), t(y)));
            c.Check(op.ToString(), y, 2e-6 * 50);
        }
    }

    private static void UnaryBackward(Ctx c)
    {
        foreach (var op in Enum.GetValues<UnaryOp>())
            foreach (var acc in new[] { false, true })
            {
                var x = UnaryInput(c, op, 517);
                var y = c.Rand(517);
                c.Both((be, t) => be.Unary(op, t(x), t(y)));
                var gy = c.Rand(517);
                var gx = c.Rand(517);
                c.Both((be, t) => be.UnaryBackward(op, t(x), t(y), t(gy), t(gx), acc));
                c.Check($"{op} acc {acc}", gx, 1e-4);
            }
    }

    private static void SwiGlu(Ctx c)
    {
        var gate = c.Rand(1031);
        var up = c.Rand(1031);
        var y = c.Rand(1031);
        c.Both((be, t) => be.SwiGlu(t(gate), t(up), t(y)));
        c.Check("swiglu", y, 1e-4);
        foreach (var (accGate, accUp) in new[] { (false, false), (true, true), (false, true) })
        {
            var gy = c.Rand(1031);
            var gGate = c.Rand(1031);
            var gUp = c.Rand(1031);
            c.Both((be, t) => be.SwiGluBackward(t(gate), t(up), t(gy), t(gGate), accGate, t(gUp), accUp));
            c.Check($"swiglu backward gate acc {accGate}", gGate, 1e-4);
            c.Check($"swiglu backward up acc {accUp}", gUp, 1e-4);
        }
        // One gradient only.
        var gy1 = c.Rand(517);
        var gate1 = c.Rand(517);
        var up1 = c.Rand(517);
        var gOnly = c.Rand(517);
        c.Both((be, t) => be.SwiGluBackward(t(gate1), t(up1), t(gy1), t(gOnly), false, null, false));
        c.Check("swiglu backward gate only", gOnly, 1e-4);
        c.Both((be, t) => be.SwiGluBackward(t(gate1), t(up1), t(gy1), null, false, t(gOnly), true));
        c.Check("swiglu backward up only", gOnly, 1e-4);
    }

    private static void ScaleAdd(Ctx c)
    {
        var x = c.Rand(777);
        var y = c.Rand(777);
        c.Both((be, t) => be.Scale(t(x), -1.5f, t(y), false));
        c.Check("scale", y, 1e-6);
        c.Both((be, t) => be.Scale(t(x), 0.25f, t(y), true));
        c.Check("scale acc", y, 1e-6);
        c.Both((be, t) => be.AddScalar(t(y), 3.5f));
        c.Check("add scalar", y, 1e-6);
    }

    private static void ReduceExpand(Ctx c)
    {
        foreach (var (outer, n, inner) in new[] { (3, 5, 7), (4, 33, 1), (1, 9, 13) })
        {
            var x = c.Rand(outer, n, inner);
            var y = c.Rand(outer, inner);
            c.Both((be, t) => be.ReduceSum(t(x), t(y), outer, n, inner, 0.5f));
            c.Check($"reduce {outer}×{n}×{inner}", y, 1e-5);
            foreach (var acc in new[] { false, true })
            {
                var gx = c.Rand(outer, n, inner);
                c.Both((be, t) => be.ExpandSum(t(y), t(gx), outer, n, inner, 2f, acc));
                c.Check($"expand {outer}×{n}×{inner} acc {acc}", gx, 1e-6);
            }
        }
    }

    private static void SumSquares(Ctx c)
    {
        foreach (var n in new[] { 1, 1000, 5003 })
        {
            var x = c.Rand(n);
            c.CheckValue($"n {n}", MoraEngine.Device.Cpu.Backend.SumSquares(x.Cpu), c.Device.Backend.SumSquares(x.Dev), 1e-6);
        }
    }

    private static void LayerNorm(Ctx c, bool bias)
    {
        int rows = 11, d = 37;
        var x = c.RandRange(-2f, 3f, rows, d);
        var w = c.Rand(d);
        var b = c.Rand(d);
        var y = c.Rand(rows, d);
        var mean = c.Rand(rows);
        var rstd = c.Rand(rows);
        c.Both((be, t) => be.LayerNorm(t(x), t(w), bias ? t(b) : null, t(y), t(mean), t(rstd), rows, d, 1e-5f));
        c.Check("y", y, 1e-5);
        c.Check("mean", mean, 1e-5);
        c.Check("rstd", rstd, 1e-5);
        foreach (var acc in new[] { false, true })
        {
            var gy = c.Rand(rows, d);
            var gx = c.Rand(rows, d);
            var gw = c.Rand(d);
            var gb = c.Rand(d);
            c.Both((be, t) => be.LayerNormBackward(t(x), t(w), t(mean), t(rstd), t(gy), t(gx), acc, t(gw), acc, bias ? t(gb) : null, acc, rows, d));
            c.Check($"gx acc {acc}", gx, 1e-5);
            c.Check($"gw acc {acc}", gw, 1e-5);
            if (bias) c.Check($"gb acc {acc}", gb, 1e-5);
        }
        // Gradients wanted separately.
        var gy2 = c.Rand(rows, d);
        var gw2 = c.Rand(d);
        c.Both((be, t) => be.LayerNormBackward(t(x), t(w), t(mean), t(rstd), t(gy2), null, false, t(gw2), false, null, false, rows, d));
        c.Check("gw only", gw2, 1e-5);
    }

    private static void RmsNorm(Ctx c)
    {
        int rows = 9, d = 45;
        var x = c.RandRange(-2f, 3f, rows, d);
        var w = c.Rand(d);
        var y = c.Rand(rows, d);
        var rstd = c.Rand(rows);
        c.Both((be, t) => be.RmsNorm(t(x), t(w), t(y), t(rstd), rows, d, 1e-6f));
        c.Check("y", y, 1e-5);
        c.Check("rstd", rstd, 1e-5);
        foreach (var acc in new[] { false, true })
        {
            var gy = c.Rand(rows, d);
            var gx = c.Rand(rows, d);
            var gw = c.Rand(d);
            c.Both((be, t) => be.RmsNormBackward(t(x), t(w), t(rstd), t(gy), t(gx), acc, t(gw), acc, rows, d));
            c.Check($"gx acc {acc}", gx, 1e-5);
            c.Check($"gw acc {acc}", gw, 1e-5);
        }
    }

    private static void Softmax(Ctx c)
    {
        int rows = 7, d = 41;
        foreach (var log in new[] { false, true })
        {
            var x = c.RandRange(-5f, 5f, rows, d);
            var y = c.Rand(rows, d);
            c.Both((be, t) => be.Softmax(t(x), t(y), rows, d, log));
            c.Check($"forward log {log}", y, 1e-5);
            foreach (var acc in new[] { false, true })
            {
                var gy = c.Rand(rows, d);
                var gx = c.Rand(rows, d);
                c.Both((be, t) => be.SoftmaxBackward(t(y), t(gy), t(gx), rows, d, log, acc));
                c.Check($"backward log {log} acc {acc}", gx, 1e-5);
            }
        }
    }

    private static void CrossEntropy(Ctx c, bool weighted)
    {
        int rows = 13, v = 29;
        var logits = c.RandRange(-4f, 4f, rows, v);
        var targets = c.Ints(rows, v);
        float[]? weights = null;
        var count = 0.0;
        if (weighted)
        {
            weights = new float[rows];
            for (var i = 0; i < rows; i++) weights[i] = i % 4 == 0 ? 0f : 0.5f + i % 3;
            count = weights.Sum();
        }
        else
        {
            targets[2] = -100;
            targets[7] = -100;
            count = rows - 2;
        }
        var scale = (float)(1 / count);
        var lse = c.Rand(rows);
        var loss = c.Rand(1);
        c.Both((be, t) => be.CrossEntropy(t(logits), targets, weights, -100, scale, t(lse), t(loss), rows, v));
        c.Check("lse", lse, 1e-5);
        c.Check("loss", loss, 1e-5);
        var gy = c.Of([0.7f], 1);
        foreach (var acc in new[] { false, true })
        {
            var gl = c.Rand(rows, v);
            c.Both((be, t) => be.CrossEntropyBackward(t(logits), targets, weights, -100, scale, t(lse), t(gy), t(gl), acc, rows, v));
            c.Check($"backward acc {acc}", gl, 1e-5);
        }
    }

    private static void Embedding(Ctx c)
    {
        int vocab = 17, d = 23, n = 40;
        var w = c.Rand(vocab, d);
        var ids = c.Ints(n, vocab);
        ids[5] = ids[6] = ids[30] = 3;
        var y = c.Rand(n, d);
        c.Both((be, t) => be.Embedding(t(w), ids, t(y), d));
        c.Check("forward", y, 0);
        var gy = c.Rand(n, d);
        var gw = c.Rand(vocab, d);
        c.Both((be, t) => be.EmbeddingBackward(t(gy), ids, t(gw), d));
        c.Check("backward (repeated ids, in order)", gw, 1e-6);
    }

    private static void Dropout(Ctx c)
    {
        var mask = c.Rand(4099);
        c.Both((be, t) => be.DropoutMask(t(mask), 0.3f, 0x1234_5678_9ABC_DEF0UL));
        c.Check("mask (bit for bit)", mask, 0);
        var x = c.Rand(4099);
        var y = c.Rand(4099);
        foreach (var acc in new[] { false, true })
        {
            c.Both((be, t) => be.ApplyMask(t(x), t(mask), t(y), acc));
            c.Check($"apply acc {acc}", y, 1e-6);
        }
    }

    private static void Attention(Ctx c, int batch, int seq, int heads, int hd)
    {
        var D = heads * hd;
        var q = c.Rand(batch, seq, D);
        var k = c.Rand(batch, seq, D);
        var v = c.Rand(batch, seq, D);
        var o = c.Rand(batch, seq, D);
        var p = c.Rand(batch, heads, seq, seq);
        var scale = 1f / MathF.Sqrt(hd);
        c.Both((be, t) => be.CausalAttention(t(q), t(k), t(v), D, t(o), t(p), batch, seq, heads, hd, scale));
        c.Check("output", o, 1e-5);
        c.Check("probs (lower triangle)", p, 1e-5, i => i % seq <= i / seq % seq);
        foreach (var acc in new[] { false, true })
        {
            var go = c.Rand(batch, seq, D);
            var gq = c.Rand(batch, seq, D);
            var gk = c.Rand(batch, seq, D);
            var gv = c.Rand(batch, seq, D);
            c.Both((be, t) => be.CausalAttentionBackward(t(q), t(k), t(v), D, t(p), t(go), t(gq), acc, t(gk), acc, t(gv), acc, batch, seq, heads, hd, scale));
            c.Check($"dQ acc {acc}", gq, 1e-5);
            c.Check($"dK acc {acc}", gk, 1e-5);
            c.Check($"dV acc {acc}", gv, 1e-5);
        }
        // One shared gradient buffer for q, k and v (self-attention on one tensor): written by dQ, then added to.
        var go2 = c.Rand(batch, seq, D);
        var g = c.Rand(batch, seq, D);
        c.Both((be, t) => be.CausalAttentionBackward(t(q), t(k), t(v), D, t(p), t(go2), t(g), false, t(g), true, t(g), true, batch, seq, heads, hd, scale));
        c.Check("shared gradient", g, 1e-5);
    }

    /// <summary>q, k and v as the column thirds of one [batch, seq, 3·D] tensor, rows 3·D apart; gradients likewise.</summary>
    private static void AttentionFusedQkv(Ctx c, int batch, int seq, int heads, int hd)
    {
        var D = heads * hd;
        Tensor Third(Tensor x, int i) => x.ViewOf(x.Offset + i * D, [batch, seq, D], false);
        var qkv = c.Rand(batch, seq, 3 * D);
        var o = c.Rand(batch, seq, D);
        var p = c.Rand(batch, heads, seq, seq);
        var scale = 1f / MathF.Sqrt(hd);
        c.Both((be, t) => be.CausalAttention(Third(t(qkv), 0), Third(t(qkv), 1), Third(t(qkv), 2), 3 * D, t(o), t(p), batch, seq, heads, hd, scale));
        c.Check("output", o, 1e-5);
        c.Check("probs (lower triangle)", p, 1e-5, i => i % seq <= i / seq % seq);
        foreach (var acc in new[] { false, true })
        {
            var go = c.Rand(batch, seq, D);
            var g = c.Rand(batch, seq, 3 * D);
            c.Both((be, t) => be.CausalAttentionBackward(Third(t(qkv), 0), Third(t(qkv), 1), Third(t(qkv), 2), 3 * D, t(p), t(go),
                Third(t(g), 0), acc, Third(t(g), 1), acc, Third(t(g), 2), acc, batch, seq, heads, hd, scale));
            c.Check($"dQKV acc {acc}", g, 1e-5);
        }
    }

    private static void Rope(Ctx c)
    {
        int batch = 2, seq = 7, heads = 3, hd = 10, half = hd / 2, positions = 12;
        var x = c.Rand(batch, seq, heads * hd);
        var cos = c.Rand(positions, half);
        var sin = c.Rand(positions, half);
        foreach (var inverse in new[] { false, true })
            foreach (var acc in new[] { false, true })
            {
                var y = c.Rand(batch, seq, heads * hd);
                c.Both((be, t) => be.Rope(t(x), t(y), t(cos), t(sin), batch, seq, heads, hd, 3, inverse, acc));
                c.Check($"inverse {inverse} acc {acc}", y, 1e-6);
            }
    }

    private static void CopyColumns(Ctx c)
    {
        var src = c.Rand(6, 11);
        foreach (var acc in new[] { false, true })
        {
            var dst = c.Rand(6, 9);
            c.Both((be, t) => be.CopyColumns(t(src), 2, 11, t(dst), 3, 9, 6, 5, acc));
            c.Check($"acc {acc}", dst, 1e-6);
        }
    }

    private static void Mora(Ctx c, MoraType type, int inF, int outF, int rHat)
    {
        var op = new MoraOperator(inF, outF, rHat, type);
        var rows = 5;
        foreach (var chunks in (type == MoraType.Rope ? new[] { op.Chunks, op.ActiveChunks } : [1]).Distinct())
        {
            var w = chunks * rHat;
            var x = c.Rand(rows, inF);
            var xc = c.Rand(rows, w);
            c.Both((be, t) => be.MoraCompress(op, t(x), t(xc), rows, chunks));
            c.Check($"compress chunks {chunks}", xc, 1e-5);
            foreach (var acc in new[] { false, true })
            {
                var gx = c.Rand(rows, inF);
                c.Both((be, t) => be.MoraCompressBackward(op, t(xc), t(gx), rows, chunks, acc));
                c.Check($"compress backward chunks {chunks} acc {acc}", gx, 1e-5);
            }
            if (type == MoraType.Rope && chunks < op.ActiveChunks) continue;
            var yhat = c.Rand(rows, w);
            var y = c.Rand(rows, outF);
            c.Both((be, t) => be.MoraDecompressAdd(op, t(yhat), t(y), rows, chunks));
            c.Check($"decompress add chunks {chunks}", y, 1e-5);
            var gyhat = c.Rand(rows, w);
            c.Both((be, t) => be.MoraDecompressBackward(op, t(y), t(gyhat), rows, chunks));
            c.Check($"decompress backward chunks {chunks}", gyhat, 1e-5);
            // The layer with the update fused into its GEMM (the CPU's epilogue against the device's pair of kernels).
            var weight = c.Rand(outF, inF);
            if (chunks == op.ActiveChunks)
            {
                var mm = c.Rand(rHat, rHat);
                var merged = c.Rand(outF, inF);
                c.Both((be, t) => be.MoraMergeWeight(op, t(weight), t(mm), t(merged)));
                c.Check("merge weight", merged, 1e-5);
                foreach (var acc in new[] { false, true })
                {
                    var gm = c.Rand(rHat, rHat);
                    c.Both((be, t) => be.MoraWeightGradient(op, t(yhat), t(x), t(gm), rows, chunks, acc));
                    c.Check($"weight gradient acc {acc}", gm, 1e-4);
                }
            }
            c.Both((be, t) => be.MoraLinear(op, t(x), t(weight), t(yhat), t(y), rows, chunks));
            c.Check($"linear chunks {chunks}", y, 1e-5);
            foreach (var acc in new[] { false, true })
            {
                var gx = c.Rand(rows, inF);
                var gxhat = c.Rand(rows, w);
                c.Both((be, t) => be.MoraLinearInputGradient(op, t(y), t(weight), t(gxhat), t(gx), rows, chunks, acc));
                c.Check($"linear input gradient chunks {chunks} acc {acc}", gx, 1e-5);
            }
        }
    }

    /// <summary>
    /// The generated device kernels of one shape against the generic CPU kernels: the device runs an operator that
    /// uses them, the CPU one that does not.
    /// </summary>
    private static void MoraSpecialised(Ctx c, IMoraKernels kernels)
    {
        var fast = new MoraOperator(kernels.In, kernels.Out, kernels.RHat, kernels.Type);
        var reference = new MoraOperator(kernels.In, kernels.Out, kernels.RHat, kernels.Type, specialise: false);
        if (fast.DeviceKernels == null)
            throw new InvalidOperationException($"{fast}: no device kernels found (MORA_GENERIC_KERNELS=1?), nothing to check.");
        if (c.Ilgpu is { UseSpecialisedMoraKernels: false })
            throw new InvalidOperationException("The backend has specialised MoRA kernels turned off, nothing to check.");
        MoraOperator Op(IBackend be) => ReferenceEquals(be, MoraEngine.Device.Cpu.Backend) ? reference : fast;
        const int rows = 3;
        var chunks = fast.DeviceKernels.Chunks;
        var w = chunks * kernels.RHat;
        var x = c.Rand(rows, kernels.In);
        var xc = c.Rand(rows, w);
        c.Both((be, t) => be.MoraCompress(Op(be), t(x), t(xc), rows, chunks));
        c.Check("compress", xc, 1e-5);
        foreach (var acc in new[] { false, true })
        {
            var gx = c.Rand(rows, kernels.In);
            c.Both((be, t) => be.MoraCompressBackward(Op(be), t(xc), t(gx), rows, chunks, acc));
            c.Check($"compress backward acc {acc}", gx, 1e-5);
        }
        var yhat = c.Rand(rows, w);
        var y = c.Rand(rows, kernels.Out);
        c.Both((be, t) => be.MoraDecompressAdd(Op(be), t(yhat), t(y), rows, chunks));
        c.Check("decompress add", y, 1e-5);
        var gyhat = c.Rand(rows, w);
        c.Both((be, t) => be.MoraDecompressBackward(Op(be), t(y), t(gyhat), rows, chunks));
        c.Check("decompress backward", gyhat, 1e-5);
    }

    private static void AdamW(Ctx c)
    {
        var p = c.Rand(1003);
        var m = c.Rand(1003);
        var v = c.RandRange(0f, 0.1f, 1003);
        for (var step = 1; step <= 3; step++)
        {
            var g = c.Rand(1003);
            var a = AdamStep.Create(1e-2, 0.9, 0.999, 1e-8, 0.1, step);
            c.Both((be, t) => be.AdamW(t(p), t(g), t(m), t(v), a));
        }
        c.Check("p", p, 1e-5);
        c.Check("m", m, 1e-6);
        c.Check("v", v, 1e-6);
    }

    private static void Sgd(Ctx c)
    {
        var p = c.Rand(509);
        var buf = c.Rand(509);
        var g = c.Rand(509);
        c.Both((be, t) => be.Sgd(t(p), t(g), t(buf), 0.1f, 0.9f, 0.01f));
        c.Both((be, t) => be.Sgd(t(p), t(g), null, 0.1f, 0f, 0.01f));
        c.Check("p", p, 1e-6);
        c.Check("momentum", buf, 1e-6);
    }

    // ---------------------------------------------------------------- training

    /// <summary>The small models of the training parity check.</summary>
    internal static readonly string[] TrainingMethods = ["fft", "fft-llama", "lora", "mora-1", "mora-6"];

    /// <summary>
    /// Trains a tiny model for <paramref name="steps"/> steps on the CPU and on <paramref name="device"/> from the same
    /// seed and returns both loss sequences.
    /// </summary>
    internal static (float[] Cpu, float[] Dev) TrainingLosses(string method, Device device, int steps = 3, int dModel = 16)
    {
        return (Train(method, MoraEngine.Device.Cpu, steps, dModel), Train(method, device, steps, dModel));
    }

    private static float[] Train(string method, Device device, int steps, int dModel)
    {
        var cfg = new ModelConfig
        {
            Architecture = method == "fft-llama" ? Architecture.Llama : Architecture.Gpt2,
            VocabSize = 13, DModel = dModel, Layers = 2, Heads = 2, Context = 8, NormEps = 1e-5f,
        };
        var model = new TransformerModel(cfg, seed: 5);
        switch (method)
        {
            case "lora":
                AdaptedModel.Wrap(model, new AdapterConfig { Method = AdapterMethod.Lora, Rank = 2 });
                break;
            case "mora-1":
                AdaptedModel.Wrap(model, new AdapterConfig { Method = AdapterMethod.Mora, Rank = 2, MoraType = MoraType.Sharing });
                break;
            case "mora-6":
                AdaptedModel.Wrap(model, new AdapterConfig { Method = AdapterMethod.Mora, Rank = 2, MoraType = MoraType.Rope });
                break;
        }
        model.To(device);
        var rng = new Rng(9);
        var text = new byte[4096];
        for (var i = 0; i < text.Length; i++) text[i] = (byte)rng.NextInt(cfg.VocabSize);
        var data = new TextBatchSource(text, 3, cfg.VocabSize);
        var opt = new AdamW(model.TrainableParameters(), lr: 1e-2f, weightDecay: 0.1f);
        var trainer = new Trainer(model, opt, new ConstantLr(1e-2f), data, new TrainerOptions { BatchSize = 3, ClipGradNorm = 1f });
        var losses = new float[steps];
        for (var i = 0; i < steps; i++) losses[i] = trainer.TrainStep();
        return losses;
    }

    /// <summary>One line per result, for the self-test report.</summary>
    internal static string Format(Result r) =>
        string.Create(CultureInfo.InvariantCulture, $"{(r.Passed ? "ok  " : "FAIL")} {r.Name,-28} err {r.MaxError,9:G3} (tol {r.Tolerance:G2})  {r.Detail}");
}
