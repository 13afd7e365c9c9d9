using System.Text;
using MoraEngine.Text;
using Xunit;

namespace MoraEngine.Tests.Text;

public class TokenTextStreamTests
{
    public static TheoryData<string> Tokenizers() => ["byte", "gpt2-tiny", "gpt2-tiny-json", "llama-tiny", "llama-tiny-json", "llama-tiny-json-metaspace", "tiktoken-gpt2"];

    private static TextTokenizer Open(string name) => name switch
    {
        "byte" => ByteTokenizer.Instance,
        "tiktoken-gpt2" => HfTokenizer.FromTiktokenModel("gpt2"),
        _ => TokenizerFixtures.Open(name),
    };

    private static List<string> StreamAll(TextTokenizer tok, int[] ids)
    {
        var stream = tok.CreateStream();
        var parts = ids.Select(stream.Append).ToList();
        parts.Add(stream.Flush());
        return parts;
    }

    [Theory]
    [MemberData(nameof(Tokenizers))]
    public void ConcatenatedOutput_EqualsDecodeOfAllIds(string name)
    {
        var tok = Open(name);
        var texts = TokenizerFixtures.Load("llama-tiny-reference.json").Texts
            .Append("Hello world, again and again.\n  Indented   spaces\t🙂🙂 é")
            .Append(string.Join(" ", TokenizerFixtures.Load("gpt2-reference.json").Texts));
        foreach (var text in texts)
        {
            var ids = tok.Encode(text);
            var parts = StreamAll(tok, ids);
            Assert.Equal(tok.Decode(ids), string.Concat(parts));
            // Nothing emitted ends in half a character.
            Assert.All(parts.Take(parts.Count - 1), p => Assert.False(p.Length > 0 && (p[^1] == '\uFFFD' || char.IsHighSurrogate(p[^1])), $"{name}: part {p}"));
        }
    }

    [Fact]
    public void ByteTokensSplittingACharacter_AreHeldUntilItCompletes()
    {
        // GPT-2 byte-level: "🙂" is four byte tokens in the tiny vocabulary.
        var gpt2 = TokenizerFixtures.Open("gpt2-tiny");
        var ids = gpt2.Encode("x🙂y");
        Assert.Equal(6, ids.Length);
        Assert.Equal(["x", "", "", "", "🙂", "y", ""], StreamAll(gpt2, ids));

        // SentencePiece byte fallback: "é" is a piece, "日" is three <0xXX> pieces; the word's space comes out.
        var llama = TokenizerFixtures.Open("llama-tiny");
        ids = llama.Encode("a 日");
        Assert.Equal(["▁a", "▁", "<0xE6>", "<0x97>", "<0xA5>"], ids.Select(i => llama.TokenString(i)));
        Assert.Equal(["a", " ", "", "", "日", ""], StreamAll(llama, ids));

        // The engine's byte tokens: "é" = C3 A9.
        Assert.Equal(["", "é", "", "", "", "🙂", ""], StreamAll(ByteTokenizer.Instance, ByteTokenizer.Instance.Encode("é🙂")));
    }

    [Fact]
    public void SentencePieceWordSpaces_ComeOutBeforeEachLaterWord()
    {
        var tok = TokenizerFixtures.Open("llama-tiny");
        var ids = tok.Encode("the the the");
        var parts = StreamAll(tok, ids);
        Assert.Equal("the the the", string.Concat(parts));
        Assert.Equal("the", parts[0]);
        Assert.StartsWith(" ", parts[1]);
    }

    [Fact]
    public void Flush_GivesAnIncompleteCharacterAsReplacement_AndABadIdLeavesTheStreamAsItWas()
    {
        var tok = ByteTokenizer.Instance;
        var stream = tok.CreateStream();
        Assert.Equal("", stream.Append(0xF0));
        Assert.Equal("", stream.Append(0x9F));
        Assert.Throws<ArgumentOutOfRangeException>(() => stream.Append(300));
        Assert.Equal(2, stream.Ids.Count);
        Assert.Equal(tok.Decode([0xF0, 0x9F]), stream.Flush());
        Assert.Equal("\uFFFD", Encoding.UTF8.GetString([0xF0, 0x9F]));
    }
}
