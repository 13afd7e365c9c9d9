using System.Buffers;
using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace MoraEngine.IO;

/// <summary>A named float32 tensor as stored in (or loaded from) a safetensors file.</summary>
/// <param name="Name">Tensor name (the key in the file header). Must be non-empty.</param>
/// <param name="Shape">Dimensions, outermost first. <c>[]</c> is a scalar; a 0 dimension makes an empty tensor.</param>
/// <param name="Data">Row-major element data; its length must equal the product of <paramref name="Shape"/>.</param>
public sealed record SafeTensor(string Name, int[] Shape, float[] Data);

/// <summary>Header entry of one tensor: what is stored, without reading the data.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DType">Stored dtype as spelled in the file (e.g. <c>F32</c>, <c>BF16</c>, <c>I64</c>).</param>
/// <param name="Shape">Dimensions, outermost first.</param>
/// <param name="Begin">Start of the tensor's bytes, relative to the start of the data section.</param>
/// <param name="End">End (exclusive) of the tensor's bytes, relative to the start of the data section.</param>
public sealed record SafeTensorInfo(string Name, string DType, int[] Shape, long Begin, long End);

/// <summary>The fully loaded, validated contents of a safetensors file. All tensors are float32 in memory.</summary>
public sealed class SafetensorsFile
{
    internal SafetensorsFile(string path, IReadOnlyDictionary<string, SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Tensors by name (ordinal comparison).</summary>
    public IReadOnlyDictionary<string, SafeTensor> Tensors { get; }

    /// <summary>The optional <c>__metadata__</c> string map; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The path the file was loaded from.</summary>
    public string Path { get; }

    /// <summary>Returns the tensor called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such tensor; the message names the file and the tensor.</exception>
    public SafeTensor Get(string name)
    {
        if (Tensors.TryGetValue(name, out var tensor))
            return tensor;
        throw new KeyNotFoundException(
            $"Safetensors file '{Path}' has no tensor named '{name}' (it holds {Tensors.Count} tensor(s)).");
    }
}

/// <summary>
/// Reader and writer for the safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// mapping tensor names to <c>{"dtype","shape","data_offsets"}</c> (plus an optional <c>__metadata__</c> string map),
/// then the raw little-endian tensor bytes.
/// </summary>
public static class Safetensors
{
    /// <summary>Headers larger than this are treated as corrupt rather than allocated (same limit as the reference reader).</summary>
    internal const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    // Bulk reads/writes go through spans; keeping each chunk well below 2 GB keeps byte-span lengths in int range
    // for tensors of any element count.
    private const int BulkChunkFloats = 1 << 24;

    // Scratch size for dtype conversion (F16/BF16/F64 -> F32); a multiple of every element size.
    private const int ConvertChunkBytes = 1 << 20;

    private static readonly JsonDocumentOptions JsonOptions = new()
    {
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
    };

    // ---------------------------------------------------------------- writing

    /// <summary>
    /// Writes <paramref name="tensors"/> (as F32, names sorted ordinally) and optional metadata to <paramref name="path"/>.
    /// The write is atomic: data goes to a temporary file in the same directory, is flushed to disk and then moved
    /// over the target, so on any failure an existing file at <paramref name="path"/> is left untouched.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor has an empty or reserved name, a duplicate name, a negative
    /// dimension, or a data length that does not match its shape.</exception>
    /// <param name="path">Target file.</param>
    /// <param name="tensors">The tensors.</param>
    /// <param name="metadata">String metadata.</param>
    /// <param name="checksum">Also store the SHA-256 of the data section under <see cref="ChecksumKey"/>, which
    /// <see cref="Load"/> then verifies (the engine's own checkpoints, weights and adapters do).</param>
    public static void Save(string path, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, bool checksum = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);

        // The header (with every offset) precedes the data, so all tensors must be known before writing starts.
        // This only collects references; no tensor data is copied.
        var list = new List<SafeTensor>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            ValidateForSave(t, names);
            list.Add(t);
        }
        list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        if (metadata is not null)
        {
            foreach (var (k, v) in metadata)
            {
                if (k is null || v is null)
                    throw new ArgumentException("Metadata keys and values must not be null.", nameof(metadata));
            }
        }

        // A checksum of the data section in the metadata: a flipped bit anywhere in the tensors is caught on load.
        var meta = metadata?.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal) ?? new Dictionary<string, string>(StringComparer.Ordinal);
        if (checksum)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            foreach (var t in list) HashFloats(sha, t.Data);
            meta[ChecksumKey] = Convert.ToHexStringLower(sha.GetHashAndReset());
        }
        byte[] header = BuildHeader(list, meta);

        string fullPath = System.IO.Path.GetFullPath(path);
        string? dir = System.IO.Path.GetDirectoryName(fullPath);
        if (!string.IsNullOrEmpty(dir))
            Directory.CreateDirectory(dir);
        RemoveOrphanedTemporaries(fullPath);

        // The process id in the name tells a later save whether the writer is still alive.
        string tmp = fullPath + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
                fs.Write(prefix);
                fs.Write(header);
                foreach (var t in list)
                    WriteFloats(fs, t.Data);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>Metadata key of the SHA-256 of the data section that <see cref="Save"/> writes and <see cref="Load"/> checks.</summary>
    public const string ChecksumKey = "moraengine_data_sha256";

    private static void HashFloats(IncrementalHash sha, float[] data)
    {
        if (BitConverter.IsLittleEndian)
        {
            for (int i = 0; i < data.Length; i += BulkChunkFloats)
                sha.AppendData(MemoryMarshal.AsBytes(data.AsSpan(i, Math.Min(BulkChunkFloats, data.Length - i))));
            return;
        }
        var buf = new byte[4];
        foreach (var v in data)
        {
            BinaryPrimitives.WriteSingleLittleEndian(buf, v);
            sha.AppendData(buf);
        }
    }

    /// <summary>
    /// Deletes temporary files left next to <paramref name="fullPath"/> by saves that were killed: those of a process
    /// that no longer runs, and this process's own (a save that failed earlier).
    /// </summary>
    private static void RemoveOrphanedTemporaries(string fullPath)
    {
        var dir = System.IO.Path.GetDirectoryName(fullPath);
        if (string.IsNullOrEmpty(dir) || !Directory.Exists(dir)) return;
        var prefix = System.IO.Path.GetFileName(fullPath) + ".tmp-";
        try
        {
            foreach (var f in Directory.EnumerateFiles(dir, prefix + "*"))
            {
                var rest = System.IO.Path.GetFileName(f)[prefix.Length..];
                var dash = rest.IndexOf('-');
                if (dash <= 0 || !int.TryParse(rest[..dash], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)) continue;
                if (pid != Environment.ProcessId && IsRunning(pid)) continue;
                TryDelete(f);
            }
        }
        catch (IOException)
        {
            // Cleaning up is a courtesy; the save itself does not depend on it.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static void ValidateForSave(SafeTensor? t, HashSet<string> names)
    {
        if (t is null)
            throw new ArgumentException("Tensor list contains a null entry.", "tensors");
        if (string.IsNullOrEmpty(t.Name))
            throw new ArgumentException("Tensor name must not be empty.", "tensors");
        if (t.Name == MetadataKey)
            throw new ArgumentException($"Tensor name '{MetadataKey}' is reserved by the safetensors format.", "tensors");
        if (!names.Add(t.Name))
            throw new ArgumentException($"Duplicate tensor name '{t.Name}'.", "tensors");
        if (t.Shape is null)
            throw new ArgumentException($"Tensor '{t.Name}' has a null shape.", "tensors");
        if (t.Data is null)
            throw new ArgumentException($"Tensor '{t.Name}' has null data.", "tensors");
        foreach (int d in t.Shape)
        {
            if (d < 0)
                throw new ArgumentException($"Tensor '{t.Name}' has a negative dimension in shape [{string.Join(",", t.Shape)}].", "tensors");
        }
        // Any product above int.MaxValue cannot match an array length, so the running product is capped there
        // (unless a later 0 dimension makes it empty).
        long count = t.Shape.Contains(0) ? 0 : 1;
        foreach (int d in t.Shape)
            count = Math.Min(count * d, (long)int.MaxValue + 1);
        if (count != t.Data.Length)
            throw new ArgumentException(
                $"Tensor '{t.Name}' has shape [{string.Join(",", t.Shape)}] ({count} elements) but {t.Data.Length} data elements.", "tensors");
    }

    private static byte[] BuildHeader(List<SafeTensor> sorted, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps non-ASCII names readable (as Python's writer does); the header is never embedded in HTML.
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var kv in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    w.WriteString(kv.Key, kv.Value);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in sorted)
            {
                long end = offset + (long)t.Data.Length * sizeof(float);
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", "F32");
                w.WriteStartArray("shape");
                foreach (int d in t.Shape)
                    w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(end);
                w.WriteEndArray();
                w.WriteEndObject();
                offset = end;
            }
            w.WriteEndObject();
        }

        // Pad with spaces so the data section starts 8-byte aligned (the convention of the reference writer).
        int len = buffer.WrittenCount;
        int padded = (len + 7) & ~7;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(len).Fill((byte)' ');
        return header;
    }

    private static void WriteFloats(Stream s, float[] data)
    {
        if (BitConverter.IsLittleEndian)
        {
            for (int i = 0; i < data.Length; i += BulkChunkFloats)
            {
                int n = Math.Min(BulkChunkFloats, data.Length - i);
                s.Write(MemoryMarshal.AsBytes(data.AsSpan(i, n)));
            }
            return;
        }

        // Big-endian host: byte-swap through a scratch buffer so the caller's array is never modified.
        int[] scratch = ArrayPool<int>.Shared.Rent(ConvertChunkBytes / sizeof(int));
        try
        {
            var src = MemoryMarshal.Cast<float, int>(data.AsSpan());
            for (int i = 0; i < src.Length; i += scratch.Length)
            {
                int n = Math.Min(scratch.Length, src.Length - i);
                BinaryPrimitives.ReverseEndianness(src.Slice(i, n), scratch.AsSpan(0, n));
                s.Write(MemoryMarshal.AsBytes(scratch.AsSpan(0, n)));
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(scratch);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the original exception is what the caller needs to see.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    // ---------------------------------------------------------------- reading

    /// <summary>
    /// Loads and validates every tensor in <paramref name="path"/>. F32 data is read in bulk; F16, BF16 and F64
    /// tensors are converted to float32.
    /// </summary>
    /// <exception cref="SafetensorsException">The file is malformed or truncated, or a tensor has a dtype that
    /// cannot be converted to float32 (the message names the file and the tensor).</exception>
    public static SafetensorsFile Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        var header = ParseHeader(handle, path);

        var tensors = new Dictionary<string, SafeTensor>(header.Entries.Count, StringComparer.Ordinal);
        foreach (var e in header.Entries)
        {
            long count = ElementCount(e.Shape);
            if (count > Array.MaxLength)
                throw new SafetensorsException(path, e.Name, $"{count} elements exceed the largest array .NET can allocate.");
            var data = new float[count];
            ReadTensor(handle, path, header.DataStart, e, data);
            tensors.Add(e.Name, new SafeTensor(e.Name, e.Shape, data));
        }
        if (header.Metadata.TryGetValue(ChecksumKey, out var expected))
            VerifyChecksum(handle, path, header.DataStart, RandomAccess.GetLength(handle) - header.DataStart, expected);
        return new SafetensorsFile(path, tensors, header.Metadata);
    }

    /// <summary>Reads one tensor's data as float32 into <paramref name="data"/> (exactly its element count).</summary>
    private static void ReadTensor(SafeFileHandle handle, string path, long dataStart, SafeTensorInfo e, Span<float> data)
    {
        if (data.Length != ElementCount(e.Shape))
            throw new ArgumentException($"{path}: tensor '{e.Name}' has {ElementCount(e.Shape)} elements, the destination {data.Length}.", nameof(data));
        long fileOffset = dataStart + e.Begin;
        switch (e.DType)
        {
            case "F32": ReadF32(handle, path, e.Name, fileOffset, data); break;
            case "F16": ReadConverted(handle, path, e.Name, fileOffset, data, 2, ConvertF16); break;
            case "BF16": ReadConverted(handle, path, e.Name, fileOffset, data, 2, ConvertBF16); break;
            case "F64": ReadConverted(handle, path, e.Name, fileOffset, data, 8, ConvertF64); break;
            default:
                throw new SafetensorsException(path, e.Name,
                    $"dtype '{e.DType}' is not supported; only F32, F16, BF16 and F64 can be loaded as float32.");
        }
    }

    private static void VerifyChecksum(SafeFileHandle handle, string path, long dataStart, long dataLength, string expected)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ConvertChunkBytes);
        try
        {
            for (long at = 0; at < dataLength;)
            {
                int n = (int)Math.Min(buffer.Length, dataLength - at);
                ReadExactly(handle, path, null, buffer.AsSpan(0, n), dataStart + at);
                sha.AppendData(buffer, 0, n);
                at += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        var actual = Convert.ToHexStringLower(sha.GetHashAndReset());
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
            throw new SafetensorsException(path, null, $"the tensor data does not match the checksum in the metadata ('{ChecksumKey}'): the file is corrupt");
    }

    /// <summary>
    /// Opens a file for reading tensor by tensor (large checkpoints: only the tensor being read is held in memory).
    /// The header is validated on opening.
    /// </summary>
    public static SafetensorsReader Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            var header = ParseHeader(handle, path);
            return new SafetensorsReader(path, handle, header.Entries, header.Metadata, header.DataStart);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    internal static void ReadInto(SafeFileHandle handle, string path, long dataStart, SafeTensorInfo e, Span<float> data) =>
        ReadTensor(handle, path, dataStart, e, data);

    /// <summary>
    /// Reads and validates only the header of <paramref name="path"/>: names, dtypes, shapes and offsets.
    /// Unlike <see cref="Load"/>, any standard safetensors dtype (integers, BOOL, FP8, ...) is listed.
    /// </summary>
    /// <exception cref="SafetensorsException">The header is malformed or inconsistent with the file size.</exception>
    public static IReadOnlyDictionary<string, SafeTensorInfo> ReadHeader(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var header = ParseHeader(handle, path);
        var result = new Dictionary<string, SafeTensorInfo>(header.Entries.Count, StringComparer.Ordinal);
        foreach (var e in header.Entries)
            result.Add(e.Name, e);
        return result;
    }

    private sealed record ParsedHeader(List<SafeTensorInfo> Entries, Dictionary<string, string> Metadata, long DataStart);

    private static int DTypeSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => 0,
    };

    private static long ElementCount(int[] shape)
    {
        long count = 1;
        foreach (int d in shape)
            count *= d; // already validated not to overflow in ParseEntry
        return count;
    }

    private static ParsedHeader ParseHeader(SafeFileHandle handle, string path)
    {
        long fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8)
            throw new SafetensorsException(path, null, $"file is {fileLength} bytes, shorter than the 8-byte header length prefix.");

        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(handle, path, null, prefix, 0);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)MaxHeaderBytes)
            throw new SafetensorsException(path, null, $"header length {headerLength} is absurd (limit {MaxHeaderBytes} bytes); the file is corrupt or not safetensors.");
        if ((long)headerLength > fileLength - 8)
            throw new SafetensorsException(path, null, $"header length {headerLength} exceeds the {fileLength - 8} bytes after the length prefix (file truncated?).");

        var headerBytes = new byte[(int)headerLength];
        ReadExactly(handle, path, null, headerBytes, 8);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        if (!System.Text.Unicode.Utf8.IsValid(headerBytes))
            throw new SafetensorsException(path, null, "header is not valid UTF-8 (corrupt file?).");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes, JsonOptions);
        }
        catch (JsonException ex)
        {
            throw new SafetensorsException(path, null, $"header is not valid JSON: {ex.Message}", ex);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException(path, null, $"header JSON must be an object, found {doc.RootElement.ValueKind}.");

            var entries = new List<SafeTensorInfo>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            Dictionary<string, string>? metadata = null;
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                // JsonDocument keeps duplicate keys, so they are detected here rather than silently shadowed.
                if (!seen.Add(prop.Name))
                    throw new SafetensorsException(path, prop.Name == MetadataKey ? null : prop.Name,
                        prop.Name == MetadataKey ? $"header contains '{MetadataKey}' more than once." : "tensor name appears more than once in the header.");
                if (prop.Name == MetadataKey)
                    metadata = ParseMetadata(prop.Value, path);
                else
                    entries.Add(ParseEntry(prop.Name, prop.Value, path, dataLength));
            }

            CheckNoOverlap(entries, path);
            CheckCovers(entries, path, dataLength);
            return new ParsedHeader(entries, metadata ?? new Dictionary<string, string>(StringComparer.Ordinal), dataStart);
        }
    }

    private static Dictionary<string, string> ParseMetadata(JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(path, null, $"'{MetadataKey}' must be an object of strings, found {value.ValueKind}.");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var kv in value.EnumerateObject())
        {
            if (kv.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsException(path, null, $"'{MetadataKey}' value for key '{kv.Name}' must be a string, found {kv.Value.ValueKind}.");
            if (!metadata.TryAdd(kv.Name, kv.Value.GetString()!))
                throw new SafetensorsException(path, null, $"'{MetadataKey}' contains key '{kv.Name}' more than once.");
        }
        return metadata;
    }

    private static SafeTensorInfo ParseEntry(string name, JsonElement value, string path, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(path, name, $"header entry must be an object, found {value.ValueKind}.");

        if (!value.TryGetProperty("dtype", out var dtypeEl))
            throw new SafetensorsException(path, name, "header entry is missing 'dtype'.");
        if (!value.TryGetProperty("shape", out var shapeEl))
            throw new SafetensorsException(path, name, "header entry is missing 'shape'.");
        if (!value.TryGetProperty("data_offsets", out var offsetsEl))
            throw new SafetensorsException(path, name, "header entry is missing 'data_offsets'.");

        if (dtypeEl.ValueKind != JsonValueKind.String)
            throw new SafetensorsException(path, name, $"'dtype' must be a string, found {dtypeEl.ValueKind}.");
        string dtype = dtypeEl.GetString()!;
        int elementSize = DTypeSize(dtype);
        if (elementSize == 0)
            throw new SafetensorsException(path, name, $"unknown dtype '{dtype}'.");

        if (shapeEl.ValueKind != JsonValueKind.Array)
            throw new SafetensorsException(path, name, $"'shape' must be an array, found {shapeEl.ValueKind}.");
        var shape = new int[shapeEl.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var dimEl in shapeEl.EnumerateArray())
        {
            if (dimEl.ValueKind != JsonValueKind.Number || !dimEl.TryGetInt64(out long dim))
                throw new SafetensorsException(path, name, $"'shape' entries must be integers, found {dimEl.GetRawText()}.");
            if (dim < 0)
                throw new SafetensorsException(path, name, $"'shape' has negative dimension {dim}.");
            if (dim > int.MaxValue)
                throw new SafetensorsException(path, name, $"'shape' dimension {dim} is too large.");
            shape[i++] = (int)dim;
            // Cap the running product so absurd shapes are reported instead of overflowing.
            count = count > long.MaxValue / Math.Max(dim, 1) ? long.MaxValue : count * dim;
        }

        if (offsetsEl.ValueKind != JsonValueKind.Array || offsetsEl.GetArrayLength() != 2)
            throw new SafetensorsException(path, name, $"'data_offsets' must be [begin, end], found {offsetsEl.GetRawText()}.");
        if (!offsetsEl[0].TryGetNonNegative(out long begin) || !offsetsEl[1].TryGetNonNegative(out long end))
            throw new SafetensorsException(path, name, $"'data_offsets' must be two non-negative integers, found {offsetsEl.GetRawText()}.");
        if (begin > end)
            throw new SafetensorsException(path, name, $"'data_offsets' [{begin}, {end}] has begin > end.");

        long expectedBytes = count > long.MaxValue / elementSize ? long.MaxValue : count * elementSize;
        if (end - begin != expectedBytes)
            throw new SafetensorsException(path, name,
                $"'data_offsets' [{begin}, {end}] span {end - begin} bytes but shape [{string.Join(",", shape)}] of {dtype} needs {expectedBytes}.");
        if (end > dataLength)
            throw new SafetensorsException(path, name,
                $"'data_offsets' [{begin}, {end}] extend beyond the {dataLength}-byte data section (file truncated?).");

        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    private static bool TryGetNonNegative(this JsonElement el, out long value)
    {
        value = 0;
        return el.ValueKind == JsonValueKind.Number && el.TryGetInt64(out value) && value >= 0;
    }

    private static void CheckNoOverlap(List<SafeTensorInfo> entries, string path)
    {
        // Empty tensors occupy no bytes and cannot overlap anything.
        var byBegin = entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin).ToList();
        for (int i = 1; i < byBegin.Count; i++)
        {
            var prev = byBegin[i - 1];
            var cur = byBegin[i];
            if (cur.Begin < prev.End)
                throw new SafetensorsException(path, cur.Name,
                    $"'data_offsets' [{cur.Begin}, {cur.End}] overlap tensor '{prev.Name}' at [{prev.Begin}, {prev.End}].");
        }
    }

    /// <summary>
    /// The tensors must tile the data section exactly, as the reference writer lays them out: no hole between them
    /// and nothing after the last one. A header length one byte off, or bytes appended to the file, fail here
    /// instead of loading shifted (garbage) weights.
    /// </summary>
    private static void CheckCovers(List<SafeTensorInfo> entries, string path, long dataLength)
    {
        long expected = 0;
        foreach (var e in entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin))
        {
            if (e.Begin != expected)
                throw new SafetensorsException(path, e.Name, $"'data_offsets' [{e.Begin}, {e.End}] leave a hole of {e.Begin - expected} bytes before this tensor (corrupt header?).");
            expected = e.End;
        }
        if (expected != dataLength)
            throw new SafetensorsException(path, null,
                $"the data section is {dataLength} bytes but the tensors end at byte {expected}: {dataLength - expected} bytes are unaccounted for (header length wrong or bytes appended?).");
    }

    private static void ReadExactly(SafeFileHandle handle, string path, string? tensor, Span<byte> buffer, long fileOffset)
    {
        while (!buffer.IsEmpty)
        {
            int n = RandomAccess.Read(handle, buffer, fileOffset);
            if (n == 0)
                throw new SafetensorsException(path, tensor, $"unexpected end of file at offset {fileOffset} (file truncated or changed while reading).");
            buffer = buffer[n..];
            fileOffset += n;
        }
    }

    private static void ReadF32(SafeFileHandle handle, string path, string name, long fileOffset, Span<float> data)
    {
        // Read straight into the destination array: no intermediate byte[] copy.
        for (int i = 0; i < data.Length; i += BulkChunkFloats)
        {
            int n = Math.Min(BulkChunkFloats, data.Length - i);
            ReadExactly(handle, path, name, MemoryMarshal.AsBytes(data.Slice(i, n)), fileOffset + (long)i * sizeof(float));
        }
        if (!BitConverter.IsLittleEndian)
        {
            var bits = MemoryMarshal.Cast<float, int>(data);
            BinaryPrimitives.ReverseEndianness(bits, bits);
        }
    }

    private delegate void Converter(Span<byte> source, Span<float> destination);

    private static void ReadConverted(SafeFileHandle handle, string path, string name, long fileOffset, Span<float> data, int elementSize, Converter convert)
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(ConvertChunkBytes);
        try
        {
            int perChunk = ConvertChunkBytes / elementSize;
            for (int i = 0; i < data.Length; i += perChunk)
            {
                int n = Math.Min(perChunk, data.Length - i);
                var bytes = scratch.AsSpan(0, n * elementSize);
                ReadExactly(handle, path, name, bytes, fileOffset + (long)i * elementSize);
                convert(bytes, data.Slice(i, n));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static void ConvertF16(Span<byte> source, Span<float> destination)
    {
        var bits = MemoryMarshal.Cast<byte, ushort>(source);
        if (!BitConverter.IsLittleEndian)
            BinaryPrimitives.ReverseEndianness(bits, bits);
        TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(bits), destination);
    }

    private static void ConvertBF16(Span<byte> source, Span<float> destination)
    {
        var bits = MemoryMarshal.Cast<byte, ushort>(source);
        if (!BitConverter.IsLittleEndian)
            BinaryPrimitives.ReverseEndianness(bits, bits);
        // bfloat16 is the top half of an IEEE float32, so widening is a shift (exact, NaN payloads preserved).
        for (int i = 0; i < bits.Length; i++)
            destination[i] = BitConverter.Int32BitsToSingle(bits[i] << 16);
    }

    private static void ConvertF64(Span<byte> source, Span<float> destination)
    {
        var bits = MemoryMarshal.Cast<byte, long>(source);
        if (!BitConverter.IsLittleEndian)
            BinaryPrimitives.ReverseEndianness(bits, bits);
        var doubles = MemoryMarshal.Cast<long, double>(bits);
        for (int i = 0; i < doubles.Length; i++)
            destination[i] = (float)doubles[i];
    }
}

/// <summary>An open safetensors file whose tensors are read one at a time, converted to float32.</summary>
public sealed class SafetensorsReader : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafeTensorInfo> _entries;

    internal SafetensorsReader(string path, SafeFileHandle handle, List<SafeTensorInfo> entries, Dictionary<string, string> metadata, long dataStart)
    {
        Path = path;
        _handle = handle;
        _dataStart = dataStart;
        _entries = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        Metadata = metadata;
    }

    /// <summary>The file's path (for messages).</summary>
    public string Path { get; }

    /// <summary>Every tensor's name, dtype, shape and offsets.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors => _entries;

    /// <summary>The <c>__metadata__</c> strings.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Reads tensor <paramref name="name"/> as float32 into <paramref name="destination"/> (its exact element count).</summary>
    public void ReadInto(string name, Span<float> destination)
    {
        if (!_entries.TryGetValue(name, out var e)) throw new SafetensorsException(Path, name, "no such tensor in the file");
        Safetensors.ReadInto(_handle, Path, _dataStart, e, destination);
    }

    /// <summary>Reads tensor <paramref name="name"/> as a new float32 array.</summary>
    public float[] Read(string name)
    {
        if (!_entries.TryGetValue(name, out var e)) throw new SafetensorsException(Path, name, "no such tensor in the file");
        long count = 1;
        foreach (var d in e.Shape) count *= d;
        if (count > Array.MaxLength) throw new SafetensorsException(Path, name, $"{count} elements exceed the largest array .NET can allocate.");
        var data = new float[count];
        Safetensors.ReadInto(_handle, Path, _dataStart, e, data);
        return data;
    }

    public void Dispose() => _handle.Dispose();
}
