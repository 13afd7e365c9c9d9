using System.Text;
using MoraEngine.Training;
using Xunit;

namespace MoraEngine.Tests;

/// <summary>In-memory datasets: documents packed with eos, pairs one per row or packed, completion-only targets.</summary>
public class TokenDatasetTests
{
    private static TokenDataset.Options Bytes(int time) => new(t => Encoding.ASCII.GetBytes(t).Select(b => (int)b).ToArray(), '\n', null, time, 256);

    private static string Text(int[] ids) => new(ids.Select(i => (char)i).ToArray());

    [Fact]
    public void Pairs_OneRowEach_ScoreOnlyTheCompletionAndEos()
    {
        var d = TokenDataset.FromPairs([("12+3=", "15"), ("", "abc")], Bytes(8));
        Assert.Equal(2, d.Count);
        var (ids, targets) = d.Row(0);
        Assert.Equal("12+3=15\n", Text(ids));
        // Position 4 ('=') predicts '1', 5 predicts '5', 6 predicts eos; nothing else is scored.
        Assert.Equal(new[] { -100, -100, -100, -100, '1', '5', '\n', -100 }, targets);
        // An empty prompt scores the whole text after its first token.
        Assert.Equal(new[] { 'b', 'c', '\n', -100, -100, -100, -100, -100 }, d.Row(1).Targets);
    }

    [Fact]
    public void PackedPairs_FillRowsWithWholeExamples_AndKeepCompletionOnlyTargets()
    {
        var pairs = Enumerable.Range(0, 7).Select(i => ($"{i}+{i}=", $"{2 * i}")).ToList();
        var packed = TokenDataset.FromPairs(pairs, Bytes(16), pack: true);
        var single = TokenDataset.FromPairs(pairs, Bytes(16));
        Assert.Equal(7, single.Count);
        // "0+0=0\n" is 6 tokens and the longer ones 7: two whole examples per row of 16 + 1.
        Assert.True(packed.Count < single.Count);
        Assert.Equal(single.ScoredPositions, packed.ScoredPositions);
        var (ids, targets) = packed.Row(0);
        Assert.StartsWith("0+0=0\n1+1=2\n", Text(ids));
        Assert.Equal(-100, targets[0]);
        Assert.Equal('0', targets[3]);
        Assert.Equal('\n', targets[4]);
        Assert.Equal(-100, targets[5]);   // the next prompt's first token is not scored
        Assert.Equal('2', targets[9]);
        Assert.Throws<InvalidDataException>(() => TokenDataset.FromPairs([("a very long prompt", "and completion")], Bytes(8), "long", pack: true));
        Assert.Throws<InvalidDataException>(() => TokenDataset.FromPairs([], Bytes(8)));
    }

    [Fact]
    public void Documents_ArePackedWithEos_AndBadTokensNameTheDocument()
    {
        var d = TokenDataset.FromDocuments(["abc", "de"], Bytes(4), "docs");
        Assert.Equal("abc\n", Text(d.Row(0).Ids));
        Assert.Equal(new int[] { 'b', 'c', '\n', 'd' }, d.Row(0).Targets);
        var bad = new TokenDataset.Options(_ => [300], '\n', null, 4, 256);
        Assert.Contains("docs", Assert.Throws<InvalidDataException>(() => TokenDataset.FromDocuments(["x"], bad, "docs")).Message);
    }
}
