using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MoraEngine.Text;
using Spectre.Console;

namespace MoraEngine.Cli.Commands;

internal static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model")
        {
            Description = "Model directory with its tokenizer (tokenizer.json, vocab.json + merges.txt, or tokenizer.model), or 'byte' for the engine's own byte-level tokens.",
            Required = true,
        };
        var text = new Option<string>("--text") { Description = "UTF-8 text file to tokenize.", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one line {\"ids\":[...]} (no BOS/EOS added) instead of the readable listing." };
        var cmd = new Command("tokenize", "Turn a text file into token ids with a model's tokenizer.") { model, text, json };
        cmd.SetAction(r => Cli.Guard(() => Run(r.GetValue(model)!, r.GetValue(text)!, r.GetValue(json))));
        return cmd;
    }

    internal static TextTokenizer Load(string model)
    {
        if (model == "byte" && !Directory.Exists(model)) return ByteTokenizer.Instance;
        try
        {
            return HfTokenizer.FromDirectory(model);
        }
        catch (NotSupportedException e)
        {
            // Cli.Guard reports invalid input; an unsupported tokenizer is one.
            throw new InvalidDataException(e.Message, e);
        }
    }

    private static int Run(string model, string textPath, bool json)
    {
        if (!File.Exists(textPath)) throw new FileNotFoundException($"--text: '{textPath}' does not exist.", textPath);
        var tok = Load(model);
        var text = File.ReadAllText(textPath, Encoding.UTF8);
        var ids = tok.Encode(text);
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new { ids }));
            return 0;
        }
        AnsiConsole.MarkupLine($"{ids.Length.ToString(CultureInfo.InvariantCulture)} tokens ({Markup.Escape(tok.Kind)}, vocabulary {tok.VocabSize.ToString(CultureInfo.InvariantCulture)}; BOS {Show(tok.BosId)}, EOS {Show(tok.EosId)}; none added)");
        // "text" is what each token adds to the decoded text (streaming decode): a byte token that splits a character
        // adds nothing until the character completes, and a SentencePiece word's space shows.
        var table = new Table().AddColumns("#", "id", "token", "text");
        table.Columns[0].RightAligned();
        table.Columns[1].RightAligned();
        var stream = tok.CreateStream();
        for (var i = 0; i < ids.Length; i++)
        {
            var piece = tok.TokenString(ids[i]);
            var added = stream.Append(ids[i]);
            if (i == ids.Length - 1) added += stream.Flush();
            table.AddRow(i.ToString(CultureInfo.InvariantCulture), ids[i].ToString(CultureInfo.InvariantCulture),
                Markup.Escape(piece == null ? "" : Quote(piece)), Markup.Escape(Quote(added)));
        }
        AnsiConsole.Write(table);
        return 0;
    }

    private static string Show(int? id) => id?.ToString(CultureInfo.InvariantCulture) ?? "none";

    /// <summary>A token's text in quotes, with control characters, quotes and backslashes escaped, so that spaces and newlines are visible.</summary>
    internal static string Quote(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in s)
            sb.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) => $"\\u{(int)c:X4}",
                _ => c.ToString(),
            });
        return sb.Append('"').ToString();
    }
}
