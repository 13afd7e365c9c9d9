using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Unicode;
using System.Xml;

namespace MoraEngine.Examples.Paper;

/// <summary>
/// Where a <see cref="GeneralCorpus"/> came from and what it holds: the kind of source
/// (<c>dotnet-sdk-xml-docs</c>, <c>text</c> or <c>directory</c>), its path, the number of files read, the number of
/// documents kept, the byte sizes of the two splits and the lowercase hex SHA-256 of the training bytes followed by
/// the validation bytes.
/// </summary>
public sealed record CorpusInfo(string Source, string Path, int Files, int Documents, long TrainBytes, long ValidationBytes, string Sha256);

/// <summary>
/// General English text for pretraining a byte-level model: documents as UTF-8 bytes joined by '\n' (the
/// end-of-example byte, which no document contains), split into training and validation text. Document i (in
/// reading order) goes to validation when i % 20 == 19 and to training otherwise. The built-in source is the
/// English XML API documentation that every .NET SDK installs (one document per documented member); a text file or
/// a directory of text can replace it (one document per paragraph).
/// </summary>
public sealed class GeneralCorpus
{
    /// <summary>Source name of the SDK's XML API documentation.</summary>
    public const string SdkSource = "dotnet-sdk-xml-docs";

    /// <summary>Source name of a single text file.</summary>
    public const string TextSource = "text";

    /// <summary>Source name of a directory of text files.</summary>
    public const string DirectorySource = "directory";

    /// <summary>Every <see cref="ValidationPeriod"/>-th document (index % period == period − 1) goes to validation.</summary>
    public const int ValidationPeriod = 20;

    /// <summary>XML documentation members whose text is shorter than this many characters are skipped.</summary>
    public const int MinXmlDocumentChars = 40;

    /// <summary>The fewest training bytes a corpus may have.</summary>
    public const int MinTrainBytes = 4096;

    /// <summary>The fewest validation bytes a corpus may have.</summary>
    public const int MinValidationBytes = 1024;

    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private GeneralCorpus(byte[] train, byte[] validation, CorpusInfo info)
    {
        Train = train;
        Validation = validation;
        Info = info;
    }

    /// <summary>Training text: UTF-8 bytes, documents joined by '\n'.</summary>
    public byte[] Train { get; }

    /// <summary>Validation text: UTF-8 bytes, documents joined by '\n' (documents 19, 39, 59, … in reading order).</summary>
    public byte[] Validation { get; }

    /// <summary>The source, sizes and checksum.</summary>
    public CorpusInfo Info { get; }

    /// <summary>
    /// The English text of the XML API documentation that every .NET SDK installs:
    /// <c>&lt;dotnetRoot&gt;/packs/Microsoft.NETCore.App.Ref/&lt;highest version&gt;/ref/&lt;highest netX.Y&gt;/*.xml</c>.
    /// Each <c>&lt;member&gt;</c> is one document: the text of its summary, remarks, param, typeparam, returns,
    /// exception and value elements joined by spaces, with cross-references reduced to the referenced name and
    /// whitespace collapsed. Members with fewer than <see cref="MinXmlDocumentChars"/> characters, members whose
    /// text repeats an earlier member's exactly, and the platform-specific hardware intrinsics (documented by C
    /// signatures and instruction mnemonics) are skipped.
    /// </summary>
    /// <param name="dotnetRoot">The .NET installation to read; null looks where <see cref="FindSdkDocs"/> looks.</param>
    /// <exception cref="InvalidOperationException">No reference pack with XML documentation was found.</exception>
    public static GeneralCorpus FromSdkDocs(string? dotnetRoot = null)
    {
        var folder = FindSdkDocs(dotnetRoot);
        if (folder is null)
        {
            var looked = string.Join(", ", DotnetRootCandidates(dotnetRoot).Select(r => System.IO.Path.Combine(r, "packs", RefPackName)));
            throw new InvalidOperationException(
                $"GeneralCorpus: found no .NET SDK XML documentation (looked for {RefPackName}/<version>/ref/<netX.Y>/*.xml under: {looked}). " +
                "Pass --text FILE or --corpus DIR to train on your own text.");
        }
        var files = Directory.GetFiles(folder, "*.xml");
        Array.Sort(files, (a, b) => string.CompareOrdinal(System.IO.Path.GetFileName(a), System.IO.Path.GetFileName(b)));
        var builder = new Builder();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in files) ReadXmlDocs(file, builder, seen);
        return builder.Finish(SdkSource, folder, files.Length);
    }

    /// <summary>
    /// The user's own text: one UTF-8 file whose paragraphs (separated by blank lines) are the documents, each with
    /// its whitespace collapsed to single spaces.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not valid UTF-8, or holds too little text.</exception>
    public static GeneralCorpus FromTextFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"GeneralCorpus: text file '{path}' does not exist.", full);
        var builder = new Builder();
        ReadParagraphs(full, builder);
        return builder.Finish(TextSource, full, 1);
    }

    /// <summary>
    /// Every <c>*.txt</c> and <c>*.md</c> file under <paramref name="directory"/> (paragraphs are documents) and
    /// every <c>*.xml</c> file (read as XML API documentation, like the SDK's), in ordinal order of their relative
    /// paths.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is not valid UTF-8 or not well-formed XML, or the files hold too little text.</exception>
    public static GeneralCorpus FromDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var full = System.IO.Path.GetFullPath(directory);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"GeneralCorpus: corpus directory '{directory}' does not exist.");
        var files = Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories)
            .Where(f => HasExtension(f, ".txt") || HasExtension(f, ".md") || HasExtension(f, ".xml"))
            .Select(f => (File: f, Relative: System.IO.Path.GetRelativePath(full, f).Replace('\\', '/')))
            .OrderBy(f => f.Relative, StringComparer.Ordinal)
            .ToList();
        var builder = new Builder();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (file, _) in files)
        {
            if (HasExtension(file, ".xml")) ReadXmlDocs(file, builder, seen);
            else ReadParagraphs(file, builder);
        }
        return builder.Finish(DirectorySource, full, files.Count);
    }

    /// <summary>
    /// The corpus a command line asks for: <paramref name="textFile"/> when given, else <paramref name="directory"/>
    /// when given, else the SDK's XML documentation. Null, empty or blank counts as not given.
    /// </summary>
    /// <exception cref="ArgumentException">Both a text file and a directory were given.</exception>
    public static GeneralCorpus Load(string? textFile, string? directory)
    {
        var hasText = !string.IsNullOrWhiteSpace(textFile);
        var hasDir = !string.IsNullOrWhiteSpace(directory);
        if (hasText && hasDir)
            throw new ArgumentException($"GeneralCorpus: give either a text file ('{textFile}') or a corpus directory ('{directory}'), not both.");
        if (hasText) return FromTextFile(textFile!);
        if (hasDir) return FromDirectory(directory!);
        return FromSdkDocs();
    }

    /// <summary>
    /// The folder of the highest installed reference pack's XML documentation
    /// (<c>packs/Microsoft.NETCore.App.Ref/&lt;version&gt;/ref/&lt;netX.Y&gt;</c> holding <c>*.xml</c> files), or null.
    /// With no <paramref name="dotnetRoot"/> it looks under the DOTNET_ROOT environment variable, then the .NET
    /// installation of the running runtime (three folders above its runtime directory), then /usr/share/dotnet and
    /// /usr/lib/dotnet, and returns the first found.
    /// </summary>
    public static string? FindSdkDocs(string? dotnetRoot = null)
    {
        foreach (var root in DotnetRootCandidates(dotnetRoot))
        {
            var found = FindDocsUnder(root);
            if (found is not null) return found;
        }
        return null;
    }

    private const string RefPackName = "Microsoft.NETCore.App.Ref";

    private static readonly HashSet<string> Sections = new(StringComparer.Ordinal)
    {
        "summary", "remarks", "param", "typeparam", "returns", "exception", "value",
    };

    private static readonly HashSet<string> BlockElements = new(StringComparer.Ordinal)
    {
        "para", "p", "br", "list", "listheader", "item", "term", "description", "ul", "ol", "li", "code",
    };

    private static bool HasExtension(string file, string extension) =>
        System.IO.Path.GetExtension(file).Equals(extension, StringComparison.OrdinalIgnoreCase);

    private static List<string> DotnetRootCandidates(string? dotnetRoot)
    {
        if (!string.IsNullOrWhiteSpace(dotnetRoot)) return [System.IO.Path.GetFullPath(dotnetRoot)];
        var list = new List<string>();
        void Add(string? p)
        {
            if (string.IsNullOrWhiteSpace(p)) return;
            string full;
            try { full = System.IO.Path.GetFullPath(p); }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { return; }
            if (!list.Contains(full, StringComparer.Ordinal)) list.Add(full);
        }
        Add(Environment.GetEnvironmentVariable("DOTNET_ROOT"));
        string? runtimeDir = null;
        try { runtimeDir = System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(); }
        catch (Exception e) when (e is PlatformNotSupportedException or NotSupportedException) { }
        if (!string.IsNullOrEmpty(runtimeDir))
        {
            var dir = runtimeDir.TrimEnd(System.IO.Path.DirectorySeparatorChar, System.IO.Path.AltDirectorySeparatorChar);
            for (var i = 0; i < 3 && dir is not null; i++) dir = System.IO.Path.GetDirectoryName(dir);
            Add(dir);
        }
        Add("/usr/share/dotnet");
        Add("/usr/lib/dotnet");
        return list;
    }

    private static string? FindDocsUnder(string root)
    {
        var pack = System.IO.Path.Combine(root, "packs", RefPackName);
        if (!Directory.Exists(pack)) return null;
        var versions = Directory.GetDirectories(pack)
            .Select(d => (Dir: d, Key: ParseVersion(System.IO.Path.GetFileName(d))))
            .Where(v => v.Key.Version is not null)
            .OrderByDescending(v => v.Key.Version)
            .ThenBy(v => v.Key.Prerelease.Length == 0 ? 0 : 1)
            .ThenByDescending(v => v.Key.Prerelease, StringComparer.Ordinal);
        foreach (var (dir, _) in versions)
        {
            var refDir = System.IO.Path.Combine(dir, "ref");
            if (!Directory.Exists(refDir)) continue;
            var tfms = Directory.GetDirectories(refDir)
                .Select(d => (Dir: d, Name: System.IO.Path.GetFileName(d)))
                .Where(t => t.Name.StartsWith("net", StringComparison.Ordinal) && Version.TryParse(t.Name[3..], out _))
                .OrderByDescending(t => Version.Parse(t.Name[3..]));
            foreach (var (tfm, _) in tfms)
                if (Directory.EnumerateFiles(tfm, "*.xml").Any()) return tfm;
        }
        return null;
    }

    private static (Version? Version, string Prerelease) ParseVersion(string name)
    {
        var dash = name.IndexOf('-');
        var core = dash < 0 ? name : name[..dash];
        var pre = dash < 0 ? "" : name[(dash + 1)..];
        return Version.TryParse(core, out var v) ? (v, pre) : (null, pre);
    }

    /// <summary>The name a cross-reference points at: the last segment, without kind prefix, generic arity or parameters.</summary>
    internal static string CrefName(string cref)
    {
        var s = cref.Trim();
        if (s.Length > 2 && s[1] == ':') s = s[2..];
        var cut = s.IndexOfAny(['(', '{', '[', '~']);
        if (cut >= 0) s = s[..cut];
        var segments = s.Split('.', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length == 0) return "";
        var last = segments.Length - 1;
        while (last > 0 && segments[last] is "#ctor" or "#cctor") last--;
        var name = segments[last];
        var hash = name.LastIndexOf('#');
        if (hash >= 0 && hash < name.Length - 1) name = name[(hash + 1)..];
        var tick = name.IndexOf('`');
        if (tick > 0) name = name[..tick];
        return name;
    }

    /// <summary>
    /// Members documented by C signatures and instruction mnemonics rather than English: the platform-specific
    /// hardware intrinsics (System.Runtime.Intrinsics.Arm, .X86 and .Wasm).
    /// </summary>
    private static bool IsBoilerplateMember(string? name)
    {
        if (name is null || name.Length < 3 || name[1] != ':') return false;
        var id = name.AsSpan(2);
        return id.StartsWith("System.Runtime.Intrinsics.Arm.", StringComparison.Ordinal)
            || id.StartsWith("System.Runtime.Intrinsics.X86.", StringComparison.Ordinal)
            || id.StartsWith("System.Runtime.Intrinsics.Wasm.", StringComparison.Ordinal);
    }

    /// <summary>Reads one XML documentation file, adding one document per member.</summary>
    private static void ReadXmlDocs(string file, Builder builder, HashSet<string> seen)
    {
        var settings = new XmlReaderSettings
        {
            DtdProcessing = DtdProcessing.Ignore,
            XmlResolver = null,
            IgnoreComments = true,
            IgnoreProcessingInstructions = true,
            CloseInput = true,
        };
        var text = new CollapsingText();
        try
        {
            using var reader = XmlReader.Create(file, settings);
            while (reader.Read())
            {
                if (reader.NodeType != XmlNodeType.Element || reader.LocalName != "member" || reader.IsEmptyElement) continue;
                var skip = IsBoilerplateMember(reader.GetAttribute("name"));
                text.Clear();
                ReadMember(reader, text);
                if (skip) continue;
                if (text.Length < MinXmlDocumentChars) continue;
                var doc = text.ToString();
                if (seen.Add(doc)) builder.Add(doc);
            }
        }
        catch (XmlException e)
        {
            throw new InvalidDataException($"GeneralCorpus: '{file}' is not well-formed XML (line {e.LineNumber}, position {e.LinePosition}): {e.Message}", e);
        }
    }

    /// <summary>Reads a member's content up to its end tag, appending the text of its documentation sections.</summary>
    private static void ReadMember(XmlReader reader, CollapsingText text)
    {
        var memberDepth = reader.Depth;
        var sectionDepth = -1;
        while (reader.Read())
        {
            var node = reader.NodeType;
            if (node == XmlNodeType.EndElement && reader.Depth == memberDepth) return;
            if (sectionDepth < 0)
            {
                if (node == XmlNodeType.Element && reader.Depth == memberDepth + 1 && !reader.IsEmptyElement && Sections.Contains(reader.LocalName))
                {
                    sectionDepth = reader.Depth;
                    text.Space();
                }
                continue;
            }
            switch (node)
            {
                case XmlNodeType.Text:
                case XmlNodeType.CDATA:
                case XmlNodeType.Whitespace:
                case XmlNodeType.SignificantWhitespace:
                    text.Append(reader.Value);
                    break;
                case XmlNodeType.Element:
                    InlineElement(reader, text);
                    break;
                case XmlNodeType.EndElement:
                    if (reader.Depth == sectionDepth)
                    {
                        sectionDepth = -1;
                        text.Space();
                    }
                    else if (BlockElements.Contains(reader.LocalName)) text.Space();
                    break;
            }
        }
    }

    /// <summary>The text an element inside a documentation section stands for (its content, if any, follows).</summary>
    private static void InlineElement(XmlReader reader, CollapsingText text)
    {
        var name = reader.LocalName;
        if (BlockElements.Contains(name))
        {
            text.Space();
            return;
        }
        switch (name)
        {
            case "see":
            case "seealso":
                if (!reader.IsEmptyElement) return; // the element's own text follows
                if (reader.GetAttribute("langword") is { } word) text.Append(word);
                else if (reader.GetAttribute("cref") is { } cref) text.Append(CrefName(cref));
                else if (reader.GetAttribute("href") is { } href) text.Append(href);
                break;
            case "paramref":
            case "typeparamref":
                if (reader.GetAttribute("name") is { } n) text.Append(n);
                break;
            case "xref":
                if (reader.GetAttribute("uid") is { } uid) text.Append(CrefName(uid));
                break;
        }
    }

    /// <summary>Reads a UTF-8 text file, adding one document per paragraph.</summary>
    private static void ReadParagraphs(string file, Builder builder)
    {
        var bytes = File.ReadAllBytes(file);
        var span = bytes.AsSpan();
        if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) span = span[3..];
        var chars = new char[Utf8NoBom.GetMaxCharCount(span.Length)];
        var status = Utf8.ToUtf16(span, chars, out var read, out var written, replaceInvalidSequences: false);
        if (status != OperationStatus.Done)
        {
            var offset = read + (bytes.Length - span.Length);
            throw new InvalidDataException($"GeneralCorpus: '{file}' is not valid UTF-8 (invalid byte sequence at byte offset {offset}).");
        }
        ReadOnlySpan<char> content = chars.AsSpan(0, written);
        var text = new CollapsingText();
        foreach (var range in content.Split('\n'))
        {
            var line = content[range];
            if (line.IsWhiteSpace())
            {
                if (text.Length > 0) builder.Add(text.ToString());
                text.Clear();
                continue;
            }
            text.Space();
            text.Append(line);
        }
        if (text.Length > 0) builder.Add(text.ToString());
    }

    /// <summary>Text with every whitespace run collapsed to one space and no leading or trailing space.</summary>
    private sealed class CollapsingText
    {
        private readonly StringBuilder _sb = new();
        private bool _pendingSpace;

        public int Length => _sb.Length;

        public void Clear()
        {
            _sb.Clear();
            _pendingSpace = false;
        }

        public void Space() => _pendingSpace = true;

        public void Append(ReadOnlySpan<char> s)
        {
            foreach (var c in s)
            {
                if (char.IsWhiteSpace(c))
                {
                    _pendingSpace = true;
                    continue;
                }
                if (_pendingSpace && _sb.Length > 0) _sb.Append(' ');
                _pendingSpace = false;
                _sb.Append(c);
            }
        }

        public override string ToString() => _sb.ToString();
    }

    /// <summary>Collects documents into the two splits.</summary>
    private sealed class Builder
    {
        private readonly ArrayBufferWriter<byte> _train = new(1 << 16);
        private readonly ArrayBufferWriter<byte> _validation = new(1 << 14);
        private int _count;

        public void Add(string document)
        {
            var target = _count % ValidationPeriod == ValidationPeriod - 1 ? _validation : _train;
            if (target.WrittenCount > 0) target.Write((ReadOnlySpan<byte>)[(byte)'\n']);
            var n = Encoding.UTF8.GetByteCount(document);
            var span = target.GetSpan(n);
            Encoding.UTF8.GetBytes(document, span);
            target.Advance(n);
            _count++;
        }

        public GeneralCorpus Finish(string source, string path, int files)
        {
            var train = _train.WrittenSpan.ToArray();
            var validation = _validation.WrittenSpan.ToArray();
            if (train.Length < MinTrainBytes || validation.Length < MinValidationBytes)
                throw new InvalidDataException(
                    $"GeneralCorpus: too little text in {source} '{path}' ({files} file(s), {_count} document(s)): " +
                    $"{train.Length} training bytes and {validation.Length} validation bytes, need at least {MinTrainBytes} and {MinValidationBytes} " +
                    $"(every {ValidationPeriod}th document or paragraph is held out for validation).");
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            hash.AppendData(train);
            hash.AppendData(validation);
            var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
            return new GeneralCorpus(train, validation, new CorpusInfo(source, path, files, _count, train.Length, validation.Length, sha));
        }
    }
}
