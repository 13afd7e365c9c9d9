using MoraEngine.Training;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MoraEngine.Examples.Uuid;

/// <summary>The format stage: where the base model came from.</summary>
public sealed record UuidBaseInfo(string? CachePath, bool Cached, int FormatSteps, double Seconds, long Parameters);

/// <summary>One method's run.</summary>
/// <param name="Method">The method.</param>
/// <param name="LearningRate">Its peak learning rate.</param>
/// <param name="TrainableParams">Parameters that trained.</param>
/// <param name="Seconds">Wall time of its fine-tuning and evaluations.</param>
/// <param name="Curve">Evaluations from step 0 to the last step.</param>
/// <param name="GreedyExactMatch">Exact match of the final model by actually decoding every value greedily.</param>
/// <param name="Seed">The seed of its pairs, base model and data order.</param>
/// <param name="DivergedAtStep">The step whose loss or gradient was not finite (training stopped before it), or null.</param>
/// <param name="EvalSeconds">The part of <paramref name="Seconds"/> spent evaluating (the curve's points and the final greedy decode).</param>
public sealed record UuidRun(MethodSpec Method, float LearningRate, long TrainableParams, double Seconds, IReadOnlyList<UuidEvalPoint> Curve, double GreedyExactMatch, ulong Seed = 1, int? DivergedAtStep = null, double EvalSeconds = 0)
{
    public UuidEvalPoint Final => Curve[^1];
}

/// <summary>Mean, sample standard deviation, minimum and maximum of one number over seeds.</summary>
public sealed record UuidSpread(double Mean, double Std, double Min, double Max, int Count)
{
    public static UuidSpread Of(IReadOnlyList<double> values)
    {
        var mean = values.Average();
        var std = values.Count > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)) : 0;
        return new UuidSpread(mean, std, values.Min(), values.Max(), values.Count);
    }

    /// <summary><c>87.6%</c>, or <c>87.6 ± 2.1%</c> over several seeds.</summary>
    public string Percent() => Count > 1
        ? string.Create(CultureInfo.InvariantCulture, $"{Mean * 100:F1} ± {Std * 100:F1}%")
        : string.Create(CultureInfo.InvariantCulture, $"{Mean * 100:F1}%");
}

/// <summary>One method over every seed.</summary>
public sealed record UuidSummary(MethodSpec Method, float LearningRate, long TrainableParams, UuidSpread CharAccuracy, UuidSpread ExactMatch, UuidSpread Seconds);

/// <summary>The demo's results and their files: <c>results.json</c>, <c>curves.csv</c>, <c>char_accuracy.svg</c>.</summary>
/// <param name="Settings">The settings of the final runs (after the grid's choice, if a grid ran).</param>
/// <param name="Base">The first seed's base model.</param>
/// <param name="Runs">Every method for every seed, seed by seed.</param>
/// <param name="Bases">Each seed's base model.</param>
/// <param name="Grid">The learning-rate grid, if one ran.</param>
public sealed record UuidResults(UuidSettings Settings, UuidBaseInfo Base, IReadOnlyList<UuidRun> Runs, IReadOnlyList<UuidBaseInfo>? Bases = null, UuidGrid? Grid = null)
{
    /// <summary>Each method's final character accuracy and (greedy) exact match over the seeds, in method order.</summary>
    public IReadOnlyList<UuidSummary> Summary => Settings.Methods.Select(m =>
    {
        var runs = Runs.Where(r => r.Method.Spec == m.Spec).ToList();
        return new UuidSummary(m, runs[0].LearningRate, runs[0].TrainableParams,
            UuidSpread.Of(runs.Select(r => r.Final.CharAccuracy).ToList()),
            UuidSpread.Of(runs.Select(r => r.GreedyExactMatch).ToList()),
            UuidSpread.Of(runs.Select(r => r.Seconds).ToList()));
    }).ToList();

    public const string JsonFile = "results.json";
    public const string CsvFile = "curves.csv";
    public const string PlotFile = "char_accuracy.svg";

    /// <summary>Writes the three files into <paramref name="directory"/> (each atomically: temp file, then rename).</summary>
    public IReadOnlyList<string> Write(string directory)
    {
        Directory.CreateDirectory(directory);
        var files = new List<string>();
        void Put(string name, string content)
        {
            var path = Path.Combine(directory, name);
            var tmp = path + ".tmp";
            File.WriteAllText(tmp, content, new UTF8Encoding(false));
            File.Move(tmp, path, overwrite: true);
            files.Add(path);
        }
        Put(JsonFile, ToJson());
        Put(CsvFile, ToCsv());
        Put(PlotFile, UuidPlot.Svg(this));
        return files;
    }

    /// <summary>
    /// <c>{"settings":{...},"base":{...},"runs":[{"method","rank","mora_type","trainable_params","seconds","curve":[...]}]}</c>;
    /// <c>rank</c> and <c>mora_type</c> are null where they do not apply.
    /// </summary>
    public string ToJson()
    {
        var s = Settings;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteStartObject("settings");
            w.WriteNumber("pairs", s.Pairs);
            w.WriteNumber("steps", s.Steps);
            w.WriteNumber("batch", s.Batch);
            w.WriteStartObject("lr");
            foreach (var m in s.Methods) w.WriteNumber(m.Spec, s.LearningRates.For(m));
            w.WriteEndObject();
            w.WriteStartArray("methods");
            foreach (var m in s.Methods) w.WriteStringValue(m.Spec);
            w.WriteEndArray();
            w.WriteNumber("d_model", s.DModel);
            w.WriteNumber("layers", s.Layers);
            w.WriteNumber("heads", s.Heads);
            w.WriteNumber("context", UuidVocab.Time);
            w.WriteNumber("vocab_size", UuidVocab.Size);
            w.WriteNumber("format_steps", s.FormatSteps);
            w.WriteNumber("format_lr", s.FormatLr);
            w.WriteNumber("format_weight_decay", s.FormatWeightDecay);
            w.WriteString("format_schedule", s.FormatSchedule);
            w.WriteNumber("eval_every", s.EvalEvery);
            w.WriteNumber("warmup", s.Warmup);
            w.WriteNumber("restart_every", s.RestartEvery);
            w.WriteNumber("seed", s.Seed);
            w.WriteNumber("seeds", s.Seeds);
            w.WriteString("device", UuidSettings.ResolveDevice(s.Device).Name);
            w.WriteString("char_accuracy", "teacher-forced argmax accuracy over the 36 value characters of every pair (<eos> excluded)");
            w.WriteString("exact_match", "fraction of pairs whose whole value greedy decoding reproduces (curve: from the teacher-forced pass, every character the argmax, which is equivalent; greedy_exact_match: the final model decoded for real)");
            w.WriteString("loss", "mean cross-entropy over the value characters and <eos> of every pair");
            w.WriteEndObject();
            // Memory of this process so far: the peak resident set and the tensor pool's peak working set.
            using (var self = System.Diagnostics.Process.GetCurrentProcess())
            {
                self.Refresh();
                w.WriteNumber("peak_bytes", self.PeakWorkingSet64);
            }
            var pool = UuidSettings.ResolveDevice(s.Device).Pool;
            w.WriteNumber("pool_peak_in_use_bytes", pool.PeakInUseBytes);
            w.WriteNumber("pool_bytes_created", pool.BytesCreated);

            void WriteBase(UuidBaseInfo b)
            {
                w.WriteNumber("parameters", b.Parameters);
                w.WriteNumber("format_steps", b.FormatSteps);
                w.WriteBoolean("cached", b.Cached);
                if (b.CachePath != null) w.WriteString("checkpoint", b.CachePath);
                else w.WriteNull("checkpoint");
                w.WriteNumber("seconds", Math.Round(b.Seconds, 2));
            }
            w.WriteStartObject("base");
            WriteBase(Base);
            w.WriteEndObject();
            w.WriteStartArray("bases");
            var bases = Bases ?? [Base];
            for (var k = 0; k < bases.Count; k++)
            {
                w.WriteStartObject();
                w.WriteNumber("seed", s.Seed + (ulong)k);
                WriteBase(bases[k]);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            void WriteSpread(string name, UuidSpread v)
            {
                w.WriteStartObject(name);
                w.WriteNumber("mean", v.Mean);
                w.WriteNumber("std", v.Std);
                w.WriteNumber("min", v.Min);
                w.WriteNumber("max", v.Max);
                w.WriteEndObject();
            }
            w.WriteStartArray("summary");
            foreach (var m in Summary)
            {
                w.WriteStartObject();
                w.WriteString("method", m.Method.Spec);
                w.WriteString("label", m.Method.Label);
                w.WriteNumber("lr", m.LearningRate);
                w.WriteNumber("trainable_params", m.TrainableParams);
                w.WriteNumber("seeds", m.CharAccuracy.Count);
                WriteSpread("char_accuracy", m.CharAccuracy);
                WriteSpread("greedy_exact_match", m.ExactMatch);
                WriteSpread("seconds", m.Seconds);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            if (Grid is { } g)
            {
                w.WriteStartObject("grid");
                w.WriteNumber("seed", g.Seed);
                w.WriteStartArray("format_lrs");
                foreach (var f in g.FormatLrs) w.WriteNumberValue(f);
                w.WriteEndArray();
                w.WriteStartArray("lrs");
                foreach (var f in g.Lrs) w.WriteNumberValue(f);
                w.WriteEndArray();
                w.WriteString("rule", UuidGrid.Rule);
                w.WriteStartArray("runs");
                foreach (var e in g.Entries)
                {
                    w.WriteStartObject();
                    w.WriteNumber("format_lr", e.FormatLr);
                    w.WriteString("method", e.Method.Spec);
                    w.WriteNumber("lr", e.Lr);
                    w.WriteNumber("char_accuracy", e.CharAccuracy);
                    w.WriteNumber("exact_match", e.ExactMatch);
                    w.WriteNumber("loss", e.Loss);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartObject("scores");
                foreach (var f in g.FormatLrs) w.WriteNumber(f.ToString("R", CultureInfo.InvariantCulture), g.Score(f));
                w.WriteEndObject();
                w.WriteStartObject("chosen");
                w.WriteNumber("format_lr", g.ChosenFormatLr);
                w.WriteStartObject("lr");
                foreach (var (spec, lr) in g.ChosenLrs) w.WriteNumber(spec, lr);
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteStartArray("runs");
            foreach (var r in Runs)
            {
                w.WriteStartObject();
                w.WriteNumber("seed", r.Seed);
                w.WriteString("method", r.Method.Name);
                if (r.Method.Rank is { } rank) w.WriteNumber("rank", rank);
                else w.WriteNull("rank");
                if (r.Method.MoraType is { } t) w.WriteNumber("mora_type", (int)t);
                else w.WriteNull("mora_type");
                w.WriteString("label", r.Method.Label);
                w.WriteNumber("lr", r.LearningRate);
                w.WriteNumber("trainable_params", r.TrainableParams);
                w.WriteNumber("seconds", Math.Round(r.Seconds, 2));
                w.WriteNumber("train_seconds", Math.Round(r.Seconds - r.EvalSeconds, 2));
                w.WriteNumber("eval_seconds", Math.Round(r.EvalSeconds, 2));
                w.WriteNumber("greedy_exact_match", r.GreedyExactMatch);
                if (r.DivergedAtStep is { } dv) w.WriteNumber("diverged_at_step", dv);
                else w.WriteNull("diverged_at_step");
                w.WriteStartArray("curve");
                foreach (var p in r.Curve)
                {
                    w.WriteStartObject();
                    w.WriteNumber("step", p.Step);
                    w.WriteNumber("char_accuracy", p.CharAccuracy);
                    w.WriteNumber("exact_match", p.ExactMatch);
                    w.WriteNumber("loss", p.Loss);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    /// <summary>One line per evaluation: <c>seed,method,rank,mora_type,step,char_accuracy,exact_match,loss</c>.</summary>
    public string ToCsv()
    {
        var sb = new StringBuilder("seed,method,rank,mora_type,step,char_accuracy,exact_match,loss\n");
        foreach (var r in Runs)
            foreach (var p in r.Curve)
                sb.Append(CultureInfo.InvariantCulture,
                    $"{r.Seed},{r.Method.Name},{r.Method.Rank?.ToString(CultureInfo.InvariantCulture)},{(r.Method.MoraType is { } t ? ((int)t).ToString(CultureInfo.InvariantCulture) : "")},{p.Step},{p.CharAccuracy:R},{p.ExactMatch:R},{p.Loss:R}\n");
        return sb.ToString();
    }
}
