using System.Buffers.Binary;
using System.Text;
using MoraEngine.IO;
using Xunit;

namespace MoraEngine.Tests;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "mora-st-" + Guid.NewGuid().ToString("N"));

    public SafetensorsTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
            Directory.Delete(_dir, recursive: true);
    }

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>Writes a raw safetensors file: length prefix, header text (optionally space-padded to 8), data.</summary>
    private string WriteRaw(string fileName, string headerJson, byte[] data, bool pad = true)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        int len = pad ? (header.Length + 7) / 8 * 8 : header.Length;
        var bytes = new byte[8 + len + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)len);
        header.CopyTo(bytes, 8);
        bytes.AsSpan(8 + header.Length, len - header.Length).Fill((byte)' ');
        data.CopyTo(bytes, 8 + len);
        string path = PathOf(fileName);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] U16Le(params ushort[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), values[i]);
        return bytes;
    }

    private static int[] Bits(float[] data) => data.Select(BitConverter.SingleToInt32Bits).ToArray();

    private SafetensorsException LoadFails(string path)
    {
        var ex = Assert.Throws<SafetensorsException>(() => Safetensors.Load(path));
        Assert.Contains(path, ex.Message);
        Assert.Equal(path, ex.FilePath);
        return ex;
    }

    // ------------------------------------------------------------ round trip and format

    [Fact]
    public void RoundTrip_AwkwardShapesAndMetadata_IsBitExact()
    {
        var rng = new Random(1234);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var tensors = new[]
        {
            new SafeTensor("scalar", [], [3.25f]),
            new SafeTensor("empty", [0], []),
            new SafeTensor("empty.inner", [3, 0, 2], []),
            new SafeTensor("one", [1], [-0.0f]),
            new SafeTensor("odd", [7], [float.NaN, BitConverter.Int32BitsToSingle(0x7FC0_1234), float.PositiveInfinity,
                float.NegativeInfinity, float.Epsilon, -float.MaxValue, 1e-40f]),
            new SafeTensor("layers.0.attn.q_proj.weight", [2, 3, 5], Random(30)),
            new SafeTensor("ones", [1, 1, 1, 1], [42f]),
            new SafeTensor("ünïcode name", [4, 1], Random(4)),
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "quotes \" and \\ and ünïcode" };
        string path = PathOf("sub/dir/model.safetensors"); // directory does not exist yet

        Safetensors.Save(path, tensors, metadata);
        var file = Safetensors.Load(path);

        Assert.Equal(path, file.Path);
        Assert.Equal(tensors.Length, file.Tensors.Count);
        foreach (var t in tensors)
        {
            var loaded = file.Get(t.Name);
            Assert.Equal(t.Name, loaded.Name);
            Assert.Equal(t.Shape, loaded.Shape);
            Assert.Equal(Bits(t.Data), Bits(loaded.Data));
        }
        Assert.Equal(metadata.OrderBy(kv => kv.Key), file.Metadata.OrderBy(kv => kv.Key));

        // Tensors are laid out sorted by name, back to back, with no gaps.
        var infos = Safetensors.ReadHeader(path).Values.OrderBy(i => i.Begin).ThenBy(i => i.End).ToList();
        Assert.Equal(tensors.Select(t => t.Name).OrderBy(n => n, StringComparer.Ordinal),
            Safetensors.ReadHeader(path).Values.OrderBy(i => i.Begin).ThenBy(i => i.Name, StringComparer.Ordinal).Select(i => i.Name));
        long expected = 0;
        foreach (var info in infos)
        {
            Assert.Equal("F32", info.DType);
            Assert.Equal(expected, info.Begin);
            expected = info.End;
        }
        Assert.Equal(tensors.Sum(t => t.Data.Length) * 4L, expected);
    }

    [Fact]
    public void TinyFile_ByteLayout_MatchesHandComputedBytes()
    {
        string path = PathOf("tiny.safetensors");
        // Given out of order: the writer must sort names.
        Safetensors.Save(path,
            [new SafeTensor("b", [2], [1.0f, -2.0f]), new SafeTensor("a", [], [0.5f])],
            new Dictionary<string, string> { ["format"] = "pt" });

        // Header JSON, compact, metadata first, then tensors by name. Counted by hand:
        //   {                                    1 ->   1
        //   "__metadata__":{"format":"pt"},     31 ->  32
        //   "a":{"dtype":"F32",                 19 ->  51
        //   "shape":[],"data_offsets":[0,4]},   33 ->  84
        //   "b":{"dtype":"F32",                 19 -> 103
        //   "shape":[2],"data_offsets":[4,12]}  34 -> 137
        //   }                                    1 -> 138, padded with 6 spaces to 144 = 0x90.
        const string json =
            "{\"__metadata__\":{\"format\":\"pt\"}," +
            "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}," +
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        Assert.Equal(138, json.Length);
        var expected = new List<byte> { 0x90, 0, 0, 0, 0, 0, 0, 0 };
        expected.AddRange(Encoding.ASCII.GetBytes(json + "      "));
        expected.AddRange(new byte[] { 0x00, 0x00, 0x00, 0x3F }); // a = 0.5f
        expected.AddRange(new byte[] { 0x00, 0x00, 0x80, 0x3F }); // b[0] = 1.0f
        expected.AddRange(new byte[] { 0x00, 0x00, 0x00, 0xC0 }); // b[1] = -2.0f

        Assert.Equal(expected.ToArray(), File.ReadAllBytes(path));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void Header_IsSpacePaddedToMultipleOfEight(int nameLength)
    {
        string path = PathOf("pad.safetensors");
        Safetensors.Save(path, [new SafeTensor(new string('x', nameLength), [1], [7f])]);

        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);
        Assert.Equal(8 + n + 4, bytes.Length);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        string trimmed = header.TrimEnd(' ');
        Assert.EndsWith("}", trimmed);
        Assert.True(header.Length - trimmed.Length < 8);
        Assert.Equal(7f, BitConverter.ToSingle(bytes, 8 + (int)n));
    }

    [Fact]
    public void Load_AcceptsPythonStyleUnpaddedHeader_WithAnyKeyOrder()
    {
        // As a Python tool might write it: no padding (odd length), keys in another order, spaces after separators,
        // metadata after the tensors, and data not in name order.
        const string json = "{\"w\": {\"data_offsets\": [8, 20], \"shape\": [3], \"dtype\": \"F32\"}, " +
                            "\"b\": {\"shape\": [2], \"dtype\": \"F32\", \"data_offsets\": [0, 8]}, " +
                            "\"__metadata__\": {\"format\": \"np\"}}";
        var data = new float[] { 10f, 20f, 1f, 2f, 3f }.SelectMany(BitConverter.GetBytes).ToArray();
        string path = WriteRaw("python.safetensors", json, data, pad: false);
        Assert.NotEqual(0, Encoding.UTF8.GetByteCount(json) % 8);

        var file = Safetensors.Load(path);

        Assert.Equal(new[] { 10f, 20f }, file.Get("b").Data);
        Assert.Equal(new[] { 1f, 2f, 3f }, file.Get("w").Data);
        Assert.Equal(new[] { 3 }, file.Get("w").Shape);
        Assert.Equal("np", file.Metadata["format"]);
    }

    [Fact]
    public void ReadHeader_ListsAllDtypesWithoutConverting()
    {
        const string json = "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}," +
                            "\"x\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[16,20]}}";
        string path = WriteRaw("header.safetensors", json, new byte[20]);

        var header = Safetensors.ReadHeader(path);

        Assert.Equal(2, header.Count);
        Assert.Equal(new SafeTensorInfo("ids", "I64", header["ids"].Shape, 0, 16), header["ids"]);
        Assert.Equal(new[] { 2 }, header["ids"].Shape);
        Assert.Equal("F32", header["x"].DType);
        Assert.Equal(new[] { 1, 1 }, header["x"].Shape);
        Assert.Equal((16L, 20L), (header["x"].Begin, header["x"].End));
    }

    [Fact]
    public void Get_MissingTensor_NamesFileAndTensor()
    {
        string path = PathOf("get.safetensors");
        Safetensors.Save(path, [new SafeTensor("present", [1], [1f])]);
        var file = Safetensors.Load(path);

        var ex = Assert.Throws<KeyNotFoundException>(() => file.Get("absent.weight"));
        Assert.Contains(path, ex.Message);
        Assert.Contains("absent.weight", ex.Message);
    }

    // ------------------------------------------------------------ dtype conversion

    [Fact]
    public void Load_F16_ConvertsToFloat32()
    {
        // 1.0, -2.0, 0.5, 65504 (max), 2^-24 (smallest subnormal), +inf, -0.0, -0.333251953125
        var data = U16Le(0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00, 0x8000, 0xB555);
        string path = WriteRaw("f16.safetensors", "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[0,16]}}", data);

        var t = Safetensors.Load(path).Get("h");

        Assert.Equal(new[] { 2, 4 }, t.Shape);
        Assert.Equal(new[] { 1f, -2f, 0.5f, 65504f, MathF.Pow(2, -24), float.PositiveInfinity, -0.0f, -0.333251953125f }, t.Data);
        Assert.True(float.IsNegative(t.Data[6]));
    }

    [Fact]
    public void Load_LargeF16_ConvertsAcrossChunkBoundaries()
    {
        // Bigger than the 1 MB conversion scratch buffer, with an odd element count.
        const int n = 700_001;
        var expected = new float[n];
        var bits = new ushort[n];
        for (int i = 0; i < n; i++)
        {
            var h = (Half)((i % 2001) - 1000 + 0.25f * (i % 4));
            bits[i] = BitConverter.HalfToUInt16Bits(h);
            expected[i] = (float)h;
        }
        string path = WriteRaw("f16big.safetensors", $"{{\"h\":{{\"dtype\":\"F16\",\"shape\":[{n}],\"data_offsets\":[0,{2 * n}]}}}}", U16Le(bits));

        Assert.Equal(expected, Safetensors.Load(path).Get("h").Data);
    }

    [Fact]
    public void Load_BF16_ConvertsToFloat32()
    {
        // 1.0, -2.0, 3.140625, 1e38-ish (0x7E96 -> 9.969209968386869e+37), smallest normal 2^-126, -inf
        var data = U16Le(0x3F80, 0xC000, 0x4049, 0x7E96, 0x0080, 0xFF80);
        string path = WriteRaw("bf16.safetensors", "{\"b\":{\"dtype\":\"BF16\",\"shape\":[6],\"data_offsets\":[0,12]}}", data);

        var t = Safetensors.Load(path).Get("b");

        Assert.Equal(new[] { 1f, -2f, 3.140625f, BitConverter.Int32BitsToSingle(0x7E96_0000), MathF.Pow(2, -126), float.NegativeInfinity }, t.Data);
    }

    [Fact]
    public void Load_F64_ConvertsToFloat32()
    {
        var values = new[] { 1.5, -1e-3, 1e300, Math.PI };
        var data = values.SelectMany(BitConverter.GetBytes).ToArray();
        string path = WriteRaw("f64.safetensors", "{\"d\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]}}", data);

        var t = Safetensors.Load(path).Get("d");

        Assert.Equal(new[] { 1.5f, -1e-3f, float.PositiveInfinity, MathF.PI }, t.Data);
    }

    [Theory]
    [InlineData("I64", 8)]
    [InlineData("U8", 1)]
    [InlineData("BOOL", 1)]
    public void Load_UnsupportedDtype_NamesTensorAndDtype(string dtype, int size)
    {
        string json = $"{{\"ok\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}," +
                      $"\"token_ids\":{{\"dtype\":\"{dtype}\",\"shape\":[3],\"data_offsets\":[4,{4 + 3 * size}]}}}}";
        string path = WriteRaw("dtype.safetensors", json, new byte[4 + 3 * size]);

        var ex = LoadFails(path);
        Assert.Equal("token_ids", ex.TensorName);
        Assert.Contains("'token_ids'", ex.Message);
        Assert.Contains($"'{dtype}'", ex.Message);
    }

    [Fact]
    public void Load_UnknownDtype_NamesTensorAndDtype()
    {
        string path = WriteRaw("unknown.safetensors", "{\"t\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]);

        var ex = LoadFails(path);
        Assert.Contains("'t'", ex.Message);
        Assert.Contains("'F33'", ex.Message);
        Assert.Throws<SafetensorsException>(() => Safetensors.ReadHeader(path));
    }

    // ------------------------------------------------------------ corrupt files

    [Fact]
    public void Load_TruncatedFile_NamesFileAndTensor()
    {
        string path = PathOf("trunc.safetensors");
        Safetensors.Save(path, [new SafeTensor("a", [4], [1, 2, 3, 4]), new SafeTensor("z.last", [2, 2], [5, 6, 7, 8])]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^3]);

        var ex = LoadFails(path);
        Assert.Equal("z.last", ex.TensorName);
        Assert.Contains("truncated", ex.Message);
        Assert.Throws<SafetensorsException>(() => Safetensors.ReadHeader(path));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    public void Load_FileShorterThanEightBytes_Fails(int length)
    {
        string path = PathOf("short.safetensors");
        File.WriteAllBytes(path, new byte[length]);

        var ex = LoadFails(path);
        Assert.Contains("8-byte", ex.Message);
    }

    [Fact]
    public void Load_HeaderLengthLargerThanFile_Fails()
    {
        string path = PathOf("biglen.safetensors");
        var bytes = new byte[8 + 16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 17); // one more than is there
        Encoding.ASCII.GetBytes("{}              ").CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);

        var ex = LoadFails(path);
        Assert.Contains("header length 17", ex.Message);
    }

    [Theory]
    [InlineData(100_000_001UL)]
    [InlineData(ulong.MaxValue)]
    public void Load_AbsurdHeaderLength_Fails(ulong headerLength)
    {
        string path = PathOf("absurd.safetensors");
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength);
        File.WriteAllBytes(path, bytes);

        var ex = LoadFails(path);
        Assert.Contains("absurd", ex.Message);
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]", "not valid JSON")]   // unterminated
    [InlineData("{\"a\":{\"dtype\":\"F32\",}}", "not valid JSON")]                                  // trailing comma
    [InlineData("\u00ff\u00fe garbage", "not valid JSON")]
    [InlineData("[1,2,3]", "must be an object")]
    [InlineData("\"just a string\"", "must be an object")]
    public void Load_CorruptHeaderJson_Fails(string json, string expectedFragment)
    {
        string path = WriteRaw("corrupt.safetensors", json, new byte[4]);

        var ex = LoadFails(path);
        Assert.Contains(expectedFragment, ex.Message);
    }

    [Theory]
    [InlineData("{\"shape\":[1],\"data_offsets\":[0,4]}", "missing 'dtype'")]
    [InlineData("{\"dtype\":\"F32\",\"data_offsets\":[0,4]}", "missing 'shape'")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1]}", "missing 'data_offsets'")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}", "negative dimension")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}", "must be integers")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}", "[begin, end]")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}", "[begin, end]")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}", "non-negative")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}", "begin > end")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}", "needs 8")]
    [InlineData("{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}", "needs 2")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}", "beyond the 8-byte data section")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}", "span 8 bytes")]
    [InlineData("[1]", "must be an object")]
    public void Load_InvalidEntry_NamesTensor(string entry, string expectedFragment)
    {
        string path = WriteRaw("entry.safetensors", "{\"bad.tensor\":" + entry + "}", new byte[8]);

        var ex = LoadFails(path);
        Assert.Equal("bad.tensor", ex.TensorName);
        Assert.Contains("'bad.tensor'", ex.Message);
        Assert.Contains(expectedFragment, ex.Message);
    }

    [Fact]
    public void Load_OverlappingTensors_Fails()
    {
        const string json = "{\"first\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
                            "\"second\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        string path = WriteRaw("overlap.safetensors", json, new byte[12]);

        var ex = LoadFails(path);
        Assert.Contains("overlap", ex.Message);
        Assert.Contains("'first'", ex.Message);
        Assert.Contains("'second'", ex.Message);
    }

    [Fact]
    public void Load_EmptyTensorInsideAnotherTensorsBytes_IsNotAnOverlap()
    {
        const string json = "{\"full\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
                            "\"none\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]}}";
        string path = WriteRaw("emptyinside.safetensors", json, new byte[8]);

        var file = Safetensors.Load(path);
        Assert.Empty(file.Get("none").Data);
        Assert.Equal(new[] { 0, 5 }, file.Get("none").Shape);
    }

    [Fact]
    public void Load_DuplicateTensorName_Fails()
    {
        const string json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}," +
                            "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        string path = WriteRaw("dup.safetensors", json, new byte[8]);

        var ex = LoadFails(path);
        Assert.Equal("w", ex.TensorName);
        Assert.Contains("more than once", ex.Message);
    }

    [Theory]
    [InlineData("{\"__metadata__\":{\"epochs\":3}}", "must be a string")]
    [InlineData("{\"__metadata__\":[\"x\"]}", "must be an object")]
    public void Load_BadMetadata_Fails(string json, string expectedFragment)
    {
        string path = WriteRaw("meta.safetensors", json, []);

        var ex = LoadFails(path);
        Assert.Contains(expectedFragment, ex.Message);
    }

    // ------------------------------------------------------------ writing: validation and atomicity

    [Fact]
    public void Save_InvalidTensors_ThrowArgumentExceptionNamingTensor()
    {
        string path = PathOf("invalid.safetensors");

        var dup = Assert.Throws<ArgumentException>(() => Safetensors.Save(path,
            [new SafeTensor("twice", [1], [1f]), new SafeTensor("twice", [1], [2f])]));
        Assert.Contains("'twice'", dup.Message);

        var mismatch = Assert.Throws<ArgumentException>(() => Safetensors.Save(path, [new SafeTensor("w.weight", [2, 3], new float[5])]));
        Assert.Contains("'w.weight'", mismatch.Message);

        var negative = Assert.Throws<ArgumentException>(() => Safetensors.Save(path, [new SafeTensor("neg", [-1], [])]));
        Assert.Contains("'neg'", negative.Message);

        var empty = Assert.Throws<ArgumentException>(() => Safetensors.Save(path, [new SafeTensor("", [1], [1f])]));
        Assert.Contains("empty", empty.Message);

        Assert.Throws<ArgumentException>(() => Safetensors.Save(path, [new SafeTensor("__metadata__", [1], [1f])]));

        // A huge shape whose product overflows int but contains a 0 is still a legal empty tensor.
        Safetensors.Save(path, [new SafeTensor("wide.empty", [int.MaxValue, int.MaxValue, 0], [])]);
        Assert.Empty(Safetensors.Load(path).Get("wide.empty").Data);
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Save_EnumerationThrowsHalfway_LeavesOldFileIntactAndNoTempFile()
    {
        string path = PathOf("atomic.safetensors");
        Safetensors.Save(path, [new SafeTensor("old", [2], [1f, 2f])]);
        var before = File.ReadAllBytes(path);

        IEnumerable<SafeTensor> Failing()
        {
            yield return new SafeTensor("new.a", [3], [1f, 2f, 3f]);
            yield return new SafeTensor("new.b", [1], [4f]);
            throw new InvalidOperationException("boom halfway");
        }

        var ex = Assert.Throws<InvalidOperationException>(() => Safetensors.Save(path, Failing()));
        Assert.Equal("boom halfway", ex.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(_dir));
        Assert.Equal(new[] { 1f, 2f }, Safetensors.Load(path).Get("old").Data);
    }

    [Fact]
    public void Save_FailureAfterTempFileWritten_DeletesTempFile()
    {
        // The target is an existing directory, so the final move fails after the temp file has been fully written.
        string target = PathOf("is-a-directory");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "keep.txt"), "x");

        Assert.ThrowsAny<IOException>(() => Safetensors.Save(target, [new SafeTensor("w", [1000], new float[1000])]));

        Assert.Empty(Directory.GetFiles(_dir));
        Assert.Equal("x", File.ReadAllText(Path.Combine(target, "keep.txt")));
    }

    [Fact]
    public void Save_OverwritesExistingFile()
    {
        string path = PathOf("over.safetensors");
        Safetensors.Save(path, [new SafeTensor("old", [3], [1f, 2f, 3f])]);
        Safetensors.Save(path, [new SafeTensor("new", [1], [9f])]);

        var file = Safetensors.Load(path);
        Assert.Equal(new[] { "new" }, file.Tensors.Keys);
        Assert.Empty(file.Metadata);
        Assert.Equal(new[] { path }, Directory.GetFiles(_dir));
    }

    [Fact]
    public void RoundTrip_SeveralMegabytes_IsBitExact()
    {
        var rng = new Random(7);
        var big = new float[3_000_017];
        for (int i = 0; i < big.Length; i++)
            big[i] = BitConverter.Int32BitsToSingle(rng.Next());
        string path = PathOf("big.safetensors");

        Safetensors.Save(path, [new SafeTensor("big", [big.Length], big), new SafeTensor("small", [1], [1f])]);
        var loaded = Safetensors.Load(path);

        Assert.True(Bits(big).AsSpan().SequenceEqual(Bits(loaded.Get("big").Data)));
        Assert.Equal(1f, loaded.Get("small").Data[0]);
    }
}
