using Google.Protobuf;

namespace MoraEngine.Text;

/// <summary>
/// The parts of a SentencePiece tokenizer.model (sentencepiece_model.proto's ModelProto) that the engine needs
/// beside what Microsoft.ML.Tokenizers exposes: every piece with its score and type, and the model type.
/// </summary>
internal sealed class SentencePieceModelFile
{
    /// <summary>sentencepiece_model.proto's SentencePiece.Type.</summary>
    public enum PieceType
    {
        Normal = 1,
        Unknown = 2,
        Control = 3,
        UserDefined = 4,
        Unused = 5,
        Byte = 6,
    }

    /// <summary>TrainerSpec.ModelType.</summary>
    public enum ModelType
    {
        Unigram = 1,
        Bpe = 2,
        Word = 3,
        Char = 4,
    }

    public readonly record struct Piece(string Text, float Score, PieceType Type);

    public required IReadOnlyList<Piece> Pieces { get; init; }
    public ModelType Type { get; init; } = ModelType.Unigram;
    public bool ByteFallback { get; init; }
    public bool TreatWhitespaceAsSuffix { get; init; }

    public static SentencePieceModelFile Parse(byte[] data, string path)
    {
        try
        {
            var pieces = new List<Piece>();
            var type = ModelType.Unigram;
            bool byteFallback = false, suffix = false;
            var input = new CodedInputStream(data);
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 1 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        pieces.Add(ReadPiece(new CodedInputStream(input.ReadBytes().ToByteArray())));
                        break;
                    case 2 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        var spec = new CodedInputStream(input.ReadBytes().ToByteArray());
                        uint t;
                        while ((t = spec.ReadTag()) != 0)
                            switch (WireFormat.GetTagFieldNumber(t))
                            {
                                case 3: type = (ModelType)spec.ReadEnum(); break;
                                case 24: suffix = spec.ReadBool(); break;
                                case 35: byteFallback = spec.ReadBool(); break;
                                default: spec.SkipLastField(); break;
                            }
                        break;
                    default:
                        input.SkipLastField();
                        break;
                }
            }
            if (pieces.Count == 0) throw new InvalidDataException($"SentencePiece model '{path}' holds no pieces.");
            return new SentencePieceModelFile { Pieces = pieces, Type = type, ByteFallback = byteFallback, TreatWhitespaceAsSuffix = suffix };
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"'{path}' is not a SentencePiece model (tokenizer.model): {e.Message}", e);
        }
    }

    private static Piece ReadPiece(CodedInputStream s)
    {
        string text = "";
        float score = 0;
        var type = PieceType.Normal;
        uint t;
        while ((t = s.ReadTag()) != 0)
            switch (WireFormat.GetTagFieldNumber(t))
            {
                case 1: text = s.ReadString(); break;
                case 2: score = s.ReadFloat(); break;
                case 3: type = (PieceType)s.ReadEnum(); break;
                default: s.SkipLastField(); break;
            }
        return new Piece(text, score, type);
    }

    /// <summary>
    /// sentencepiece's decoding: control pieces give nothing, the unknown piece " ⁇ ", byte pieces their byte (runs of
    /// them decode as UTF-8, each byte of an invalid or cut-short sequence as U+FFFD), other pieces their text with "▁" as a space; the first piece that gives any text loses a
    /// leading "▁" when the model adds a dummy prefix. (Microsoft.ML.Tokenizers 2.0.1's SentencePiece decode drops
    /// the unknown piece and strips the "▁" of the first "▁" piece even after byte pieces, e.g. [&lt;0x0A&gt;, ▁▁]
    /// gives "\n " where sentencepiece gives "\n  ".)
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids, bool addDummyPrefix)
    {
        var bytes = new List<byte>();
        var first = true;
        foreach (var id in ids)
        {
            var p = Pieces[id];
            switch (p.Type)
            {
                case PieceType.Control:
                    continue;
                case PieceType.Unknown:
                    bytes.AddRange(" \u2047 "u8);
                    break;
                case PieceType.Byte when p.Text.Length == 6 && byte.TryParse(p.Text.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var b):
                    bytes.Add(b);
                    break;
                default:
                    var text = first && addDummyPrefix && p.Text.StartsWith('▁') ? p.Text[1..] : p.Text;
                    bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(text.Replace('▁', ' ')));
                    if (p.Text.Length == 0) continue;
                    break;
            }
            first = false;
        }
        return Utf8.DecodeEachBadByte(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>
    /// BPE merges from the pieces, as Hugging Face's SentencePiece converter derives them: every split of a piece into
    /// two pieces, ordered by the merged piece's score (best first), then by the two halves' ids. Only normal and
    /// user-defined pieces are merge results (SentencePiece never builds control, byte or unknown pieces from text).
    /// </summary>
    public List<string> DeriveMerges()
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < Pieces.Count; i++) ids.TryAdd(Pieces[i].Text, i);
        var merges = new List<(string Left, string Right, float Score, int Id, int L, int R)>();
        for (var i = 0; i < Pieces.Count; i++)
        {
            var p = Pieces[i];
            if (p.Type is not (PieceType.Normal or PieceType.UserDefined)) continue;
            for (var k = 1; k < p.Text.Length; k++)
            {
                if (char.IsLowSurrogate(p.Text[k])) continue;   // never split a surrogate pair
                var l = p.Text[..k];
                var r = p.Text[k..];
                if (ids.TryGetValue(l, out var li) && ids.TryGetValue(r, out var ri) && Usable(li) && Usable(ri))
                    merges.Add((l, r, p.Score, i, li, ri));
            }
        }
        return merges.OrderByDescending(m => m.Score).ThenBy(m => m.Id).ThenBy(m => m.L).ThenBy(m => m.R)
            .Select(m => m.Left + " " + m.Right).ToList();

        bool Usable(int id) => Pieces[id].Type is PieceType.Normal or PieceType.UserDefined;
    }
}

internal static class Utf8
{
    /// <summary>UTF-8 → text with one U+FFFD per byte that is not part of a valid character (as sentencepiece and Hugging Face's ByteFallback decode).</summary>
    public static string DecodeEachBadByte(ReadOnlySpan<byte> bytes)
    {
        var sb = new System.Text.StringBuilder(bytes.Length);
        while (!bytes.IsEmpty)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes, out var rune, out var used) == System.Buffers.OperationStatus.Done)
            {
                sb.Append(rune.ToString());
                bytes = bytes[used..];
            }
            else
            {
                sb.Append('\uFFFD');
                bytes = bytes[1..];
            }
        }
        return sb.ToString();
    }
}
