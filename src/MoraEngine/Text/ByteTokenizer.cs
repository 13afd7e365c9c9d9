using System.Text;

namespace MoraEngine.Text;

/// <summary>
/// The engine's own byte-level scheme, as <c>mora train --text</c> uses it (<see cref="Training.TextBatchSource"/>):
/// each UTF-8 byte of the text is one token, id = byte value, vocabulary 256, no BOS or EOS.
/// </summary>
public sealed class ByteTokenizer : TextTokenizer
{
    public static ByteTokenizer Instance { get; } = new();

    public override string Kind => "byte";

    public override int VocabSize => 256;

    public override int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var bytes = Encoding.UTF8.GetBytes(text);
        var ids = new int[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) ids[i] = bytes[i];
        return ids;
    }

    /// <summary>UTF-8 decoding of the bytes; a byte sequence that is not valid UTF-8 becomes U+FFFD.</summary>
    public override string Decode(ReadOnlySpan<int> ids)
    {
        CheckIds(ids);
        var bytes = ids.Length <= 1024 ? stackalloc byte[ids.Length] : new byte[ids.Length];
        for (var i = 0; i < ids.Length; i++) bytes[i] = (byte)ids[i];
        return Encoding.UTF8.GetString(bytes);
    }

    public override string? TokenString(int id) => (uint)id < 256 ? $"<0x{id:X2}>" : null;
}
