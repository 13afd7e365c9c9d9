using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MoraEngine.Adapters;
using MoraEngine.Examples.Uuid;
using MoraEngine.IO;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;

namespace MoraEngine.Parity;

/// <summary>
/// One training run to reproduce outside the engine: model, method, optimizer, schedule and data, all from seeds.
/// <see cref="Run"/> trains it exactly as the UUID demo fine-tunes (same Trainer, AdamW, warm-up + cosine schedule,
/// clipping and restarts) and writes everything a reference implementation needs to redo it: the config, the
/// initial weights, every batch, the adapters' re-initialisations at restarts, and the engine's own losses and
/// gradients.
/// </summary>
public sealed record ParityCase
{
    /// <summary>Model family of the case: <c>uuid</c> (the demo's GPT-2 model) or <c>llama</c> (RMSNorm, RoPE, SwiGLU).</summary>
    public string Arch { get; init; } = "uuid";

    /// <summary><c>fft</c>, <c>lora</c>, <c>mora</c>, <c>relora</c> or <c>remora</c>.</summary>
    public string Method { get; init; } = "lora";

    public int Rank { get; init; } = 8;

    public float Alpha { get; init; } = 16f;

    public MoraType MoraType { get; init; } = MoraType.Sharing;

    public float Lr { get; init; } = 5e-3f;

    public int Steps { get; init; } = 20;

    /// <summary>Length of the warm-up + cosine schedule (the demo's fine-tuning length); 0 uses <see cref="Steps"/>.</summary>
    public int ScheduleSteps { get; init; }

    public int Warmup { get; init; } = 30;

    public int Batch { get; init; } = 32;

    public int Pairs { get; init; } = 128;

    public int DModel { get; init; } = 128;

    public int Layers { get; init; } = 2;

    public int Heads { get; init; } = 4;

    /// <summary>Steps between ReLoRA/ReMoRA restarts.</summary>
    public int RestartEvery { get; init; } = 10;

    public float Clip { get; init; } = 1f;

    public ulong Seed { get; init; } = 1;

    /// <summary>Base weights to start from (for example the UUID demo's cached format-stage model); null: seeded init.</summary>
    public string? BasePath { get; init; }

    /// <summary>Steps (0-based) whose raw gradients are written.</summary>
    public int[] GradSteps { get; init; } = [0, 1];

    public bool HasRestarts => Method is "relora" or "remora";

    public bool IsMora => Method is "mora" or "remora";

    public int TotalScheduleSteps => ScheduleSteps > 0 ? ScheduleSteps : Steps;

    /// <summary>A short name: <c>uuid-mora6</c>.</summary>
    public string Name => $"{Arch}-{Method}{(IsMora ? ((int)MoraType).ToString(CultureInfo.InvariantCulture) : "")}";

    public ModelConfig ModelConfig => Arch switch
    {
        "uuid" => new ModelConfig
        {
            Architecture = Architecture.Gpt2, VocabSize = UuidVocab.Size, DModel = DModel, Layers = Layers, Heads = Heads,
            Context = UuidVocab.Time,
        },
        "llama" => new ModelConfig
        {
            Architecture = Architecture.Llama, VocabSize = UuidVocab.Size, DModel = DModel, Layers = Layers, Heads = Heads,
            Context = UuidVocab.Time, NormEps = 1e-6f,
        },
        _ => throw new ArgumentException($"Unknown parity architecture '{Arch}' (known: uuid, llama)."),
    };

    /// <summary>
    /// Parses <c>parity run</c>'s options: <c>--arch --method --mora-type --rank --alpha --lr --steps
    /// --schedule-steps --warmup --batch --pairs --d-model --layers --heads --restart-every --clip --seed --base
    /// --grad-steps 0,1,… --eval --out</c>.
    /// </summary>
    public static (ParityCase Case, string? OutDir, bool Evaluate) FromArgs(IReadOnlyList<string> args)
    {
        var c = new ParityCase();
        string? outDir = null;
        var evaluate = false;
        for (var i = 0; i < args.Count; i++)
        {
            var option = args[i];
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{option} needs a value.");
            int Int()
            {
                var v = Next();
                return int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"{option}: '{v}' is not an integer.");
            }
            float Float()
            {
                var v = Next();
                return float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) ? f : throw new ArgumentException($"{option}: '{v}' is not a number.");
            }
            switch (option)
            {
                case "--arch": c = c with { Arch = Next() }; break;
                case "--method": c = c with { Method = Next() }; break;
                case "--mora-type": c = c with { MoraType = (MoraType)Int() }; break;
                case "--rank": c = c with { Rank = Int() }; break;
                case "--alpha": c = c with { Alpha = Float() }; break;
                case "--lr": c = c with { Lr = Float() }; break;
                case "--steps": c = c with { Steps = Int() }; break;
                case "--schedule-steps": c = c with { ScheduleSteps = Int() }; break;
                case "--warmup": c = c with { Warmup = Int() }; break;
                case "--batch": c = c with { Batch = Int() }; break;
                case "--pairs": c = c with { Pairs = Int() }; break;
                case "--d-model": c = c with { DModel = Int() }; break;
                case "--layers": c = c with { Layers = Int() }; break;
                case "--heads": c = c with { Heads = Int() }; break;
                case "--restart-every": c = c with { RestartEvery = Int() }; break;
                case "--clip": c = c with { Clip = Float() }; break;
                case "--seed": c = c with { Seed = (ulong)Int() }; break;
                case "--base": c = c with { BasePath = Next() }; break;
                case "--grad-steps":
                    var list = Next();
                    c = c with
                    {
                        GradSteps = list.Split(',').Select(t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0
                            ? n : throw new ArgumentException($"--grad-steps: '{t}' is not a step number.")).ToArray(),
                    };
                    break;
                case "--eval": evaluate = true; break;
                case "--out": outDir = Next(); break;
                default: throw new ArgumentException($"unknown option '{option}'.");
            }
        }
        c.Validate();
        return (c, outDir, evaluate);
    }

    public void Validate()
    {
        if (Method is not ("fft" or "lora" or "mora" or "relora" or "remora"))
            throw new ArgumentException($"Unknown method '{Method}' (known: fft, lora, mora, relora, remora).");
        if (Steps <= 0) throw new ArgumentException($"--steps must be positive, got {Steps}.");
        if (Batch <= 0) throw new ArgumentException($"--batch must be positive, got {Batch}.");
        if (!(Lr > 0) || !float.IsFinite(Lr)) throw new ArgumentException($"--lr must be positive, got {Lr}.");
        if (RestartEvery <= 0) throw new ArgumentException($"--restart-every must be positive, got {RestartEvery}.");
        if (!Enum.IsDefined(MoraType)) throw new ArgumentException($"--mora-type {(int)MoraType}: unknown (known: 0, 1, 2, 3, 4, 6).");
        if (Method == "remora" && MoraType is not (MoraType.Sharing or MoraType.Interleave))
            throw new ArgumentException("remora cycles MoRA types 1 and 2; start it from type 1 or 2.");
        ModelConfig.Validate();
    }

    /// <summary>The case as the reference script reads it (case.json).</summary>
    public JsonObject ToJson()
    {
        var cfg = ModelConfig;
        var adapter = Method == "fft" ? null : new AdapterConfig
        {
            Method = IsMora ? AdapterMethod.Mora : AdapterMethod.Lora, Rank = Rank, Alpha = Alpha, MoraType = MoraType,
        };
        return new JsonObject
        {
            ["name"] = Name,
            ["model"] = JsonNode.Parse(cfg.ToJson()),
            ["ff_hidden"] = cfg.FfHiddenResolved,
            ["method"] = Method,
            ["rank"] = Rank,
            ["alpha"] = Alpha,
            ["scaling"] = adapter?.Scaling ?? 1f,
            ["mora_type"] = (int)MoraType,
            ["targets"] = new JsonArray((adapter?.TargetModules ?? []).Select(t => (JsonNode)t!).ToArray()),
            ["restart_every"] = HasRestarts ? RestartEvery : 0,
            ["restart_warmup"] = HasRestarts ? Math.Max(1, Math.Min(Warmup, TotalScheduleSteps)) : 0,
            ["mora_cycle"] = new JsonArray(1, 2),
            ["lr"] = Lr,
            ["min_lr"] = Lr * 0.1f,
            ["warmup"] = Math.Min(Warmup, TotalScheduleSteps),
            ["schedule_steps"] = TotalScheduleSteps,
            ["beta1"] = 0.9f,
            ["beta2"] = 0.999f,
            ["eps"] = 1e-8f,
            ["weight_decay"] = 0f,
            ["clip"] = Clip,
            ["steps"] = Steps,
            ["batch"] = Batch,
            ["time"] = UuidVocab.Time,
            ["grad_steps"] = new JsonArray(GradSteps.Select(s => (JsonNode)s).ToArray()),
            ["seed"] = Seed,
            ["base"] = BasePath,
        };
    }

    /// <summary>What one engine run produced.</summary>
    public sealed record Result(float[] Losses, float[] LearningRates, double[] GradNorms,
        Dictionary<string, float[]> Gradients, UuidEvalPoint? FinalEval);

    /// <summary>
    /// Trains the case on the CPU. With <paramref name="outDir"/> set, writes case.json, init.safetensors,
    /// batches.safetensors, restarts.safetensors, eval.safetensors, engine.json and engine_grads.safetensors there.
    /// </summary>
    public Result Run(string? outDir, bool evaluate = false, Action<int, float>? progress = null)
    {
        Validate();
        var cfg = ModelConfig;
        var model = new TransformerModel(cfg, Seed);
        if (BasePath != null) ModelIO.LoadWeights(BasePath, model);
        var pairs = new UuidPairs(Pairs, Seed + 2);
        AdaptedModel? adapted = null;
        if (Method != "fft")
            adapted = AdaptedModel.Wrap(model, new AdapterConfig
            {
                Method = IsMora ? AdapterMethod.Mora : AdapterMethod.Lora,
                Rank = Rank,
                Alpha = Alpha,
                MoraType = MoraType,
                Seed = Seed + 3,
            });
        var init = model.NamedParameters().Select(p => new SafeTensor(p.Name, p.Param.ShapeArray.ToArray(), p.Param.ToArray())).ToList();
        var trainableNames = model.NamedParameters().Where(p => p.Param.RequiresGrad).Select(p => p.Name).ToList();

        var total = TotalScheduleSteps;
        var warmup = Math.Min(Warmup, total);
        var opt = new AdamW(model.TrainableParameters(), Lr, weightDecay: 0f);
        var schedule = new WarmupCosineLr(Lr, warmup, total, Lr * 0.1f, restartWarmup: HasRestarts ? Math.Max(1, warmup) : 0);
        var source = new RecordingSource(new FixedPairsSource(pairs, Seed + 4));
        var trainer = new Trainer(model, opt, schedule, source,
            new TrainerOptions { BatchSize = Batch, Time = UuidVocab.Time, Seed = Seed, ClipGradNorm = Clip });
        var restarts = new List<SafeTensor>();
        if (adapted != null && HasRestarts)
        {
            trainer.Callbacks.Add(new AdapterRestarts(adapted, RestartEvery));
            trainer.Callbacks.Add(new RestartRecorder(adapted, RestartEvery, restarts));
        }
        var grads = new Dictionary<string, float[]>();
        var named = model.NamedParameters().Where(p => p.Param.RequiresGrad).ToList();
        trainer.GradientsReady += (_, step) =>
        {
            if (Array.IndexOf(GradSteps, step) < 0) return;
            foreach (var (name, p) in named)
                grads[$"step{step}.{name}"] = p.Grad != null && p.GradValid ? p.Grad.ToArray() : new float[p.Length];
        };
        var losses = new float[Steps];
        var lrs = new float[Steps];
        var norms = new double[Steps];
        for (var i = 0; i < Steps; i++)
        {
            losses[i] = trainer.TrainStep();
            lrs[i] = opt.LearningRate;
            norms[i] = trainer.LastGradNorm;
            progress?.Invoke(i + 1, losses[i]);
        }
        var final = evaluate ? UuidEvaluation.Evaluate(model, pairs, Steps) : null;
        var result = new Result(losses, lrs, norms, grads, final);
        if (outDir == null) return result;

        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "case.json"), ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Safetensors.Save(Path.Combine(outDir, "init.safetensors"), init);
        var t = UuidVocab.Time;
        Safetensors.Save(Path.Combine(outDir, "batches.safetensors"),
        [
            new SafeTensor("ids", [Steps, Batch, t], source.Ids.Select(v => (float)v).ToArray()),
            new SafeTensor("targets", [Steps, Batch, t], source.Targets.Select(v => (float)v).ToArray()),
        ]);
        if (restarts.Count > 0) Safetensors.Save(Path.Combine(outDir, "restarts.safetensors"), restarts);
        Safetensors.Save(Path.Combine(outDir, "eval.safetensors"), EvalRows(pairs));
        var shapes = init.ToDictionary(t => t.Name, t => t.Shape);
        // Keys are "step{N}.{parameter name}".
        Safetensors.Save(Path.Combine(outDir, "engine_grads.safetensors"),
            grads.Select(g => new SafeTensor(g.Key, shapes[g.Key[(g.Key.IndexOf('.') + 1)..]], g.Value)));
        File.WriteAllText(Path.Combine(outDir, "engine.json"), RunJson(result, trainableNames).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return result;
    }

    /// <summary>Every pair as one teacher-forced row; targets keep the 36 value characters only (the demo's metric).</summary>
    private static IEnumerable<SafeTensor> EvalRows(UuidPairs pairs)
    {
        var t = UuidVocab.Time;
        var ids = new float[pairs.Count * t];
        var targets = new float[pairs.Count * t];
        var row = new int[UuidVocab.RowLength];
        for (var i = 0; i < pairs.Count; i++)
        {
            UuidVocab.FillRow(pairs.KeyTokens[i], pairs.ValueTokens[i], row);
            for (var p = 0; p < t; p++)
            {
                ids[i * t + p] = row[p];
                targets[i * t + p] = p >= UuidVocab.SepPosition && p < t - 1 ? row[p + 1] : -100;
            }
        }
        return [new SafeTensor("ids", [pairs.Count, t], ids), new SafeTensor("targets", [pairs.Count, t], targets)];
    }

    private static JsonObject RunJson(Result r, List<string> trainable)
    {
        var o = new JsonObject
        {
            ["losses"] = new JsonArray(r.Losses.Select(v => (JsonNode)v).ToArray()),
            ["lrs"] = new JsonArray(r.LearningRates.Select(v => (JsonNode)v).ToArray()),
            ["grad_norms"] = new JsonArray(r.GradNorms.Select(v => (JsonNode)v).ToArray()),
            ["trainable"] = new JsonArray(trainable.Select(v => (JsonNode)v!).ToArray()),
        };
        if (r.FinalEval is { } e)
            o["final_eval"] = new JsonObject { ["char_accuracy"] = e.CharAccuracy, ["loss"] = e.Loss };
        return o;
    }

    /// <summary>Passes batches through and keeps a copy of each.</summary>
    private sealed class RecordingSource(IBatchSource inner) : IBatchSource
    {
        public List<int> Ids { get; } = new();
        public List<int> Targets { get; } = new();
        public int VocabSize => inner.VocabSize;

        public void Next(Batch batch)
        {
            inner.Next(batch);
            Ids.AddRange(batch.Ids);
            Targets.AddRange(batch.Targets);
        }

        public uint[] GetState() => inner.GetState();
        public void SetState(uint[] state) => inner.SetState(state);
    }

    /// <summary>After each restart, the adapters' fresh values (LoRA's new A comes from the engine's generator).</summary>
    private sealed class RestartRecorder(AdaptedModel adapted, int every, List<SafeTensor> into) : ITrainerCallback
    {
        public void OnStepEnd(Trainer trainer, int step, float loss)
        {
            if (step % every != 0) return;
            foreach (var l in adapted.Layers)
                foreach (var (name, p) in l.Adapter.NamedParameters())
                    into.Add(new SafeTensor($"step{step}.{l.Name}.{name}", p.ShapeArray.ToArray(), p.ToArray()));
        }
    }
}
