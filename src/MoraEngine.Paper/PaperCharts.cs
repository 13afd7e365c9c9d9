using System.Globalization;
using System.Net;
using System.Text;

namespace MoraEngine.Examples.Paper;

/// <summary>One point of a line: the mean over seeds at a step, with the band (lowest and highest seed).</summary>
/// <param name="X">The position on the x axis (usually a training step).</param>
/// <param name="Mean">The mean over seeds, drawn as the line; a point whose <paramref name="X"/> or mean is NaN or infinite is skipped.</param>
/// <param name="Low">The lowest seed, the band's lower edge; NaN or infinite falls back to <paramref name="Mean"/>.</param>
/// <param name="High">The highest seed, the band's upper edge; NaN or infinite falls back to <paramref name="Mean"/>.</param>
public sealed record ChartPoint(double X, double Mean, double Low, double High);

/// <summary>One line of a chart; <paramref name="Note"/> is shown under the label in the legend (e.g. "final 1.234 ± 0.010").</summary>
/// <param name="Label">The legend label (truncated with "…" after 28 characters; the full text is the entry's tooltip).</param>
/// <param name="Note">An optional second legend line in grey, or null for none.</param>
/// <param name="Points">The line's points; they are drawn in order of X.</param>
public sealed record ChartSeries(string Label, string? Note, IReadOnlyList<ChartPoint> Points);

/// <summary>One bar: the mean with a whisker from <paramref name="Low"/> to <paramref name="High"/> (seeds' range); <paramref name="Note"/> is printed above the bar.</summary>
/// <param name="Label">The label under the bar (in a grouped chart the series name labels the bar instead; this one is its tooltip).</param>
/// <param name="Mean">The bar's height; NaN or infinite leaves the bar out (its label stays).</param>
/// <param name="Low">The whisker's lower end; the whisker is drawn only when both ends are finite and differ.</param>
/// <param name="High">The whisker's upper end.</param>
/// <param name="Note">Text printed above the bar (and its whisker), or null for none.</param>
public sealed record ChartBar(string Label, double Mean, double Low, double High, string? Note = null);

/// <summary>A group of bars that share a category (for grouped bar charts): <paramref name="Values"/> has one bar per series name, same order as the series names.</summary>
/// <param name="Category">The label under the cluster.</param>
/// <param name="Values">One bar per series name, in the series' order; missing entries leave a gap, extra ones are ignored.</param>
public sealed record ChartBarGroup(string Category, IReadOnlyList<ChartBar> Values);

/// <summary>
/// Hand-written SVG charts for the paper suite, in the look of the UUID demo's plot: white background, a 16px bold
/// title over a grey subtitle, a light grid, axis ticks at "nice" steps (1, 2, 2.5 or 5 times a power of ten) and a
/// legend on the right. Text is HTML-encoded, numbers are written with the invariant culture, NaN and infinite values
/// are left out, and an empty input gives a valid SVG that says "no data". Every output is well-formed XML.
/// </summary>
public static class PaperCharts
{
    private static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Legend labels (and bar labels) longer than this are cut and end with "…".</summary>
    private const int LabelChars = 28;
    /// <summary>Legend notes (11px text) longer than this are cut and end with "…".</summary>
    private const int NoteChars = 32;
    /// <summary>Approximate width of one character of 12px Helvetica, for layout decisions.</summary>
    private const double CharWidth = 6.6;
    private const double DefaultWidth = 760, DefaultHeight = 460;
    private const double Left = 70, Top = 58, LegendWidth = 230, MinPlotHeight = 340;

    /// <summary>
    /// Line chart, one polyline per series (the mean, with a dot at each point) over a translucent band from Low to High,
    /// drawn only when some point of that series has High != Low. Points with a non-finite X or mean are skipped; the
    /// others are drawn in order of X. The x axis runs over nice ticks from the smallest to the largest X; the y range is
    /// fitted to the data (smallest Low to largest High, padded 5%, widened to nice ticks; not forced to include 0).
    /// The legend on the right shows each label (cut at 28 characters) with its note underneath.
    /// </summary>
    /// <param name="title">The chart's title (16px bold).</param>
    /// <param name="subtitle">A grey line under the title; empty for none.</param>
    /// <param name="xLabel">The x axis' caption.</param>
    /// <param name="yLabel">The y axis' caption (rotated).</param>
    /// <param name="series">The lines; none, or none with a finite point, gives a "no data" chart.</param>
    /// <returns>The SVG document as a string.</returns>
    public static string Lines(string title, string subtitle, string xLabel, string yLabel, IReadOnlyList<ChartSeries> series)
    {
        var lines = (series ?? []).Select(s => (Label: s?.Label ?? "", s?.Note, Points: Valid(s?.Points))).ToList();
        var all = lines.SelectMany(l => l.Points).ToList();
        if (all.Count == 0) return NoData(title, subtitle);

        var hasNotes = lines.Any(l => !string.IsNullOrEmpty(l.Note));
        var rowH = hasNotes ? 36.0 : 22.0;
        var plotW = DefaultWidth - Left - LegendWidth;
        var plotH = Math.Max(MinPlotHeight, 16 + lines.Count * rowH);
        const double bottom = 62;
        var width = DefaultWidth;
        var height = Top + plotH + bottom;

        var xAxis = NiceAxis(all.Min(p => p.X), all.Max(p => p.X), 6);
        var lo = all.Min(p => p.Low);
        var hi = all.Max(p => p.High);
        var pad = (hi - lo) * 0.05;
        var yAxis = NiceAxis(lo - pad, hi + pad, 5);
        double X(double v) => Left + xAxis.Fraction(v) * plotW;
        double Y(double v) => Top + (1 - yAxis.Fraction(v)) * plotH;

        var sb = new StringBuilder();
        Header(sb, Left, width, height, title, subtitle);
        YGrid(sb, Left, yAxis, Y, plotW);
        foreach (var v in xAxis.Ticks())
        {
            var x = X(v);
            sb.Append(Inv, $"""<line x1="{F(x)}" y1="{F(Top)}" x2="{F(x)}" y2="{F(Top + plotH)}" stroke="#eee"/>""").Append('\n');
            sb.Append(Inv, $"""<line x1="{F(x)}" y1="{F(Top + plotH)}" x2="{F(x)}" y2="{F(Top + plotH + 5)}" stroke="#333"/>""").Append('\n');
            sb.Append(Inv, $"""<text class="x-tick" x="{F(x)}" y="{F(Top + plotH + 19)}" text-anchor="middle">{xAxis.Label(v)}</text>""").Append('\n');
        }
        Frame(sb, Left, plotW, plotH);
        sb.Append(Inv, $"""<text x="{F(Left + plotW / 2)}" y="{F(height - 18)}" text-anchor="middle">{E(xLabel)}</text>""").Append('\n');
        YCaption(sb, Left, yLabel, plotH);

        // Bands first, so that no band covers another series' line.
        for (var i = 0; i < lines.Count; i++)
        {
            var pts = lines[i].Points;
            if (pts.Count == 0 || pts.All(p => p.High == p.Low)) continue;
            var lower = pts.Select(p => $"{F(X(p.X))},{F(Y(p.Low))}");
            var upper = Enumerable.Range(0, pts.Count).Reverse().Select(k => $"{F(X(pts[k].X))},{F(Y(pts[k].High))}");
            sb.Append(Inv, $"""<polygon class="band" fill="{Color(i)}" fill-opacity="0.15" stroke="none" points="{string.Join(" ", lower.Concat(upper))}"/>""").Append('\n');
        }
        for (var i = 0; i < lines.Count; i++)
        {
            var pts = lines[i].Points;
            if (pts.Count == 0) continue;
            var color = Color(i);
            var points = string.Join(" ", pts.Select(p => $"{F(X(p.X))},{F(Y(p.Mean))}"));
            sb.Append(Inv, $"""<polyline fill="none" stroke="{color}" stroke-width="2.2" stroke-linejoin="round" points="{points}"/>""").Append('\n');
            var r = pts.Count > 60 ? 1.6 : 2.6;
            foreach (var p in pts)
                sb.Append(Inv, $"""<circle cx="{F(X(p.X))}" cy="{F(Y(p.Mean))}" r="{F(r)}" fill="{color}"/>""").Append('\n');
        }

        var lx = Left + plotW + 18;
        for (var i = 0; i < lines.Count; i++)
        {
            var y = Top + 18 + i * rowH;
            var color = Color(i);
            sb.Append(Inv, $"""<g><title>{E(lines[i].Label)}</title>""").Append('\n');
            sb.Append(Inv, $"""<line x1="{F(lx)}" y1="{F(y - 4)}" x2="{F(lx + 24)}" y2="{F(y - 4)}" stroke="{color}" stroke-width="3"/>""").Append('\n');
            LegendText(sb, lx + 32, y, lines[i].Label, lines[i].Note);
            sb.Append("</g>\n");
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>
    /// Vertical bars with whiskers: one bar per entry (coloured from the palette in turn) from 0 to its mean, a whisker
    /// with caps from Low to High when both are finite and differ, the note above the bar and its whisker, and the label
    /// under it (slanted when the labels do not fit side by side). The y axis runs from 0 (or lower, for negative values)
    /// to a nice value above the largest High, leaving room for the notes. A bar with a non-finite mean is left out.
    /// </summary>
    /// <param name="title">The chart's title (16px bold).</param>
    /// <param name="subtitle">A grey line under the title; empty for none.</param>
    /// <param name="yLabel">The y axis' caption (rotated).</param>
    /// <param name="bars">The bars, left to right; none, or none with a finite mean, gives a "no data" chart.</param>
    /// <returns>The SVG document as a string.</returns>
    public static string Bars(string title, string subtitle, string yLabel, IReadOnlyList<ChartBar> bars)
    {
        var list = (bars ?? []).Select(b => b ?? new ChartBar("", double.NaN, double.NaN, double.NaN)).ToList();
        if (!list.Any(b => double.IsFinite(b.Mean))) return NoData(title, subtitle);

        const double right = 30;
        var width = Math.Max(DefaultWidth, Left + right + list.Count * 50);
        var plotW = width - Left - right;
        var slot = plotW / list.Count;
        var barW = Math.Min(80, slot * 0.6);
        var groups = list.Select((b, i) => new Slot(b.Label, [(b, Color(i))])).ToList();
        return BarChart(title, subtitle, yLabel, groups, width, plotW, slot, barW, legend: null);
    }

    /// <summary>
    /// Grouped bars: for each category a cluster with one bar per series (the series' colour, the same in every
    /// cluster), each with its whisker from Low to High and its note above, the category under the cluster and a legend
    /// of the series on the right. The y axis is as in <see cref="Bars"/>. A bar with a non-finite mean, or missing from
    /// a group's values, leaves a gap in its cluster.
    /// </summary>
    /// <param name="title">The chart's title (16px bold).</param>
    /// <param name="subtitle">A grey line under the title; empty for none.</param>
    /// <param name="yLabel">The y axis' caption (rotated).</param>
    /// <param name="seriesNames">The series, in the order of each group's values; they name the legend's entries.</param>
    /// <param name="groups">The clusters, left to right; none, or no finite mean anywhere, gives a "no data" chart.</param>
    /// <returns>The SVG document as a string.</returns>
    public static string GroupedBars(string title, string subtitle, string yLabel, IReadOnlyList<string> seriesNames, IReadOnlyList<ChartBarGroup> groups)
    {
        var names = (seriesNames ?? []).Select(n => n ?? "").ToList();
        var list = (groups ?? []).Where(g => g is not null).ToList();
        var slots = list.Select(g => new Slot(g.Category ?? "", Enumerable.Range(0, names.Count)
            .Select(k => ((g.Values is not null && k < g.Values.Count ? g.Values[k] : null) ?? new ChartBar("", double.NaN, double.NaN, double.NaN), Color(k)))
            .ToList())).ToList();
        if (names.Count == 0 || !slots.Any(s => s.Bars.Any(b => double.IsFinite(b.Bar.Mean)))) return NoData(title, subtitle);

        var plotW = Math.Max(DefaultWidth - Left - LegendWidth, slots.Count * (names.Count * 18 + 24));
        var width = Left + plotW + LegendWidth;
        var slot = plotW / slots.Count;
        var barW = Math.Min(40, slot * 0.8 / names.Count);
        return BarChart(title, subtitle, yLabel, slots, width, plotW, slot, barW, legend: names);
    }

    /// <summary>One position on a bar chart's x axis: its label and its bars (one for a plain bar chart).</summary>
    private sealed record Slot(string Label, IReadOnlyList<(ChartBar Bar, string Color)> Bars);

    /// <summary>Draws bar charts of both kinds: each slot's bars side by side, centred in the slot.</summary>
    private static string BarChart(string title, string subtitle, string yLabel, List<Slot> slots, double width, double plotW,
        double slot, double barW, List<string>? legend)
    {
        // Labels under the slots: level when they fit, otherwise slanted (and the chart grows downwards).
        var labels = slots.Select(s => Truncate(Clean(s.Label), LabelChars)).ToList();
        var longest = labels.Max(l => l.Length);
        var slant = longest * CharWidth > slot - 4;
        var bottom = slant ? Math.Max(48, 28 + longest * CharWidth * 0.58) : 48;
        // A slanted label reaches left of its slot by its length times cos 35°: the first one must not leave the chart.
        var left = slant ? Math.Max(Left, longest * 7.0 * 0.82 - slot / 2 + 4) : Left;
        width += left - Left;

        // Notes above bars: level (10px) when they fit over the bar's slot, otherwise upright; headroom for them.
        var bars = slots.SelectMany(s => s.Bars).Select(b => b.Bar).ToList();
        var notes = bars.Where(b => double.IsFinite(b.Mean) && !string.IsNullOrEmpty(b.Note)).Select(b => Truncate(Clean(b.Note!), LabelChars)).ToList();
        var noteSpace = slots.Max(s => s.Bars.Count) == 1 ? slot - 4 : barW + 6;
        var longestNote = notes.Count == 0 ? 0 : notes.Max(n => n.Length);
        var uprightNotes = longestNote * 5.6 > noteSpace;

        var legendH = legend is null ? 0 : 16 + legend.Count * 22;
        var plotH = Math.Max(MinPlotHeight, legendH);
        var height = Top + plotH + bottom;
        var headroom = notes.Count == 0 ? 8 : uprightNotes ? Math.Min(plotH * 0.5, longestNote * 5.6 + 10) : 18;

        var finite = bars.Where(b => double.IsFinite(b.Mean)).ToList();
        var top = finite.Max(b => Math.Max(b.Mean, double.IsFinite(b.High) ? b.High : b.Mean));
        var low = finite.Min(b => Math.Min(b.Mean, double.IsFinite(b.Low) ? b.Low : b.Mean));
        var lo = Math.Min(0, low);
        var hi = Math.Max(0, top);
        if (hi == lo) hi = lo + 1;
        var h = headroom / plotH;
        var yAxis = NiceAxis(lo, (hi - lo * h) / (1 - h), 5);
        double Y(double v) => Top + (1 - yAxis.Fraction(v)) * plotH;

        var sb = new StringBuilder();
        Header(sb, left, width, height, title, subtitle);
        YGrid(sb, left, yAxis, Y, plotW);
        Frame(sb, left, plotW, plotH);
        YCaption(sb, left, yLabel, plotH);
        var zero = Y(Math.Clamp(0, yAxis.Min, yAxis.Max));

        for (var i = 0; i < slots.Count; i++)
        {
            var centre = left + (i + 0.5) * slot;
            var n = slots[i].Bars.Count;
            for (var k = 0; k < n; k++)
            {
                var (bar, color) = slots[i].Bars[k];
                if (!double.IsFinite(bar.Mean)) continue;
                var x = centre + (k - n / 2.0) * barW;
                var gap = n > 1 ? Math.Min(2, barW * 0.1) : 0;
                var yMean = Y(bar.Mean);
                var tip = $"{(legend is not null && k < legend.Count ? legend[k] + ", " : "")}{(legend is null ? bar.Label : slots[i].Label)}: {F(bar.Mean)}"
                    + (double.IsFinite(bar.Low) && double.IsFinite(bar.High) && bar.Low != bar.High ? $" ({F(bar.Low)} to {F(bar.High)})" : "");
                sb.Append(Inv, $"""<rect class="bar" x="{F(x + gap / 2)}" y="{F(Math.Min(yMean, zero))}" width="{F(barW - gap)}" height="{F(Math.Abs(zero - yMean))}" fill="{color}" fill-opacity="0.85"><title>{E(tip)}</title></rect>""").Append('\n');
                var whiskerTop = yMean;
                if (double.IsFinite(bar.Low) && double.IsFinite(bar.High) && bar.Low != bar.High)
                {
                    var cx = x + barW / 2;
                    var cap = Math.Min(8, barW * 0.3);
                    var (y1, y2) = (Y(Math.Min(bar.Low, bar.High)), Y(Math.Max(bar.Low, bar.High)));
                    sb.Append(Inv, $"""<line class="whisker" x1="{F(cx)}" y1="{F(y1)}" x2="{F(cx)}" y2="{F(y2)}" stroke="#333" stroke-width="1.2"/>""").Append('\n');
                    sb.Append(Inv, $"""<line class="whisker" x1="{F(cx - cap)}" y1="{F(y1)}" x2="{F(cx + cap)}" y2="{F(y1)}" stroke="#333" stroke-width="1.2"/>""").Append('\n');
                    sb.Append(Inv, $"""<line class="whisker" x1="{F(cx - cap)}" y1="{F(y2)}" x2="{F(cx + cap)}" y2="{F(y2)}" stroke="#333" stroke-width="1.2"/>""").Append('\n');
                    whiskerTop = Math.Min(whiskerTop, y2);
                }
                if (!string.IsNullOrEmpty(bar.Note))
                {
                    var note = E(Truncate(Clean(bar.Note), LabelChars));
                    var ny = Math.Min(whiskerTop, zero) - 5;
                    if (uprightNotes)
                        sb.Append(Inv, $"""<text class="note" transform="translate({F(x + barW / 2 + 3.5)} {F(ny)}) rotate(-90)" font-size="10" fill="#333">{note}</text>""").Append('\n');
                    else
                        sb.Append(Inv, $"""<text class="note" x="{F(x + barW / 2)}" y="{F(ny)}" text-anchor="middle" font-size="10" fill="#333">{note}</text>""").Append('\n');
                }
            }
            var ly = Top + plotH + 17;
            if (slant)
                sb.Append(Inv, $"""<text class="x-label" transform="translate({F(centre + 4)} {F(ly - 4)}) rotate(-35)" text-anchor="end">{E(labels[i])}</text>""").Append('\n');
            else
                sb.Append(Inv, $"""<text class="x-label" x="{F(centre)}" y="{F(ly)}" text-anchor="middle">{E(labels[i])}</text>""").Append('\n');
        }
        if (yAxis.Min < 0 && yAxis.Max > 0)
            sb.Append(Inv, $"""<line x1="{F(left)}" y1="{F(zero)}" x2="{F(left + plotW)}" y2="{F(zero)}" stroke="#333"/>""").Append('\n');

        if (legend is not null)
        {
            var lx = left + plotW + 18;
            for (var k = 0; k < legend.Count; k++)
            {
                var y = Top + 18 + k * 22;
                sb.Append(Inv, $"""<g><title>{E(legend[k])}</title>""").Append('\n');
                sb.Append(Inv, $"""<rect x="{F(lx + 6)}" y="{F(y - 10)}" width="12" height="12" fill="{Color(k)}" fill-opacity="0.85"/>""").Append('\n');
                LegendText(sb, lx + 32, y, legend[k], null);
                sb.Append("</g>\n");
            }
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>A chart without data: the title, the subtitle, an empty frame and "no data" in its middle.</summary>
    private static string NoData(string title, string subtitle)
    {
        var plotW = DefaultWidth - Left - 30;
        var plotH = DefaultHeight - Top - 48;
        var sb = new StringBuilder();
        Header(sb, Left, DefaultWidth, DefaultHeight, title, subtitle);
        sb.Append(Inv, $"""<rect x="{F(Left)}" y="{F(Top)}" width="{F(plotW)}" height="{F(plotH)}" fill="none" stroke="#ccc"/>""").Append('\n');
        sb.Append(Inv, $"""<text x="{F(Left + plotW / 2)}" y="{F(Top + plotH / 2)}" text-anchor="middle" font-size="14" fill="#888">no data</text>""").Append('\n');
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>The opening tag, the white background, the title and (when not empty) the subtitle.</summary>
    private static void Header(StringBuilder sb, double left, double width, double height, string title, string subtitle)
    {
        sb.Append(Inv, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{F(width)}" height="{F(height)}" viewBox="0 0 {F(width)} {F(height)}" font-family="Helvetica, Arial, sans-serif" font-size="12">""").Append('\n');
        sb.Append(Inv, $"""<rect width="{F(width)}" height="{F(height)}" fill="white"/>""").Append('\n');
        sb.Append(Inv, $"""<text x="{F(left)}" y="24" font-size="16" font-weight="bold">{E(title)}</text>""").Append('\n');
        if (!string.IsNullOrEmpty(subtitle))
            sb.Append(Inv, $"""<text x="{F(left)}" y="42" fill="#555">{E(subtitle)}</text>""").Append('\n');
    }

    /// <summary>Horizontal grid lines at the y axis' ticks, with their labels on the left.</summary>
    private static void YGrid(StringBuilder sb, double left, Axis axis, Func<double, double> y, double plotW)
    {
        foreach (var v in axis.Ticks())
        {
            var yy = y(v);
            sb.Append(Inv, $"""<line x1="{F(left)}" y1="{F(yy)}" x2="{F(left + plotW)}" y2="{F(yy)}" stroke="#eee"/>""").Append('\n');
            sb.Append(Inv, $"""<line x1="{F(left - 5)}" y1="{F(yy)}" x2="{F(left)}" y2="{F(yy)}" stroke="#333"/>""").Append('\n');
            sb.Append(Inv, $"""<text class="y-tick" x="{F(left - 8)}" y="{F(yy + 4)}" text-anchor="end">{axis.Label(v)}</text>""").Append('\n');
        }
    }

    private static void Frame(StringBuilder sb, double left, double plotW, double plotH) =>
        sb.Append(Inv, $"""<rect x="{F(left)}" y="{F(Top)}" width="{F(plotW)}" height="{F(plotH)}" fill="none" stroke="#333"/>""").Append('\n');

    private static void YCaption(StringBuilder sb, double left, string yLabel, double plotH) =>
        sb.Append(Inv, $"""<text transform="translate({F(left - 52)} {F(Top + plotH / 2)}) rotate(-90)" text-anchor="middle">{E(yLabel)}</text>""").Append('\n');

    /// <summary>A legend entry's text: the label (cut at 28 characters) and, under it in grey, the note (cut at 32).</summary>
    private static void LegendText(StringBuilder sb, double x, double y, string label, string? note)
    {
        sb.Append(Inv, $"""<text x="{F(x)}" y="{F(y)}">{E(Truncate(Clean(label), LabelChars))}</text>""").Append('\n');
        if (!string.IsNullOrEmpty(note))
            sb.Append(Inv, $"""<text x="{F(x)}" y="{F(y + 15)}" fill="#555" font-size="11">{E(Truncate(Clean(note), NoteChars))}</text>""").Append('\n');
    }

    /// <summary>A series' drawable points: finite X and mean, in order of X; a non-finite Low or High becomes the mean.</summary>
    private static List<ChartPoint> Valid(IReadOnlyList<ChartPoint>? points) =>
        (points ?? []).Where(p => p is not null && double.IsFinite(p.X) && double.IsFinite(p.Mean))
            .Select(p =>
            {
                var lo = double.IsFinite(p.Low) ? p.Low : p.Mean;
                var hi = double.IsFinite(p.High) ? p.High : p.Mean;
                return p with { Low = Math.Min(lo, hi), High = Math.Max(lo, hi) };
            })
            .OrderBy(p => p.X).ToList();

    private static string Color(int i) => Colors[i % Colors.Length];

    /// <summary>A coordinate or value with at most 2 decimals; a non-finite value (which layout never should produce) is written as 0.</summary>
    private static string F(double v)
    {
        if (!double.IsFinite(v)) return "0";
        var r = Math.Round(v, 2);
        return r == 0 ? "0" : r.ToString("0.##", Inv);
    }

    /// <summary>HTML-encodes text after <see cref="Clean"/>, so that it is safe in XML content and attributes.</summary>
    private static string E(string? s) => WebUtility.HtmlEncode(Clean(s));

    /// <summary>Replaces what XML 1.0 cannot hold (control characters, lone surrogates, U+FFFE/U+FFFF) by a space or U+FFFD.</summary>
    private static string Clean(string? s)
    {
        if (string.IsNullOrEmpty(s)) return "";
        var sb = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { sb.Append(c).Append(s[++i]); continue; }
            if (char.IsSurrogate(c) || c == '\uFFFE' || c == '\uFFFF') sb.Append('\uFFFD');
            else if (char.IsControl(c)) sb.Append(' ');
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>The text itself when at most <paramref name="max"/> characters, otherwise its start and "…" (never splitting a surrogate pair).</summary>
    private static string Truncate(string s, int max)
    {
        if (s.Length <= max) return s;
        var cut = max - 1;
        if (char.IsHighSurrogate(s[cut - 1])) cut--;
        return s[..cut].TrimEnd() + "…";
    }

    /// <summary>1, 2, 2.5 or 5 times a power of ten, at least <paramref name="raw"/> (1 for a raw step that is not positive and finite).</summary>
    private static double NiceStep(double raw)
    {
        if (!(raw > 0) || !double.IsFinite(raw)) return 1;
        var mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        foreach (var m in new[] { 1, 2, 2.5, 5, 10 })
            if (m * mag >= raw * (1 - 1e-12)) return m * mag;
        return 10 * mag;
    }

    /// <summary>
    /// An axis from <paramref name="lo"/> to <paramref name="hi"/> widened to multiples of a nice step (about
    /// <paramref name="ticks"/> intervals). A range without width is widened by 5% of the value (or by 1 around 0).
    /// </summary>
    private static Axis NiceAxis(double lo, double hi, int ticks)
    {
        if (!(hi > lo))
        {
            var pad = lo == 0 ? 1 : Math.Abs(lo) * 0.05;
            (lo, hi) = (lo - pad, hi + pad);
        }
        var step = NiceStep((hi - lo) / ticks);
        var min = Math.Floor(lo / step) * step;
        var max = Math.Ceiling(hi / step) * step;
        if (!double.IsFinite(min) || !double.IsFinite(max) || !(max > min)) (min, max) = (lo, hi);
        return new Axis(min, max, step);
    }

    /// <summary>An axis' range and tick step.</summary>
    private readonly record struct Axis(double Min, double Max, double Step)
    {
        /// <summary>Where <paramref name="v"/> lies between <see cref="Min"/> (0) and <see cref="Max"/> (1).</summary>
        public double Fraction(double v) => (v - Min) / (Max - Min);

        /// <summary>The tick values from <see cref="Min"/> to <see cref="Max"/> (at most 101; a value within rounding of 0 is 0).</summary>
        public IEnumerable<double> Ticks()
        {
            var count = Math.Round((Max - Min) / Step);
            var n = double.IsFinite(count) ? (int)Math.Clamp(count, 0, 100) : 0;
            for (var k = 0; k <= n; k++)
            {
                var v = Min + k * Step;
                yield return Math.Abs(v) < Step * 1e-9 ? 0 : v;
            }
        }

        /// <summary>
        /// A tick's label with as many decimals as the step needs (so that 0.25 steps read 0.25, 0.5, 0.75), plain up
        /// to a million and in exponent form above.
        /// </summary>
        public string Label(double v)
        {
            if (!double.IsFinite(v)) return "0";
            if (v == 0) return "0";
            if (Math.Abs(v) >= 1e6) return v.ToString("0.###E+0", Inv);
            var e = (int)Math.Floor(Math.Log10(Step) + 1e-9);
            var mantissa = Step / Math.Pow(10, e);
            var decimals = Math.Clamp(-e + (Math.Abs(mantissa - 2.5) < 1e-6 ? 1 : 0), 0, 10);
            return v.ToString("F" + decimals.ToString(Inv), Inv);
        }
    }
}
