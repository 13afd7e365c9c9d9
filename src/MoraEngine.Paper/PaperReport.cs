using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MoraEngine.Examples.Paper;

/// <summary>Writes an experiment's results.json, curves.csv, report.md and SVG plots into a directory.</summary>
public static class PaperReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Writes every file (each through a temporary name, so a crash leaves the old file or the new one) and returns their paths.</summary>
    public static IReadOnlyList<string> Write(PaperResults r, string dir)
    {
        Directory.CreateDirectory(dir);
        var files = new List<string>();
        void Put(string name, string content)
        {
            var path = Path.Combine(dir, name);
            var tmp = $"{path}.tmp-{Environment.ProcessId}";
            File.WriteAllText(tmp, content, new UTF8Encoding(false));
            File.Move(tmp, path, overwrite: true);
            files.Add(path);
        }
        Put("results.json", Json(r));
        Put("curves.csv", Csv(r));
        var plots = Plots(r);
        foreach (var (name, svg) in plots) Put(name, svg);
        Put("report.md", Markdown(r, plots.Select(p => p.Name).ToList()));
        return files;
    }

    private static string ExperimentName(PaperExperiment e) => e.ToString().ToLowerInvariant();

    /// <summary>results.json: experiment, settings, grid, runs (grid and final) and claims.</summary>
    public static string Json(PaperResults r)
    {
        var s = r.Settings;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("experiment", ExperimentName(s.Experiment));
            w.WriteStartObject("settings");
            w.WriteString("preset", s.Preset);
            w.WriteNumber("seeds", s.Seeds);
            w.WriteNumber("seed", s.Seed);
            w.WriteNumber("grid_seed", s.GridSeed);
            w.WriteNumber("steps", s.Steps);
            w.WriteNumber("batch", s.Batch);
            w.WriteNumber("seq_len", s.Time);
            w.WriteNumber("rank", s.Rank);
            w.WriteString("methods", string.Join(",", s.Methods.Select(m => m.Spec)));
            w.WriteStartArray("grid_lrs");
            foreach (var lr in s.GridLrs) w.WriteNumberValue(Math.Round(lr, 7));
            w.WriteEndArray();
            w.WriteString("grid_rule", "each method's rate: the lowest final held-out loss on the grid seed (a diverged run counts as infinite; ties go to the first listed); that rate then runs on every final seed");
            w.WriteNumber("eval_every", s.EvalEvery);
            w.WriteNumber("warmup", s.Warmup);
            w.WriteNumber("restart_every", s.RestartEvery);
            w.WriteString("schedule", "linear warm-up, cosine decay to a tenth; ReLoRA/ReMoRA: merge, re-initialise, reset the adapters' AdamW state and re-warm every restart_every steps (ReMoRA alternates MoRA types 1 and 2)");
            w.WriteString("optimizer", "AdamW, betas (0.9, 0.999), weight decay 0, gradient norm clipped to 1");
            w.WriteStartArray("targets");
            foreach (var t in PaperSettings.Targets) w.WriteStringValue(t);
            w.WriteEndArray();
            w.WriteString("model", s.ModelConfig.ToJson());
            w.WriteNumber("model_params", s.ModelConfig.ParameterCount());
            w.WriteString("device", s.Device);
            if (s.Experiment == PaperExperiment.Continual) w.WriteNumber("domain_entities", s.DomainEntities);
            if (s.Experiment == PaperExperiment.Tasks)
            {
                w.WriteNumber("task_train", s.TaskTrain);
                w.WriteNumber("task_test", s.TaskTest);
                w.WriteNumber("margin", s.Margin);
                w.WriteNumber("task_floor", PaperClaims.TaskFloor);
            }
            if (s.Experiment == PaperExperiment.Spectra) w.WriteNumber("spectrum_threshold", PaperSettings.SpectrumThreshold);
            w.WriteStartObject("corpus");
            w.WriteString("source", r.Corpus.Source);
            w.WriteString("path", r.Corpus.Path);
            w.WriteNumber("files", r.Corpus.Files);
            w.WriteNumber("documents", r.Corpus.Documents);
            w.WriteNumber("train_bytes", r.Corpus.TrainBytes);
            w.WriteNumber("validation_bytes", r.Corpus.ValidationBytes);
            w.WriteString("sha256", r.Corpus.Sha256);
            w.WriteEndObject();
            if (r.Base is { } b)
            {
                w.WriteStartObject("base");
                w.WriteNumber("steps", b.Steps);
                w.WriteNumber("lr", Math.Round(b.Lr, 7));
                w.WriteNumber("general_val_loss", Math.Round(b.GeneralValLoss, 6));
                w.WriteBoolean("cached", b.Cached);
                w.WriteNumber("seconds", b.Seconds);
                w.WriteEndObject();
            }
            w.WriteEndObject();

            w.WriteStartArray("grid");
            foreach (var g in r.Grid)
            {
                w.WriteStartObject();
                w.WriteString("setup", g.Setup);
                w.WriteString("method", g.Method);
                w.WriteStartArray("results");
                for (var i = 0; i < g.Lrs.Length; i++)
                {
                    w.WriteStartObject();
                    w.WriteNumber("lr", Math.Round(g.Lrs[i], 7));
                    Number(w, "final_val_loss", g.FinalValLoss[i]);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteNumber("chosen_lr", Math.Round(g.Chosen, 7));
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartArray("runs");
            foreach (var run in r.Runs)
            {
                w.WriteStartObject();
                w.WriteString("setup", run.Setup);
                w.WriteString("phase", run.Phase);
                w.WriteString("method", run.Spec.Name);
                w.WriteString("spec", run.Method);
                if (run.Rank is { } rank) w.WriteNumber("rank", rank);
                else w.WriteNull("rank");
                if (run.MoraType is { } t) w.WriteNumber("mora_type", t);
                else w.WriteNull("mora_type");
                w.WriteNumber("lr", Math.Round(run.Lr, 7));
                w.WriteNumber("seed", run.Seed);
                w.WriteNumber("trainable_params", run.TrainableParams);
                w.WriteNumber("adapter_params", run.AdapterParams);
                w.WriteStartArray("curve");
                foreach (var p in run.Curve)
                {
                    w.WriteStartObject();
                    w.WriteNumber("step", p.Step);
                    Number(w, "val_loss", p.ValLoss);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                Number(w, "final_val_loss", run.FinalValLoss);
                foreach (var (k, v) in run.Metrics.OrderBy(k => k.Key, StringComparer.Ordinal)) Number(w, k, v);
                if (run.DivergedAt is { } d) w.WriteNumber("diverged_at_step", d);
                if (run.Spectra is { } sp)
                {
                    w.WriteStartObject("spectra");
                    w.WriteNumber("threshold", sp.Threshold);
                    w.WriteNumber("mean_count", Math.Round(sp.MeanCount, 4));
                    w.WriteStartArray("bin_lower_edges");
                    foreach (var e in RunSpectra.BinEdges) w.WriteNumberValue(e);
                    w.WriteEndArray();
                    w.WriteStartArray("layers");
                    foreach (var l in sp.Layers)
                    {
                        w.WriteStartObject();
                        w.WriteString("layer", l.Layer);
                        w.WriteNumber("in", l.In);
                        w.WriteNumber("out", l.Out);
                        w.WriteNumber("count", l.Count);
                        w.WriteStartArray("histogram");
                        foreach (var c in l.Histogram) w.WriteNumberValue(c);
                        w.WriteEndArray();
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteNumber("seconds", run.Seconds);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartArray("claims");
            foreach (var c in r.Claims)
            {
                w.WriteStartObject();
                w.WriteString("claim", c.Claim);
                w.WriteString("verdict", Verdicts.Text(c.Verdict));
                w.WriteString("evidence", c.Evidence);
                w.WriteString("rule", c.Rule);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNumber("seconds", r.Seconds);
            w.WriteNumber("run_seconds", Math.Round(r.Runs.Sum(x => x.Seconds), 1));
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    /// <summary>A finite number rounded to 6 decimals, or null (a diverged run's loss).</summary>
    private static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, Math.Round(v, 6));
        else w.WriteNull(name);
    }

    /// <summary>curves.csv: one row per evaluation of every run.</summary>
    public static string Csv(PaperResults r)
    {
        var sb = new StringBuilder("experiment,setup,phase,method,spec,lr,seed,step,val_loss\n");
        foreach (var run in r.Runs)
            foreach (var p in run.Curve)
                sb.Append(Inv, $"{ExperimentName(r.Settings.Experiment)},{run.Setup},{run.Phase},{run.Spec.Name},{run.Method},{run.Lr:G4},{run.Seed},{p.Step},{(double.IsFinite(p.ValLoss) ? p.ValLoss.ToString("F6", Inv) : "")}\n");
        return sb.ToString();
    }

    private static string SetupTitle(string setup) => setup switch
    {
        "pretrain" => "Pretraining from a frozen random base: validation loss",
        "continual" => "Continual pretraining: held-out loss on the synthetic domain",
        _ => $"Task '{setup[(setup.IndexOf(':') + 1)..]}': held-out completion loss",
    };

    private static string PlotName(string setup) => setup == "pretrain" || setup == "continual" ? "curves.svg" : $"curves-{setup[(setup.IndexOf(':') + 1)..]}.svg";

    /// <summary>The SVG plots of an experiment: loss curves per setup; for spectra, bars of the counts and the distribution.</summary>
    public static IReadOnlyList<(string Name, string Svg)> Plots(PaperResults r)
    {
        var s = r.Settings;
        var sub = string.Create(Inv, $"LLaMA-style d={s.DModel} L={s.Layers} on bytes, {s.Steps} steps × {s.Batch}×{s.Time}, rank {s.Rank}; mean of {s.Seeds} seed{(s.Seeds > 1 ? "s, band min–max" : "")}");
        var list = new List<(string, string)>();
        if (s.Experiment == PaperExperiment.Spectra)
        {
            var kinds = s.Methods.Where(m => m.Kind != Training.MethodKind.Fft).ToList();
            var bars = kinds.Select(m =>
            {
                var v = Spread.Of(r.Final("pretrain", m.Name).Select(x => x.Spectra?.MeanCount ?? double.NaN).ToList());
                return new ChartBar(m.Label, v.Mean, v.Min, v.Max, v.Mean.ToString("F1", Inv));
            }).ToList();
            sub = sub.Replace("band min–max", "whiskers min–max", StringComparison.Ordinal);
            list.Add(("spectra.svg", PaperCharts.Bars("ΔW: singular values above 1% of the largest (mean per layer)", sub, "count per layer", bars)));
            var bins = new[] { "≥ 0.1", "0.01–0.1", "0.001–0.01", "1e-4–0.001", "< 1e-4" };
            var groups = bins.Select((label, i) => new ChartBarGroup("σ/σmax " + label, kinds.Select(m =>
            {
                var fr = r.Final("pretrain", m.Name).Select(x => x.Spectra == null ? double.NaN : Fraction(x.Spectra, i)).ToList();
                var v = Spread.Of(fr);
                return new ChartBar(m.Label, v.Mean, v.Min, v.Max);
            }).ToList())).ToList();
            list.Add(("spectra-distribution.svg", PaperCharts.GroupedBars("ΔW: where the singular values lie (fraction per decade of σ/σmax)", sub, "fraction of singular values", kinds.Select(m => m.Label).ToList(), groups)));
            return list;
        }
        foreach (var setup in r.Setups)
        {
            var series = new List<ChartSeries>();
            foreach (var m in s.Methods)
            {
                var runs = r.Final(setup, m.Name);
                if (runs.Count == 0) continue;
                var n = runs.Min(x => x.Curve.Count);
                // Pretraining starts from a random model (≈ ln 256 nats): from the first evaluation on, the differences show.
                var first = setup == "pretrain" && n > 2 ? 1 : 0;
                var points = Enumerable.Range(first, n - first).Select(k =>
                {
                    var vals = runs.Select(x => x.Curve[k].ValLoss).ToList();
                    var sp = Spread.Of(vals);
                    return new ChartPoint(runs[0].Curve[k].Step, sp.Mean, sp.Min, sp.Max);
                }).ToList();
                var final = Spread.Of(runs.Select(x => x.FinalValLoss).ToList());
                series.Add(new ChartSeries(m.Label, "final " + final.Format("F3"), points));
            }
            list.Add((PlotName(setup), PaperCharts.Lines(SetupTitle(setup), sub, "step", "held-out loss (nats/byte)", series)));
        }
        return list;
    }

    private static double Fraction(RunSpectra sp, int bin)
    {
        var total = sp.Layers.Sum(l => l.Histogram.Sum());
        return total == 0 ? double.NaN : sp.Layers.Sum(l => l.Histogram[bin]) / (double)total;
    }

    /// <summary>report.md: the claim, the verdict with its numbers, the tables, the grid, the data and the plots.</summary>
    public static string Markdown(PaperResults r, IReadOnlyList<string> plots)
    {
        var s = r.Settings;
        var sb = new StringBuilder();
        sb.Append(Inv, $"# MoRA paper suite: {ExperimentName(s.Experiment)}\n\n");
        foreach (var c in r.Claims)
        {
            sb.Append(Inv, $"**Claim.** {c.Claim}\n\n**Verdict at this scale: {Verdicts.Text(c.Verdict)}.** {c.Evidence}\n\n");
            sb.Append(Inv, $"*Rule.* {c.Rule}\n\n");
        }
        foreach (var p in plots) sb.Append(Inv, $"![{p}]({p})\n\n");

        sb.Append("## Results (final seeds)\n\n");
        var metricNames = r.Runs.Where(x => x.Phase == "final").SelectMany(x => x.Metrics.Keys).Distinct().Where(k => k != "cloze_chance").OrderBy(k => k, StringComparer.Ordinal).ToList();
        foreach (var setup in r.Setups)
        {
            if (r.Setups.Count > 1) sb.Append(Inv, $"### {setup}\n\n");
            sb.Append("| method | lr | trainable | adapter params | final held-out loss |");
            foreach (var k in metricNames) sb.Append(Inv, $" {k} |");
            if (s.Experiment == PaperExperiment.Spectra) sb.Append(" significant σ per layer |");
            sb.Append(" seconds/run |\n|---|---:|---:|---:|---:|");
            foreach (var _ in metricNames) sb.Append("---:|");
            if (s.Experiment == PaperExperiment.Spectra) sb.Append("---:|");
            sb.Append("---:|\n");
            foreach (var m in s.Methods)
            {
                var runs = r.Final(setup, m.Name);
                if (runs.Count == 0) continue;
                sb.Append(Inv, $"| {m.Label} | {runs[0].Lr:G3} | {runs[0].TrainableParams:N0} | {runs[0].AdapterParams:N0} | {Spread.Of(runs.Select(x => x.FinalValLoss).ToList()).Format("F4")} |");
                foreach (var k in metricNames) sb.Append(Inv, $" {Spread.Of(runs.Select(x => x.Metrics.GetValueOrDefault(k, double.NaN)).ToList()).Format("F4")} |");
                if (s.Experiment == PaperExperiment.Spectra) sb.Append(Inv, $" {Spread.Of(runs.Select(x => x.Spectra?.MeanCount ?? double.NaN).ToList()).Format("F1")} |");
                sb.Append(Inv, $" {runs.Average(x => x.Seconds):F1} |\n");
            }
            sb.Append('\n');
            var diverged = r.Runs.Where(x => x.Setup == setup && x.DivergedAt != null).ToList();
            foreach (var d in diverged) sb.Append(Inv, $"- {d.Method} lr {d.Lr:G3} seed {d.Seed} ({d.Phase}) diverged at step {d.DivergedAt}.\n");
            if (diverged.Count > 0) sb.Append('\n');
        }

        sb.Append(Inv, $"## Learning-rate grid (seed {s.GridSeed}, the same for every method)\n\n");
        sb.Append("| setup | method |");
        foreach (var lr in s.GridLrs) sb.Append(Inv, $" {lr:G3} |");
        sb.Append(" chosen |\n|---|---|");
        foreach (var _ in s.GridLrs) sb.Append("---:|");
        sb.Append("---:|\n");
        foreach (var g in r.Grid)
        {
            sb.Append(Inv, $"| {g.Setup} | {g.Method} |");
            for (var i = 0; i < g.Lrs.Length; i++)
            {
                var text = double.IsFinite(g.FinalValLoss[i]) ? g.FinalValLoss[i].ToString("F4", Inv) : "diverged";
                sb.Append(Inv, $" {(g.Lrs[i] == g.Chosen ? $"**{text}**" : text)} |");
            }
            sb.Append(Inv, $" {g.Chosen:G3} |\n");
        }
        sb.Append("\nEach method's rate is the one with the lowest final held-out loss on the grid seed; the final seeds are different seeds.\n\n");

        sb.Append("## Setup\n\n");
        sb.Append(Inv, $"- Model: LLaMA-style (RoPE, RMSNorm, SwiGLU) on bytes, d={s.DModel}, {s.Layers} layers, {s.Heads} heads, context {s.Time}, {s.ModelConfig.ParameterCount():N0} parameters.\n");
        sb.Append(Inv, $"- Training: {s.Steps} steps × {s.Batch} rows × {s.Time} bytes for every method; AdamW (weight decay 0), gradient norm clipped to 1; {s.Warmup} warm-up steps then cosine to a tenth.\n");
        sb.Append(Inv, $"- Adapters on every linear layer of the blocks (q, k, v, o, gate, up, down); LoRA rank {s.Rank} (α = 16), MoRA with its square r̂ × r̂ matrix, r̂ = round(√((in + out)·r)) per layer as in the official code, so the adapter budgets match (adapter params above).\n");
        if (s.Experiment is PaperExperiment.Pretrain or PaperExperiment.Spectra)
            sb.Append(Inv, $"- Pretraining: a random base, frozen for the adapter methods; token embeddings, RMSNorm weights and the head train in every method. ReLoRA and ReMoRA merge into W and restart every {s.RestartEvery} steps (adapters re-initialised, their AdamW state reset, the rate re-warmed over {s.Warmup} steps); ReMoRA alternates MoRA types 1 and 2.\n");
        if (r.Base is { } b)
            sb.Append(Inv, $"- Base: every parameter pretrained for {b.Steps} steps on the general corpus at lr {b.Lr:G3} (AdamW, weight decay 0.1); its general validation loss is {b.GeneralValLoss:F4} nats/byte{(b.Seconds > 0 ? string.Create(Inv, $" (trained in {b.Seconds:F0} s{(b.Cached ? ", loaded from the cache" : "")})") : " (loaded from the cache)")}. Adapter methods train only their adapters.\n");
        if (s.Experiment == PaperExperiment.Continual)
            sb.Append(Inv, $"- Domain: {s.DomainEntities} fictional places with five facts each (region, founder, founding year, export, emblem), each fact written in four training phrasings; held-out loss is on two other phrasings of the same facts, never trained on; cloze picks the most likely of 8 candidate values in a held-out phrasing. Each seed invents its own places.\n");
        if (s.Experiment == PaperExperiment.Tasks)
            sb.Append(Inv, $"- Tasks: {string.Join("; ", PaperTasks.Names.Select(n => $"{n}: {PaperTasks.Create(n, s.Seed, 8, 2).Description}"))}. {s.TaskTrain} training and {s.TaskTest} held-out examples per seed; loss on the completion only; accuracy is exact match of the completion (teacher-forced arg-max, the same as greedy decoding).\n");
        sb.Append(Inv, $"- General corpus: {Describe(r.Corpus)}; 1 document in 20 held out for validation; SHA-256 {r.Corpus.Sha256[..16]}….\n");
        sb.Append(Inv, $"- Seeds: final runs on seeds {s.Seed}–{s.Seed + (ulong)s.Seeds - 1}, the grid on seed {s.GridSeed}. Preset `{s.Preset}`, device `{s.Device}`; this invocation took {r.Seconds:F0} s, and the {r.Runs.Count} runs took {r.Runs.Sum(x => x.Seconds):F0} s of training and evaluation in all (each run's own time, kept with it in the cache).\n");
        sb.Append("\nThe engine's LoRA and MoRA training matches PyTorch step for step on the parity fixtures (bench/parity), so these numbers describe the methods, not the engine. Small models and short runs: a verdict here is about this scale only.\n");
        return sb.ToString();
    }

    private static string Describe(CorpusInfo c) => c.Source switch
    {
        "dotnet-sdk-xml-docs" => string.Create(Inv, $"the English XML API documentation of the .NET SDK's reference pack ({c.Files} files under `{c.Path}`, {c.Documents:N0} documented members, {c.TrainBytes:N0} training and {c.ValidationBytes:N0} validation bytes)"),
        _ => string.Create(Inv, $"{c.Source} `{c.Path}` ({c.Files} files, {c.Documents:N0} paragraphs, {c.TrainBytes:N0} training and {c.ValidationBytes:N0} validation bytes)"),
    };
}
