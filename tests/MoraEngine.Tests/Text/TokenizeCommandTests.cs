using System.Text.Json;
using MoraEngine.Cli;
using Xunit;

namespace MoraEngine.Tests.Text;

[Collection("Console")]
public class TokenizeCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mora-tokenize").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static (int Code, string Out) Run(params string[] args) => CliRunner.Run(args);

    private string TextFile(string text)
    {
        var path = Path.Combine(_dir, "text.txt");
        File.WriteAllText(path, text);
        return path;
    }

    [Theory]
    [InlineData("llama-tiny", "llama-tiny-reference.json")]
    [InlineData("gpt2-tiny", "gpt2-tiny-reference.json")]
    [InlineData("gpt2-tiny-json", "gpt2-tiny-reference.json")]
    public void Json_PrintsOneLineOfTheReferenceIds(string fixture, string referenceFile)
    {
        var reference = TokenizerFixtures.Load(referenceFile);
        var i = Array.IndexOf(reference.Texts, "Mixed: ASCII, café, 日本語, 🙂! x=1; y = x * 2");
        Assert.True(i >= 0);
        var (code, output) = Run("tokenize", "--model", TokenizerFixtures.PathOf(fixture), "--text", TextFile(reference.Texts[i]), "--json");
        Assert.Equal(0, code);
        var line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        using var doc = JsonDocument.Parse(line);
        Assert.Equal(reference.Ids[i], doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        Assert.Equal($"{{\"ids\":[{string.Join(",", reference.Ids[i])}]}}", line);
    }

    [Fact]
    public void Byte_GivesTheUtf8Bytes()
    {
        var (code, output) = Run("tokenize", "--model", "byte", "--text", TextFile("hé"), "--json");
        Assert.Equal(0, code);
        Assert.Equal("{\"ids\":[104,195,169]}", output.Trim());
    }

    [Fact]
    public void Readable_ListsCountAndTokens()
    {
        var (code, _) = Run("tokenize", "--model", TokenizerFixtures.PathOf("llama-tiny"), "--text", TextFile("Hello 🙂"));
        Assert.Equal(0, code);   // Spectre.Console writes to its own console; the exit code and no exception are what is checked.
        Assert.Equal("\"a\\n\\\"b\\\\\"", MoraEngine.Cli.Commands.TokenizeCommand.Quote("a\n\"b\\"));
    }

    [Fact]
    public void BadInput_IsExitCode2()
    {
        var text = TextFile("hello");
        Assert.Equal(2, Run("tokenize", "--model", Path.Combine(_dir, "missing"), "--text", text, "--json").Code);
        Assert.Equal(2, Run("tokenize", "--model", _dir, "--text", text, "--json").Code);   // no tokenizer files
        Assert.Equal(2, Run("tokenize", "--model", TokenizerFixtures.PathOf("llama-tiny"), "--text", Path.Combine(_dir, "missing.txt")).Code);
        var unsupported = Directory.CreateDirectory(Path.Combine(_dir, "wordpiece")).FullName;
        File.WriteAllText(Path.Combine(unsupported, "tokenizer.json"), """{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}""");
        Assert.Equal(2, Run("tokenize", "--model", unsupported, "--text", text, "--json").Code);
    }
}
