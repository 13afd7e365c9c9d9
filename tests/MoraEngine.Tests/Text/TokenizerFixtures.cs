using System.Text.Json;
using MoraEngine.Text;

namespace MoraEngine.Tests.Text;

/// <summary>
/// The tokenizer fixtures in TestData/tokenizers (bench/tokenizers/make-fixtures.sh writes them): tokenizers and the
/// ids that reference tokenizers this project did not write give for bench/tokenizers/texts.json.
/// </summary>
internal static class TokenizerFixtures
{
    public static string Dir { get; } = Path.Combine(AppContext.BaseDirectory, "TestData", "tokenizers");

    public static string PathOf(string name) => Path.Combine(Dir, name);

    public sealed record Reference(string Source, string[] Texts, int[][] Ids, string[]? Decoded)
    {
        /// <summary>Decode-only cases (llama-tiny-reference.json): id lists and the reference's text for each.</summary>
        public int[][] DecodeIds { get; init; } = [];
        public string[] DecodeTexts { get; init; } = [];
    }

    /// <summary>A reference file: {"texts", "ids"[, "decoded"]}.</summary>
    public static Reference Load(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(PathOf(file)));
        var r = doc.RootElement;
        return new Reference(r.GetProperty("source").GetString()!, Strings(r.GetProperty("texts")), IdLists(r.GetProperty("ids")),
            r.TryGetProperty("decoded", out var d) ? Strings(d) : null)
        {
            DecodeIds = r.TryGetProperty("decode_ids", out var di) ? IdLists(di) : [],
            DecodeTexts = r.TryGetProperty("decode_texts", out var dt) ? Strings(dt) : [],
        };
    }

    /// <summary>Tokenizers.js's ids and decodes for one tokenizer.json fixture (tokenizer-json-reference.json).</summary>
    public static Reference LoadTokenizersJs(string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(PathOf("tokenizer-json-reference.json")));
        var r = doc.RootElement;
        var t = r.GetProperty("tokenizers").GetProperty(fixture);
        return new Reference(r.GetProperty("source").GetString()!, Strings(r.GetProperty("texts")), IdLists(t.GetProperty("ids")), Strings(t.GetProperty("decoded")));
    }

    public static TextTokenizer Open(string fixtureDir) => HfTokenizer.FromDirectory(PathOf(fixtureDir));

    private static string[] Strings(JsonElement a) => a.EnumerateArray().Select(e => e.GetString()!).ToArray();

    private static int[][] IdLists(JsonElement a) => a.EnumerateArray().Select(l => l.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
}
