using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace MoraEngine.Text;

/// <summary>
/// Tokenizers for Hugging Face model directories, built on Microsoft.ML.Tokenizers 2.0.1.
/// </summary>
/// <remarks>
/// <para><see cref="FromDirectory"/> takes the first of these that the directory has:</para>
/// <list type="number">
/// <item><c>tokenizer.json</c> with <c>model.type</c> BPE: byte-level (GPT-2, Qwen2, SmolLM2: a ByteLevel
/// pre-tokenizer or decoder) through <see cref="BpeTokenizer"/> with <c>ByteLevel = true</c>; or SentencePiece-style
/// (LLaMA-2, TinyLlama: "▁" normalizer/Metaspace, Replace/ByteFallback decoder). <c>added_tokens</c> are matched whole
/// in the text.</item>
/// <item><c>vocab.json</c> + <c>merges.txt</c>: GPT-2 byte-level BPE (GPT-2's pre-tokenization regex).</item>
/// <item><c>tokenizer.model</c>: SentencePiece. BPE models encode like SentencePiece's <c>encode(text)</c>: the dummy
/// "▁" prefix is added (as SentencePiece does by default, and as the model's normalizer spec says), no BOS. Unigram
/// models use Microsoft.ML.Tokenizers' <see cref="SentencePieceTokenizer"/> as it is.</item>
/// </list>
/// <para>BOS/EOS ids come from <c>config.json</c> (<c>bos_token_id</c>, <c>eos_token_id</c>; a list of EOS ids gives
/// its first), else <c>tokenizer_config.json</c> (<c>bos_token</c>, <c>eos_token</c>), else the tokenizer's own.</para>
/// </remarks>
public static class HfTokenizer
{
    private const string TokenizerJson = "tokenizer.json";
    private const string VocabJson = "vocab.json";
    private const string MergesTxt = "merges.txt";
    private const string TokenizerModel = "tokenizer.model";

    /// <summary>The tokenizer of a Hugging Face model directory (see the class remarks for what it looks for).</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">It has no tokenizer file; the message lists what was looked for.</exception>
    /// <exception cref="InvalidDataException">A file is malformed (the message names it).</exception>
    /// <exception cref="NotSupportedException">A tokenizer.json asks for something this loader does not do (named).</exception>
    public static TextTokenizer FromDirectory(string dir)
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"Tokenizer directory '{dir}' does not exist.");
        TextTokenizer tok;
        var json = Path.Combine(dir, TokenizerJson);
        var vocab = Path.Combine(dir, VocabJson);
        var merges = Path.Combine(dir, MergesTxt);
        var model = Path.Combine(dir, TokenizerModel);
        if (File.Exists(json)) tok = FromTokenizerJson(json);
        else if (File.Exists(vocab) && File.Exists(merges)) tok = FromVocabAndMerges(vocab, merges);
        else if (File.Exists(model)) tok = FromSentencePieceModel(model);
        else
        {
            var half = File.Exists(vocab) ? $" ({VocabJson} is there but {MergesTxt} is not)" : File.Exists(merges) ? $" ({MergesTxt} is there but {VocabJson} is not)" : "";
            throw new FileNotFoundException($"No tokenizer in '{dir}': looked for {TokenizerJson}, {VocabJson} + {MergesTxt}, and {TokenizerModel}{half}.");
        }
        ApplyModelSpecialIds(tok, dir);
        return tok;
    }

    // ───────────────────────────── vocab.json + merges.txt ─────────────────────────────

    /// <summary>GPT-2 byte-level BPE from its vocab.json and merges.txt (the <c>#version</c> line is skipped).</summary>
    public static TextTokenizer FromVocabAndMerges(string vocabPath, string mergesPath)
    {
        var vocab = ReadVocab(ParseJson(vocabPath).RootElement, vocabPath, "the file");
        var merges = new List<string>();
        var lineNo = 0;
        foreach (var raw in ReadLines(mergesPath))
        {
            lineNo++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                throw new InvalidDataException($"'{mergesPath}' line {lineNo}: a merge is two symbols separated by one space, got \"{line}\".");
            merges.Add(line);
        }
        // GPT-2 keeps <|endoftext|> in vocab.json; it is a special token there.
        var specials = vocab.Where(kv => kv.Key is "<|endoftext|>").ToDictionary(kv => kv.Key, kv => kv.Value);
        var steps = new[] { new HfPreTokenizer.Step(new Regex(HfPreTokenizer.Gpt2Pattern, RegexOptions.Compiled), HfPreTokenizer.Behavior.Isolated) };
        var tok = ByteLevelBpe("gpt2-bpe", vocab, merges, specials, steps, normalizer: null, mergesPath);
        if (vocab.TryGetValue("<|endoftext|>", out var eot)) tok.BosId = tok.EosId = eot;
        return tok;
    }

    private static MlTokenizer ByteLevelBpe(string kind, Dictionary<string, int> vocab, List<string> merges, Dictionary<string, int> specials,
        IEnumerable<HfPreTokenizer.Step> steps, Normalizer? normalizer, string path)
    {
        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(vocab.Where(kv => !specials.ContainsKey(kv.Key)))
            {
                Merges = merges,
                ByteLevel = true,
                SpecialTokens = specials.Count > 0 ? specials : null,
                PreTokenizer = new HfPreTokenizer(steps, specials.Keys),
                Normalizer = normalizer,
            });
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException or KeyNotFoundException)
        {
            throw new InvalidDataException($"'{path}': Microsoft.ML.Tokenizers could not build the byte-level BPE: {e.Message}", e);
        }
        var byId = new Dictionary<int, string>();
        foreach (var kv in vocab) byId.TryAdd(kv.Value, kv.Key);
        foreach (var kv in specials) byId[kv.Value] = kv.Key;
        var size = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max() + 1, specials.Count == 0 ? 0 : specials.Values.Max() + 1);
        return new MlTokenizer(kind, bpe, size, tokenString: id => byId.GetValueOrDefault(id));
    }

    // ───────────────────────────── tokenizer.model ─────────────────────────────

    /// <summary>A SentencePiece tokenizer.model (see the class remarks).</summary>
    public static TextTokenizer FromSentencePieceModel(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"SentencePiece model '{path}' does not exist.", path);
        var bytes = File.ReadAllBytes(path);
        var file = SentencePieceModelFile.Parse(bytes, path);
        SentencePieceTokenizer lib;
        try
        {
            lib = SentencePieceTokenizer.Create(new MemoryStream(bytes), false, false);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException or NotSupportedException or Google.Protobuf.InvalidProtocolBufferException)
        {
            throw new InvalidDataException($"'{path}': Microsoft.ML.Tokenizers could not load the SentencePiece model: {e.Message}", e);
        }
        TextTokenizer tok;
        switch (file.Type)
        {
            case SentencePieceModelFile.ModelType.Unigram:
                tok = new MlTokenizer("sentencepiece-unigram", lib, file.Pieces.Count,
                    encode: t => lib.EncodeToIds(t, addBeginningOfSentence: false, addEndOfSentence: false),
                    tokenString: id => (uint)id < (uint)file.Pieces.Count ? file.Pieces[id].Text : null);
                break;
            case SentencePieceModelFile.ModelType.Bpe:
                if (file.TreatWhitespaceAsSuffix)
                    throw new NotSupportedException($"'{path}': SentencePiece BPE with treat_whitespace_as_suffix is not supported.");
                var merges = file.DeriveMerges();
                foreach (var m in merges)
                    if (m.Count(c => c == ' ') != 1)
                        throw new NotSupportedException($"'{path}': a piece holds a plain space (escape_whitespaces off); not supported.");
                var unk = Enumerable.Range(0, file.Pieces.Count).Where(i => file.Pieces[i].Type == SentencePieceModelFile.PieceType.Unknown).Cast<int?>().FirstOrDefault();
                var normalizer = lib.Normalizer;
                var addDummyPrefix = lib.AddDummyPrefix;
                tok = new SentencePieceBpeTokenizer("sentencepiece-bpe", file.Pieces.Select(p => (string?)p.Text).ToArray(), merges, unk,
                    byteFallback: file.ByteFallback, fuseUnknown: false,
                    normalize: (s, _) => normalizer?.Normalize(s) ?? s,
                    decode: ids => file.Decode(ids, addDummyPrefix), stripLeadingSpace: false,
                    specialTokens: new Dictionary<string, int>());
                break;
            default:
                throw new NotSupportedException($"'{path}': SentencePiece model type {file.Type} is not supported (BPE and Unigram are).");
        }
        if (lib.BeginningOfSentenceId >= 0 && lib.BeginningOfSentenceId < tok.VocabSize) tok.BosId = lib.BeginningOfSentenceId;
        if (lib.EndOfSentenceId >= 0 && lib.EndOfSentenceId < tok.VocabSize) tok.EosId = lib.EndOfSentenceId;
        return tok;
    }

    // ───────────────────────────── tiktoken ─────────────────────────────

    /// <summary>
    /// An OpenAI tiktoken encoding by model name (e.g. <c>gpt2</c>, <c>gpt-4o</c>) through <see cref="TiktokenTokenizer.CreateForModel(string, IReadOnlyDictionary{string, int}?, Normalizer?)"/>.
    /// Its vocabulary ships in a Microsoft.ML.Tokenizers.Data.* package that the application must reference (the
    /// engine references none). Special tokens such as <c>&lt;|endoftext|&gt;</c> are matched whole in the text.
    /// </summary>
    public static TextTokenizer FromTiktokenModel(string modelName)
    {
        var tk = TiktokenTokenizer.CreateForModel(modelName);
        // tiktoken's public API has no vocabulary count; OpenAI's encodings number their special tokens last.
        var specials = tk.SpecialTokens;
        var size = specials is { Count: > 0 } ? specials.Values.Max() + 1 : throw new NotSupportedException($"tiktoken model '{modelName}': no special tokens to size the vocabulary by.");
        var tok = new MlTokenizer("tiktoken", tk, size);
        if (specials.TryGetValue("<|endoftext|>", out var eot)) tok.EosId = eot;
        return tok;
    }

    // ───────────────────────────── tokenizer.json ─────────────────────────────

    /// <summary>A Hugging Face tokenizer.json with a BPE model (see the class remarks).</summary>
    public static TextTokenizer FromTokenizerJson(string path)
    {
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"'{path}': the top level is not a JSON object.");
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"'{path}': no \"model\" object.");
        var type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (type != "BPE")
            throw new NotSupportedException($"'{path}': model.type {(type == null ? "(missing)" : $"'{type}'")} is not supported; only BPE is.");
        if (Str(model, "continuing_subword_prefix") is { Length: > 0 } csp)
            throw new NotSupportedException($"'{path}': model.continuing_subword_prefix '{csp}' is not supported.");
        if (Str(model, "end_of_word_suffix") is { Length: > 0 } ews)
            throw new NotSupportedException($"'{path}': model.end_of_word_suffix '{ews}' is not supported.");
        if (Bool(model, "ignore_merges") == true)
            throw new NotSupportedException($"'{path}': model.ignore_merges (a word found whole in the vocabulary skips the merges, as in Llama 3) is not supported.");
        if (!model.TryGetProperty("vocab", out var vocabEl)) throw new InvalidDataException($"'{path}': model has no \"vocab\".");
        var vocab = ReadVocab(vocabEl, path, "model.vocab");
        var merges = ReadMerges(model, path);
        var added = ReadAddedTokens(root, path);

        var normalizer = Get(root, "normalizer");
        var pre = Get(root, "pre_tokenizer");
        var decoder = Get(root, "decoder");
        var byteLevel = HasType(pre, "ByteLevel") || HasType(decoder, "ByteLevel");
        var metaspace = HasType(pre, "Metaspace") || HasType(decoder, "Metaspace") || HasType(decoder, "ByteFallback")
            || (decoder is { } d && Flatten(d).Any(x => Str(x, "type") == "Replace" && PatternString(x) == "▁"))
            || Bool(model, "byte_fallback") == true;
        TextTokenizer tok;
        if (byteLevel) tok = FromByteLevelJson(path, vocab, merges, added, normalizer, pre);
        else if (metaspace) tok = FromSentencePieceJson(path, model, vocab, merges, added, normalizer, pre, decoder);
        else throw new NotSupportedException($"'{path}': a BPE model without a ByteLevel or SentencePiece-style (\"▁\") pre-tokenizer/decoder is not supported.");

        // Fallback BOS/EOS from the tokenizer's own special tokens (config.json / tokenizer_config.json override).
        var all = new Dictionary<string, int>(vocab);
        foreach (var kv in added) all[kv.Key] = kv.Value;
        tok.BosId = First(all, "<s>", "<|begin_of_text|>", "<|startoftext|>", "<|endoftext|>");
        tok.EosId = First(all, "</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>");
        return tok;

        static int? First(Dictionary<string, int> all, params string[] names)
        {
            foreach (var n in names)
                if (all.TryGetValue(n, out var id)) return id;
            return null;
        }
    }

    private static TextTokenizer FromByteLevelJson(string path, Dictionary<string, int> vocab, List<string> merges, Dictionary<string, int> added,
        JsonElement? normalizer, JsonElement? pre)
    {
        var norm = new List<Func<string, string>>();
        if (normalizer is { } n) AddNormalizer(n, norm, path, sentencePiece: false);
        var steps = new List<HfPreTokenizer.Step>();
        if (pre is { } p)
            foreach (var x in Flatten(p))
                switch (Str(x, "type"))
                {
                    case "ByteLevel":
                        if (Bool(x, "add_prefix_space") == true) norm.Add(s => s.Length > 0 && s[0] != ' ' ? " " + s : s);
                        if (Bool(x, "use_regex") != false)
                            steps.Add(new(new Regex(HfPreTokenizer.Gpt2Pattern, RegexOptions.Compiled), HfPreTokenizer.Behavior.Isolated));
                        break;
                    case "Split":
                        steps.Add(SplitStep(x, path));
                        break;
                    case "Digits":
                        steps.Add(new(new Regex(Bool(x, "individual_digits") == true ? @"\p{N}" : @"\p{N}+", RegexOptions.Compiled), HfPreTokenizer.Behavior.Isolated));
                        break;
                    case var other:
                        throw new NotSupportedException($"'{path}': pre_tokenizer type '{other}' is not supported with a byte-level BPE (ByteLevel, Split, Digits and Sequence are).");
                }
        return ByteLevelBpe("hf-bpe-bytelevel", vocab, merges, added, steps, norm.Count > 0 ? new HfNormalizer(norm) : null, path);
    }

    private static TextTokenizer FromSentencePieceJson(string path, JsonElement model, Dictionary<string, int> vocab, List<string> merges,
        Dictionary<string, int> added, JsonElement? normalizer, JsonElement? pre, JsonElement? decoder)
    {
        foreach (var m in merges)
            if (m.Count(c => c == ' ') != 1)
                throw new NotSupportedException($"'{path}': merge \"{m}\" holds a plain space; not supported.");
        var norm = new List<Func<string, string>>();
        if (normalizer is { } n) AddNormalizer(n, norm, path, sentencePiece: true);
        // Metaspace pre-tokenizer: spaces → "▁" and the prefix (prepend_scheme "always", or "first": only at the text's
        // start). Its split only cuts before "▁", which MetaspaceChunks does anyway where it changes nothing.
        var prefix = "never";
        var replacement = "▁";
        if (pre is { } p)
            foreach (var x in Flatten(p))
                switch (Str(x, "type"))
                {
                    case "Metaspace":
                        replacement = Str(x, "replacement") ?? "▁";
                        prefix = Str(x, "prepend_scheme") ?? (Bool(x, "add_prefix_space") == false ? "never" : "always");
                        break;
                    case var other:
                        throw new NotSupportedException($"'{path}': pre_tokenizer type '{other}' is not supported with a SentencePiece-style BPE (Metaspace is).");
                }
        if (replacement != "▁") throw new NotSupportedException($"'{path}': Metaspace replacement '{replacement}' is not supported (only \"▁\").");
        if (prefix is not ("always" or "first" or "never")) throw new NotSupportedException($"'{path}': Metaspace prepend_scheme '{prefix}' is not supported.");
        var hasMetaspace = pre != null;
        var normalizeOne = new HfNormalizer(norm);
        Func<string, bool, string> normalize = (s, first) =>
        {
            s = normalizeOne.Normalize(s);
            if (!hasMetaspace) return s;
            s = s.Replace(' ', '▁');
            return prefix == "always" || (prefix == "first" && first) ? (s.StartsWith('▁') ? s : "▁" + s) : s;
        };

        var stripLeading = false;
        if (decoder is { } d)
            foreach (var x in Flatten(d))
                switch (Str(x, "type"))
                {
                    case "Replace" when PatternString(x) == "▁" && Str(x, "content") == " ":
                    case "ByteFallback":
                    case "Fuse":
                        break;
                    case "Strip" when Str(x, "content") == " " && Int(x, "stop") is null or 0:
                        stripLeading = Int(x, "start") is > 0;
                        break;
                    case "Metaspace":
                        stripLeading = (Str(x, "prepend_scheme") ?? (Bool(x, "add_prefix_space") == false ? "never" : "always")) != "never";
                        break;
                    case var other:
                        throw new NotSupportedException($"'{path}': decoder '{other}' is not supported with a SentencePiece-style BPE (Replace ▁→space, ByteFallback, Fuse, Strip and Metaspace are).");
                }
        else throw new NotSupportedException($"'{path}': a SentencePiece-style BPE needs a decoder (Replace ▁→space / Metaspace).");

        var size = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max() + 1, added.Count == 0 ? 0 : added.Values.Max() + 1);
        var pieces = new string?[size];
        foreach (var kv in vocab) pieces[kv.Value] ??= kv.Key;
        int? unk = Str(model, "unk_token") is { } u && vocab.TryGetValue(u, out var ui) ? ui : null;
        return new SentencePieceBpeTokenizer("hf-bpe-sentencepiece", pieces, merges, unk,
            byteFallback: Bool(model, "byte_fallback") == true, fuseUnknown: Bool(model, "fuse_unk") == true,
            normalize, decode: null, stripLeadingSpace: stripLeading, specialTokens: added);
    }

    private static void AddNormalizer(JsonElement n, List<Func<string, string>> into, string path, bool sentencePiece)
    {
        foreach (var x in Flatten(n))
            switch (Str(x, "type"))
            {
                case "NFC": into.Add(HfNormalizer.Unicode(NormalizationForm.FormC)); break;
                case "NFD": into.Add(HfNormalizer.Unicode(NormalizationForm.FormD)); break;
                case "NFKC": into.Add(HfNormalizer.Unicode(NormalizationForm.FormKC)); break;
                case "NFKD": into.Add(HfNormalizer.Unicode(NormalizationForm.FormKD)); break;
                case "Lowercase": into.Add(s => s.ToLowerInvariant()); break;
                case "Prepend" when Str(x, "prepend") is { } p:
                    into.Add(s => s.Length > 0 ? p + s : s);
                    break;
                case "Replace" when PatternString(x) is { } from && Str(x, "content") is { } to:
                    into.Add(s => s.Replace(from, to, StringComparison.Ordinal));
                    break;
                case var other:
                    throw new NotSupportedException($"'{path}': normalizer '{other}' is not supported{(sentencePiece ? "" : " with a byte-level BPE")} (NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace with a String pattern and Sequence are).");
            }
    }

    private static HfPreTokenizer.Step SplitStep(JsonElement x, string path)
    {
        if (Bool(x, "invert") == true) throw new NotSupportedException($"'{path}': pre_tokenizer Split with invert is not supported.");
        if (!x.TryGetProperty("pattern", out var pat) || pat.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"'{path}': pre_tokenizer Split has no pattern.");
        string regex = Str(pat, "Regex") ?? (Str(pat, "String") is { } s ? Regex.Escape(s) : throw new InvalidDataException($"'{path}': pre_tokenizer Split pattern is neither Regex nor String."));
        var behavior = Str(x, "behavior") switch
        {
            "Isolated" => HfPreTokenizer.Behavior.Isolated,
            "Removed" => HfPreTokenizer.Behavior.Removed,
            var b => throw new NotSupportedException($"'{path}': pre_tokenizer Split behavior '{b}' is not supported (Isolated and Removed are)."),
        };
        try
        {
            return new(new Regex(regex, RegexOptions.Compiled), behavior);
        }
        catch (ArgumentException e)
        {
            throw new NotSupportedException($"'{path}': pre_tokenizer Split regex does not compile in .NET: {e.Message}", e);
        }
    }

    private static List<string> ReadMerges(JsonElement model, string path)
    {
        var merges = new List<string>();
        if (!model.TryGetProperty("merges", out var m) || m.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"'{path}': model has no \"merges\" list.");
        var i = 0;
        foreach (var e in m.EnumerateArray())
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.String:
                    var s = e.GetString()!;
                    var parts = s.Split(' ');
                    if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                        throw new InvalidDataException($"'{path}': model.merges[{i}] \"{s}\" is not two symbols separated by one space.");
                    merges.Add(s);
                    break;
                case JsonValueKind.Array when e.GetArrayLength() == 2 && e[0].ValueKind == JsonValueKind.String && e[1].ValueKind == JsonValueKind.String:
                    var (l, r) = (e[0].GetString()!, e[1].GetString()!);
                    if (l.Length == 0 || r.Length == 0 || l.Contains(' ') || r.Contains(' '))
                        throw new NotSupportedException($"'{path}': model.merges[{i}] [\"{l}\", \"{r}\"] holds a space or an empty symbol; not supported.");
                    merges.Add(l + " " + r);
                    break;
                default:
                    throw new InvalidDataException($"'{path}': model.merges[{i}] is neither \"a b\" nor [\"a\", \"b\"].");
            }
            i++;
        }
        return merges;
    }

    private static Dictionary<string, int> ReadAddedTokens(JsonElement root, string path)
    {
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        if (!root.TryGetProperty("added_tokens", out var a) || a.ValueKind == JsonValueKind.Null) return added;
        if (a.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"'{path}': added_tokens is not a list.");
        var i = 0;
        foreach (var e in a.EnumerateArray())
        {
            if (Str(e, "content") is not { Length: > 0 } content || Int(e, "id") is not { } id || id < 0)
                throw new InvalidDataException($"'{path}': added_tokens[{i}] needs a non-empty \"content\" and an \"id\" ≥ 0.");
            added[content] = id;
            i++;
        }
        return added;
    }

    // ───────────────────────────── BOS / EOS ─────────────────────────────

    private static void ApplyModelSpecialIds(TextTokenizer tok, string dir)
    {
        var configPath = Path.Combine(dir, "config.json");
        int? bos = null, eos = null;
        if (File.Exists(configPath))
        {
            using var cfg = ParseJson(configPath);
            if (cfg.RootElement.ValueKind == JsonValueKind.Object)
            {
                bos = IdOrFirst(cfg.RootElement, "bos_token_id", configPath);
                eos = IdOrFirst(cfg.RootElement, "eos_token_id", configPath);
            }
        }
        var tcPath = Path.Combine(dir, "tokenizer_config.json");
        if ((bos == null || eos == null) && File.Exists(tcPath))
        {
            using var tc = ParseJson(tcPath);
            if (tc.RootElement.ValueKind == JsonValueKind.Object)
            {
                bos ??= Lookup(tc.RootElement, "bos_token");
                eos ??= Lookup(tc.RootElement, "eos_token");
            }
        }
        if (bos != null) tok.BosId = Check(bos.Value, "bos");
        if (eos != null) tok.EosId = Check(eos.Value, "eos");

        int Check(int id, string what) => (uint)id < (uint)tok.VocabSize ? id
            : throw new InvalidDataException($"'{dir}': {what} token id {id} is outside the tokenizer's vocabulary of {tok.VocabSize}.");

        int? Lookup(JsonElement tc, string name)
        {
            var content = tc.TryGetProperty(name, out var v) ? v.ValueKind switch
            {
                JsonValueKind.String => v.GetString(),
                JsonValueKind.Object => Str(v, "content"),
                _ => null,
            } : null;
            if (string.IsNullOrEmpty(content)) return null;
            var ids = tok.Encode(content);
            return ids.Length == 1 ? ids[0] : null;
        }
    }

    private static int? IdOrFirst(JsonElement obj, string name, string path)
    {
        if (!obj.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.Number when v.TryGetInt32(out var i) => i,
            JsonValueKind.Array when v.GetArrayLength() > 0 && v[0].TryGetInt32(out var i) => i,
            JsonValueKind.Null or JsonValueKind.Array => null,
            _ => throw new InvalidDataException($"'{path}': {name} is neither an id, a list of ids nor null."),
        };
    }

    // ───────────────────────────── JSON helpers ─────────────────────────────

    private static JsonDocument ParseJson(string path)
    {
        try
        {
            using var s = File.OpenRead(path);
            return JsonDocument.Parse(s, new JsonDocumentOptions { AllowTrailingCommas = true, MaxDepth = 256 });
        }
        catch (FileNotFoundException)
        {
            throw new FileNotFoundException($"'{path}' does not exist.", path);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }
    }

    private static IEnumerable<string> ReadLines(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"'{path}' does not exist.", path);
        return File.ReadLines(path, Encoding.UTF8);
    }

    private static Dictionary<string, int> ReadVocab(JsonElement el, string path, string what)
    {
        if (el.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"'{path}': {what} is not a JSON object of token → id.");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in el.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out var id) || id < 0)
                throw new InvalidDataException($"'{path}': {what}[\"{p.Name}\"] is not an id ≥ 0.");
            vocab[p.Name] = id;
        }
        if (vocab.Count == 0) throw new InvalidDataException($"'{path}': {what} is empty.");
        return vocab;
    }

    private static JsonElement? Get(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Object ? v : null;

    private static string? Str(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool? Bool(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static int? Int(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;

    /// <summary>A Replace step's pattern when it is a plain string ({"String": "▁"}).</summary>
    private static string? PatternString(JsonElement x) =>
        x.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object ? Str(p, "String") : null;

    /// <summary>A component and, for a Sequence, its parts (normalizers, pre_tokenizers, decoders), in order.</summary>
    private static IEnumerable<JsonElement> Flatten(JsonElement el)
    {
        if (Str(el, "type") == "Sequence")
        {
            var key = el.TryGetProperty("normalizers", out var n) ? n : el.TryGetProperty("pretokenizers", out var p) ? p : el.TryGetProperty("decoders", out var d) ? d : default;
            if (key.ValueKind == JsonValueKind.Array)
                foreach (var x in key.EnumerateArray())
                    foreach (var y in Flatten(x))
                        yield return y;
            yield break;
        }
        yield return el;
    }

    private static bool HasType(JsonElement? el, string type) => el is { } e && Flatten(e).Any(x => Str(x, "type") == type);
}
