using System.Globalization;
using System.Net;
using System.Text;

namespace MoraEngine.Examples.Uuid;

/// <summary>
/// A hand-written SVG line chart of character accuracy against step, one line per method: the mean over seeds,
/// with a band from the lowest to the highest seed when there are several.
/// </summary>
public static class UuidPlot
{
    private static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

    public static string Svg(UuidResults results)
    {
        const double width = 760, height = 460;
        const double left = 70, right = 230, top = 58, bottom = 62;
        var plotW = width - left - right;
        var plotH = height - top - bottom;
        var maxStep = Math.Max(1, results.Runs.SelectMany(r => r.Curve).Select(p => p.Step).DefaultIfEmpty(1).Max());
        var xStep = NiceStep(maxStep / 6.0);
        var xMax = Math.Ceiling(maxStep / xStep) * xStep;
        double X(double step) => left + step / xMax * plotW;
        double Y(double acc) => top + (1 - acc) * plotH;
        static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
        static string E(string s) => WebUtility.HtmlEncode(s);

        var s = results.Settings;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{F(width)}" height="{F(height)}" viewBox="0 0 {F(width)} {F(height)}" font-family="Helvetica, Arial, sans-serif" font-size="12">""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"""<rect width="{F(width)}" height="{F(height)}" fill="white"/>""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"""<text x="{F(left)}" y="24" font-size="16" font-weight="bold">UUID memorisation: character accuracy of the value</text>""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture,
            $"""<text x="{F(left)}" y="42" fill="#555">{s.Pairs} pairs, {s.Steps} steps × batch {s.Batch}, GPT d={s.DModel} L={s.Layers} H={s.Heads}, {(s.Seeds > 1 ? $"seeds {s.Seed}–{s.Seed + (ulong)s.Seeds - 1}: mean, band min–max" : $"seed {s.Seed}")}</text>""").Append('\n');

        // Grid and y axis (0 .. 100 %).
        for (var i = 0; i <= 10; i++)
        {
            var acc = i / 10.0;
            var y = Y(acc);
            sb.Append(CultureInfo.InvariantCulture, $"""<line x1="{F(left)}" y1="{F(y)}" x2="{F(left + plotW)}" y2="{F(y)}" stroke="{(i % 5 == 0 ? "#ccc" : "#eee")}"/>""").Append('\n');
            if (i % 2 == 0)
                sb.Append(CultureInfo.InvariantCulture, $"""<text x="{F(left - 8)}" y="{F(y + 4)}" text-anchor="end">{i * 10}%</text>""").Append('\n');
        }
        for (var v = 0.0; v <= xMax + 1e-9; v += xStep)
        {
            var x = X(v);
            sb.Append(CultureInfo.InvariantCulture, $"""<line x1="{F(x)}" y1="{F(top)}" x2="{F(x)}" y2="{F(top + plotH)}" stroke="#eee"/>""").Append('\n');
            sb.Append(CultureInfo.InvariantCulture, $"""<line x1="{F(x)}" y1="{F(top + plotH)}" x2="{F(x)}" y2="{F(top + plotH + 5)}" stroke="#333"/>""").Append('\n');
            sb.Append(CultureInfo.InvariantCulture, $"""<text x="{F(x)}" y="{F(top + plotH + 19)}" text-anchor="middle">{F(v)}</text>""").Append('\n');
        }
        sb.Append(CultureInfo.InvariantCulture, $"""<rect x="{F(left)}" y="{F(top)}" width="{F(plotW)}" height="{F(plotH)}" fill="none" stroke="#333"/>""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"""<text x="{F(left + plotW / 2)}" y="{F(height - 18)}" text-anchor="middle">fine-tuning step</text>""").Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"""<text transform="translate(18 {F(top + plotH / 2)}) rotate(-90)" text-anchor="middle">character accuracy</text>""").Append('\n');

        // Per method: the mean over seeds (a line with a dot per evaluation) and the seeds' range (a band).
        var groups = results.Settings.Methods.Select(m => results.Runs.Where(r => r.Method.Spec == m.Spec).ToList()).Where(g => g.Count > 0).ToList();
        for (var i = 0; i < groups.Count; i++)
        {
            var g = groups[i];
            var color = Colors[i % Colors.Length];
            var n = g.Min(r => r.Curve.Count);
            var steps = Enumerable.Range(0, n).Select(k => g[0].Curve[k].Step).ToArray();
            var mean = Enumerable.Range(0, n).Select(k => g.Average(r => r.Curve[k].CharAccuracy)).ToArray();
            if (g.Count > 1)
            {
                var lo = Enumerable.Range(0, n).Select(k => $"{F(X(steps[k]))},{F(Y(g.Min(r => r.Curve[k].CharAccuracy)))}");
                var hi = Enumerable.Range(0, n).Reverse().Select(k => $"{F(X(steps[k]))},{F(Y(g.Max(r => r.Curve[k].CharAccuracy)))}");
                sb.Append(CultureInfo.InvariantCulture, $"""<polygon fill="{color}" fill-opacity="0.15" stroke="none" points="{string.Join(" ", lo.Concat(hi))}"/>""").Append('\n');
            }
            var points = string.Join(" ", Enumerable.Range(0, n).Select(k => $"{F(X(steps[k]))},{F(Y(mean[k]))}"));
            sb.Append(CultureInfo.InvariantCulture, $"""<polyline fill="none" stroke="{color}" stroke-width="2.2" stroke-linejoin="round" points="{points}"/>""").Append('\n');
            for (var k = 0; k < n; k++)
                sb.Append(CultureInfo.InvariantCulture, $"""<circle cx="{F(X(steps[k]))}" cy="{F(Y(mean[k]))}" r="2.6" fill="{color}"/>""").Append('\n');
        }

        // Legend: label, trainable parameters and final accuracy (mean ± std over seeds).
        var lx = left + plotW + 18;
        var ly = top + 6;
        sb.Append(CultureInfo.InvariantCulture, $"""<text x="{F(lx)}" y="{F(ly)}" font-weight="bold">method (trainable, final)</text>""").Append('\n');
        var summary = results.Summary;
        for (var i = 0; i < summary.Count; i++)
        {
            var m = summary[i];
            var color = Colors[i % Colors.Length];
            var y = ly + 24 + i * 36;
            sb.Append(CultureInfo.InvariantCulture, $"""<line x1="{F(lx)}" y1="{F(y - 4)}" x2="{F(lx + 24)}" y2="{F(y - 4)}" stroke="{color}" stroke-width="3"/>""").Append('\n');
            sb.Append(CultureInfo.InvariantCulture, $"""<text x="{F(lx + 32)}" y="{F(y)}">{E(m.Method.Label)}</text>""").Append('\n');
            sb.Append(CultureInfo.InvariantCulture,
                $"""<text x="{F(lx + 32)}" y="{F(y + 15)}" fill="#555" font-size="11">{m.TrainableParams:N0} params, {E(m.CharAccuracy.Percent())}</text>""").Append('\n');
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>1, 2, 2.5 or 5 times a power of ten, at least <paramref name="raw"/>.</summary>
    private static double NiceStep(double raw)
    {
        if (raw <= 0) return 1;
        var mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        foreach (var m in new[] { 1, 2, 2.5, 5, 10 })
            if (m * mag >= raw) return Math.Max(1, m * mag);
        return 10 * mag;
    }
}
