using System.Globalization;
using System.Xml.Linq;
using MoraEngine.Examples.Paper;
using Xunit;

namespace MoraEngine.Tests.Paper;

public class PaperChartsTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    /// <summary>Parses the SVG (throws when it is not well-formed XML) and checks it never writes NaN or infinity.</summary>
    private static XDocument Parse(string svg)
    {
        Assert.DoesNotContain("NaN", svg);
        Assert.DoesNotContain("Infinity", svg);
        Assert.DoesNotContain("∞", svg);
        var doc = XDocument.Parse(svg);
        Assert.Equal(Svg + "svg", doc.Root!.Name);
        return doc;
    }

    private static int Count(XDocument doc, string element, string? cls = null) =>
        doc.Descendants(Svg + element).Count(e => cls is null || (string?)e.Attribute("class") == cls);

    private static bool SaysNoData(XDocument doc) => doc.Descendants(Svg + "text").Any(t => t.Value == "no data");

    private static double[] YTicks(XDocument doc) =>
        doc.Descendants(Svg + "text").Where(t => (string?)t.Attribute("class") == "y-tick")
            .Select(t => double.Parse(t.Value, NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray();

    private static ChartSeries Line(string label, int n, double offset, double spread, string? note = null) =>
        new(label, note, Enumerable.Range(0, n).Select(k =>
        {
            var mean = offset + 2.0 / (1 + k);
            return new ChartPoint(k * 100, mean, mean - spread, mean + spread);
        }).ToList());

    [Fact]
    public void Lines_Normal_IsWellFormed_WithOnePolylinePerSeries_AndBandsWhenSeedsDiffer()
    {
        var series = new[] { Line("fft", 12, 1.0, 0.05, "final 1.234 ± 0.010"), Line("lora r=8", 12, 1.2, 0.02), Line("mora r=256", 12, 1.1, 0.03) };
        var doc = Parse(PaperCharts.Lines("pretraining", "3 seeds: mean, band min–max", "step", "loss", series));
        Assert.Equal(3, Count(doc, "polyline"));
        Assert.Equal(3, Count(doc, "polygon"));
        Assert.Equal(36, Count(doc, "circle"));
        Assert.False(SaysNoData(doc));
        Assert.Contains(doc.Descendants(Svg + "text"), t => t.Value == "final 1.234 ± 0.010");
        // The y range is fitted to the data (not forced to 0) and covers every band.
        var ticks = YTicks(doc);
        Assert.True(ticks.Min() <= 1.0 + 2.0 / 12 - 0.05 && ticks.Min() > 0);
        Assert.True(ticks.Max() >= 3.2 + 0.02);
    }

    [Fact]
    public void Lines_Band_AppearsOnlyForSeriesWhoseSeedsDiffer()
    {
        var oneSeed = Line("one seed", 5, 1, 0);
        var threeSeeds = Line("three seeds", 5, 1.5, 0.1);
        Assert.Equal(0, Count(Parse(PaperCharts.Lines("t", "s", "x", "y", [oneSeed])), "polygon"));
        Assert.Equal(1, Count(Parse(PaperCharts.Lines("t", "s", "x", "y", [threeSeeds])), "polygon"));
        var both = Parse(PaperCharts.Lines("t", "s", "x", "y", [oneSeed, threeSeeds]));
        Assert.Equal(1, Count(both, "polygon", "band"));
        Assert.Equal(2, Count(both, "polyline"));
    }

    [Fact]
    public void Lines_Empty_SaysNoData()
    {
        Assert.True(SaysNoData(Parse(PaperCharts.Lines("t", "s", "x", "y", []))));
        Assert.True(SaysNoData(Parse(PaperCharts.Lines("t", "s", "x", "y", [new ChartSeries("empty", null, [])]))));
        Assert.True(SaysNoData(Parse(PaperCharts.Lines("t", "", "x", "y",
            [new ChartSeries("all NaN", null, [new ChartPoint(double.NaN, 1, 1, 1), new ChartPoint(1, double.PositiveInfinity, 0, 2)])]))));
    }

    [Fact]
    public void Lines_SinglePoint_IsWellFormed()
    {
        var doc = Parse(PaperCharts.Lines("t", "s", "x", "y", [new ChartSeries("one", null, [new ChartPoint(50, 0.7, 0.6, 0.8)])]));
        Assert.Equal(1, Count(doc, "polyline"));
        Assert.Equal(1, Count(doc, "circle"));
        Assert.Equal(1, Count(doc, "polygon"));
        Assert.True(YTicks(doc).Distinct().Count() >= 2);
    }

    [Fact]
    public void Lines_AllEqual_HasANonZeroYRange()
    {
        foreach (var v in new[] { 0.0, 2.5, -3.0 })
        {
            var pts = Enumerable.Range(0, 4).Select(k => new ChartPoint(k, v, v, v)).ToList();
            var doc = Parse(PaperCharts.Lines("t", "s", "x", "y", [new ChartSeries("flat", null, pts), new ChartSeries("flat too", null, pts)]));
            var ticks = YTicks(doc);
            Assert.True(ticks.Max() > ticks.Min());
            Assert.True(ticks.Min() <= v && ticks.Max() >= v);
            Assert.Equal(0, Count(doc, "polygon"));
            Assert.Equal(2, Count(doc, "polyline"));
        }
    }

    [Fact]
    public void Lines_NaNAndInfinitePoints_AreSkipped()
    {
        var pts = new List<ChartPoint>
        {
            new(0, 3, 2.9, 3.1),
            new(100, double.NaN, 1, 2),
            new(double.PositiveInfinity, 2, 2, 2),
            new(200, 2, double.NaN, double.NegativeInfinity),
            new(300, 1.5, 1.4, 1.6),
        };
        var doc = Parse(PaperCharts.Lines("t", "s", "x", "y", [new ChartSeries("gappy", null, pts)]));
        Assert.Equal(3, Count(doc, "circle"));
        var polyline = doc.Descendants(Svg + "polyline").Single();
        Assert.Equal(3, ((string)polyline.Attribute("points")!).Split(' ').Length);
    }

    [Fact]
    public void Lines_HugeValues_NeverWriteNaN()
    {
        var pts = new List<ChartPoint> { new(0, -1e308, -1.7e308, 1e308), new(1, 1.7e308, 1e308, 1.7e308) };
        Parse(PaperCharts.Lines("t", "s", "x", "y", [new ChartSeries("huge", null, pts)]));
        Parse(PaperCharts.Bars("t", "s", "y", [new ChartBar("huge", 1.7e308, -1.7e308, 1.7e308)]));
    }

    [Fact]
    public void Lines_XAxis_RunsOverNiceTicksFromMinToMaxX()
    {
        var pts = new[] { 1230.0, 1500, 1870 }.Select(x => new ChartPoint(x, 1, 1, 1)).ToList();
        var doc = Parse(PaperCharts.Lines("t", "s", "x", "y", [new ChartSeries("a", null, pts)]));
        var ticks = doc.Descendants(Svg + "text").Where(t => (string?)t.Attribute("class") == "x-tick")
            .Select(t => double.Parse(t.Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.True(ticks.Min() <= 1230 && ticks.Min() >= 1000);
        Assert.True(ticks.Max() >= 1870 && ticks.Max() <= 2000);
        Assert.Single(ticks.Zip(ticks.Skip(1), (a, b) => Math.Round(b - a, 6)).Distinct());
    }

    [Fact]
    public void Labels_AreHtmlEncoded_AndLongOnesTruncatedInTheLegend()
    {
        const string nasty = "a<b & c>\"d\"";
        var longLabel = new string('x', 60);
        var svg = PaperCharts.Lines("Title <&>", "sub & title", "x<", "y&", [Line(nasty, 3, 1, 0.1, "note <1> & 2"), Line(longLabel, 3, 1, 0)]);
        var doc = Parse(svg);
        Assert.DoesNotContain("a<b", svg);
        Assert.Contains("a&lt;b &amp; c&gt;", svg);
        var texts = doc.Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.Contains(nasty, texts);
        Assert.Contains("Title <&>", texts);
        Assert.Contains("note <1> & 2", texts);
        var cut = Assert.Single(texts, t => t.StartsWith("xxxx", StringComparison.Ordinal));
        Assert.True(cut.Length <= 28);
        Assert.EndsWith("…", cut);

        var bars = PaperCharts.Bars("t", "s", "y<&", [new ChartBar(nasty, 1, 0.9, 1.1, "n<&")]);
        Assert.Contains(nasty, Parse(bars).Descendants(Svg + "text").Select(t => t.Value));
        var grouped = PaperCharts.GroupedBars("t", "s", "y", [nasty, "b"], [new ChartBarGroup("cat <&>", [new ChartBar("a", 1, 1, 1), new ChartBar("b", 2, 1, 3)])]);
        var groupedTexts = Parse(grouped).Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.Contains(nasty, groupedTexts);
        Assert.Contains("cat <&>", groupedTexts);
    }

    [Fact]
    public void Labels_WithControlCharacters_StayWellFormed()
    {
        Parse(PaperCharts.Lines("t\u0001", "s\u0000", "x", "y", [Line("bad\u0007\uD800label", 3, 1, 0.1)]));
        Parse(PaperCharts.Bars("t", "s", "y", [new ChartBar("\u001Fbar", 1, 1, 1, "\uFFFF")]));
    }

    [Fact]
    public void Bars_OneRectPerBar_WithWhiskers_AndYAxisAboveTheLargestHigh()
    {
        var bars = new[]
        {
            new ChartBar("fft", 0.82, 0.80, 0.85, "0.82 ± 0.02"),
            new ChartBar("lora r=8", 0.74, 0.70, 0.79, "0.74 ± 0.04"),
            new ChartBar("mora r=256", 0.77, 0.77, 0.77, "0.77"),
        };
        var doc = Parse(PaperCharts.Bars("tasks", "accuracy", "accuracy", bars));
        Assert.Equal(3, Count(doc, "rect", "bar"));
        Assert.Equal(2 * 3, Count(doc, "line", "whisker")); // two bars whose seeds differ: a stem and two caps each
        Assert.Equal(3, Count(doc, "text", "note"));
        Assert.Equal(3, Count(doc, "text", "x-label"));
        var ticks = YTicks(doc);
        Assert.Equal(0, ticks.Min());
        Assert.True(ticks.Max() >= 0.85);
        Assert.False(SaysNoData(doc));
    }

    [Fact]
    public void Bars_EmptyNaNSingleAndAllEqual_AreWellFormed()
    {
        Assert.True(SaysNoData(Parse(PaperCharts.Bars("t", "s", "y", []))));
        Assert.True(SaysNoData(Parse(PaperCharts.Bars("t", "s", "y", [new ChartBar("nan", double.NaN, 0, 1)]))));

        var withNaN = Parse(PaperCharts.Bars("t", "s", "y",
            [new ChartBar("a", 2, double.NaN, 3), new ChartBar("b", double.PositiveInfinity, 1, 2, "skipped"), new ChartBar("c", 1, 0.5, double.NaN)]));
        Assert.Equal(2, Count(withNaN, "rect", "bar"));
        Assert.Equal(0, Count(withNaN, "line", "whisker"));
        Assert.Equal(3, Count(withNaN, "text", "x-label"));

        var single = Parse(PaperCharts.Bars("t", "s", "y", [new ChartBar("one", 5, 4, 6)]));
        Assert.Equal(1, Count(single, "rect", "bar"));
        Assert.True(YTicks(single).Max() >= 6);

        foreach (var v in new[] { 0.0, 3.0, -2.0 })
        {
            var flat = Parse(PaperCharts.Bars("t", "s", "y", [new ChartBar("a", v, v, v), new ChartBar("b", v, v, v)]));
            var ticks = YTicks(flat);
            Assert.True(ticks.Max() > ticks.Min());
            Assert.True(ticks.Min() <= Math.Min(0, v) && ticks.Max() >= Math.Max(0, v));
            Assert.Equal(2, Count(flat, "rect", "bar"));
        }
    }

    [Fact]
    public void Bars_ManyLongLabels_StayWellFormed()
    {
        var bars = Enumerable.Range(0, 20).Select(i => new ChartBar($"a rather long method label number {i}", i, i - 0.5, i + 0.5, $"{i}.00 ± 0.50 over 3 seeds")).ToList();
        var doc = Parse(PaperCharts.Bars("t", "s", "y", bars));
        Assert.Equal(20, Count(doc, "rect", "bar")); // the first bar's mean is 0: a bar of height 0 is still a rect
        Assert.Equal(20, Count(doc, "text", "note"));
        Assert.All(doc.Descendants(Svg + "text").Where(t => (string?)t.Attribute("class") == "x-label"), t => Assert.True(t.Value.Length <= 28));
    }

    [Fact]
    public void GroupedBars_OneRectPerFiniteValue_ColouredPerSeries_WithLegend()
    {
        string[] names = ["lora", "mora"];
        var groups = new[]
        {
            new ChartBarGroup("task A", [new ChartBar("lora", 0.6, 0.55, 0.65, "0.60"), new ChartBar("mora", 0.7, 0.7, 0.7)]),
            new ChartBarGroup("task B", [new ChartBar("lora", 0.4, 0.3, 0.5), new ChartBar("mora", double.NaN, 0, 1)]),
            new ChartBarGroup("task C", [new ChartBar("lora", 0.9, 0.85, 0.95)]), // missing the second value: a gap
        };
        var doc = Parse(PaperCharts.GroupedBars("tasks", "accuracy", "accuracy", names, groups));
        var rects = doc.Descendants(Svg + "rect").Where(r => (string?)r.Attribute("class") == "bar").ToList();
        Assert.Equal(4, rects.Count);
        Assert.Equal(3, rects.Count(r => (string?)r.Attribute("fill") == "#1f77b4"));
        Assert.Equal(1, rects.Count(r => (string?)r.Attribute("fill") == "#d62728"));
        Assert.Equal(3 * 3, Count(doc, "line", "whisker"));
        Assert.True(YTicks(doc).Max() >= 0.95);
        var texts = doc.Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.Contains("lora", texts);
        Assert.Contains("mora", texts);
        Assert.Contains("task C", texts);
    }

    [Fact]
    public void GroupedBars_Empty_SaysNoData()
    {
        Assert.True(SaysNoData(Parse(PaperCharts.GroupedBars("t", "s", "y", [], []))));
        Assert.True(SaysNoData(Parse(PaperCharts.GroupedBars("t", "s", "y", ["a"], []))));
        Assert.True(SaysNoData(Parse(PaperCharts.GroupedBars("t", "s", "y", ["a"], [new ChartBarGroup("c", [new ChartBar("a", double.NaN, 1, 2)])]))));
    }

    [Fact]
    public void Output_UsesTheInvariantCulture()
    {
        var previous = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = new CultureInfo("de-DE");
            var svg = PaperCharts.Lines("t", "s", "x", "y", [Line("a", 5, 1.5, 0.25)]);
            var doc = Parse(svg);
            var points = (string)doc.Descendants(Svg + "polyline").Single().Attribute("points")!;
            Assert.Matches(@"^[0-9.]+,[0-9.]+( [0-9.]+,[0-9.]+)*$", points);
            Assert.All(YTicks(doc), v => Assert.True(v >= 0));
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
    }
}
