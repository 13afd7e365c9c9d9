using MoraEngine.Text;
using Xunit;

namespace MoraEngine.Tests.Text;

public class TokenizerErrorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mora-tok").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void MissingDirectory_SaysSo()
    {
        var missing = Path.Combine(_dir, "no-such-model");
        var e = Assert.Throws<DirectoryNotFoundException>(() => HfTokenizer.FromDirectory(missing));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void DirectoryWithoutTokenizerFiles_ListsWhatWasLookedFor()
    {
        Write("config.json", "{}");
        var e = Assert.Throws<FileNotFoundException>(() => HfTokenizer.FromDirectory(_dir));
        foreach (var name in new[] { _dir, "tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model" })
            Assert.Contains(name, e.Message);
        Write("vocab.json", "{\"a\": 0}");
        e = Assert.Throws<FileNotFoundException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains("merges.txt is not", e.Message);
    }

    [Fact]
    public void MalformedTokenizerJson_NamesTheFile()
    {
        var path = Write("tokenizer.json", "{ \"model\": { \"type\": \"BPE\", ");
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains(path, e.Message);
        Assert.Contains("not valid JSON", e.Message);

        Write("tokenizer.json", """{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}, "decoder": {"type": "ByteLevel"}}""");
        e = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains(path, e.Message);
        Assert.Contains("merges[0]", e.Message);

        Write("tokenizer.json", """{"version": "1.0"}""");
        e = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains("no \"model\"", e.Message);
    }

    [Fact]
    public void UnsupportedModelType_NamesTheFileAndThePart()
    {
        var path = Write("tokenizer.json", """{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}""");
        var e = Assert.Throws<NotSupportedException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains(path, e.Message);
        Assert.Contains("'WordPiece'", e.Message);

        Write("tokenizer.json", """{"model": {"type": "BPE", "ignore_merges": true, "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "ByteLevel"}}""");
        e = Assert.Throws<NotSupportedException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains("ignore_merges", e.Message);

        Write("tokenizer.json", """{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "BertPreTokenizer"}, "decoder": {"type": "ByteLevel"}}""");
        e = Assert.Throws<NotSupportedException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains("'BertPreTokenizer'", e.Message);

        Write("tokenizer.json", """{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}, "decoder": {"type": "BPEDecoder"}}""");
        e = Assert.Throws<NotSupportedException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains(path, e.Message);
        Assert.Contains("ByteLevel or SentencePiece", e.Message);
    }

    [Fact]
    public void MalformedMergesTxt_NamesTheFileAndLine()
    {
        File.Copy(TokenizerFixtures.PathOf("gpt2-tiny/vocab.json"), Path.Combine(_dir, "vocab.json"));
        var path = Write("merges.txt", "#version: 0.2\nĠ t\nthree parts here\n");
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 3", e.Message);
    }

    [Fact]
    public void CorruptTokenizerModel_NamesTheFile()
    {
        var path = Path.Combine(_dir, "tokenizer.model");
        File.WriteAllBytes(path, [0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2, 3]);
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void MalformedConfigJson_NamesTheFile()
    {
        File.Copy(TokenizerFixtures.PathOf("llama-tiny/tokenizer.model"), Path.Combine(_dir, "tokenizer.model"));
        var path = Write("config.json", "{\"eos_token_id\": ");
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains(path, e.Message);
        Write("config.json", "{\"eos_token_id\": \"two\"}");
        e = Assert.Throws<InvalidDataException>(() => HfTokenizer.FromDirectory(_dir));
        Assert.Contains("eos_token_id", e.Message);
    }
}
