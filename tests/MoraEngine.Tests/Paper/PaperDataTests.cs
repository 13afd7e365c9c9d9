using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using MoraEngine.Examples.Paper;
using Xunit;

namespace MoraEngine.Tests.Paper;

public class PaperDataTests
{
    // ---- synthetic domain ----

    [Fact]
    public void Domain_SameSeed_SameData_OtherSeed_Different()
    {
        var a = SyntheticDomain.Create(7);
        var b = SyntheticDomain.Create(7);
        var c = SyntheticDomain.Create(8);
        Assert.Equal(7UL, a.Seed);
        Assert.Equal(a.Facts, b.Facts);
        Assert.Equal(a.TrainingSentences, b.TrainingSentences);
        Assert.Equal(a.HeldOutSentences, b.HeldOutSentences);
        Assert.Equal(a.Cloze.Select(Describe), b.Cloze.Select(Describe));
        Assert.NotEqual(a.Facts, c.Facts);
        Assert.NotEqual(a.TrainingSentences, c.TrainingSentences);
        Assert.NotEqual(a.Cloze.Select(Describe), c.Cloze.Select(Describe));
    }

    private static string Describe(ClozeItem q) => $"{q.Fact}|{string.Join("|", q.Candidates)}|{string.Join("|", q.Options)}|{q.Correct}";

    [Fact]
    public void Domain_HasEveryFactInEveryTemplate_WithInventedDistinctNames()
    {
        var d = SyntheticDomain.Create(3, entities: 48, candidates: 8);
        Assert.Equal(["region", "founder", "founded", "export", "emblem"], SyntheticDomain.Attributes);
        Assert.Equal(4, d.TrainingTemplatesPerAttribute);
        Assert.Equal(2, d.HeldOutTemplatesPerAttribute);
        Assert.Equal(48 * 5, d.Facts.Count);
        Assert.Equal(48 * 5 * 4, d.TrainingSentences.Count);
        Assert.Equal(48 * 5 * 2, d.HeldOutSentences.Count);
        Assert.Equal(48 * 5, d.Cloze.Count);

        Assert.Equal(48, d.Entities.Count);
        Assert.Equal(48, d.Entities.Distinct().Count());
        Assert.All(d.Entities, e => Assert.Matches("^[A-Z][a-z]{3,13}$", e));
        Assert.Equal(d.Entities, d.Facts.Select(f => f.Entity).Distinct());

        var byAttr = d.Facts.GroupBy(f => f.Attribute).ToDictionary(g => g.Key, g => g.Select(f => f.Value).ToList());
        Assert.Equal(48, byAttr["founder"].Distinct().Count());
        Assert.All(byAttr["founder"], v => Assert.Matches("^[A-Z][a-z]+ [A-Z][a-z]+$", v));
        Assert.All(byAttr["founded"], v => Assert.InRange(int.Parse(v, CultureInfo.InvariantCulture), 1000, 1899));
        Assert.All(byAttr["export"], v => Assert.Matches("^[a-z]+$", v));
        Assert.All(byAttr["emblem"], v => Assert.Matches("^[a-z]+$", v));
        Assert.All(byAttr["region"], v => Assert.Matches("^[A-Z][a-z]+$", v));
        Assert.DoesNotContain(d.Entities, e => byAttr["region"].Contains(e));

        // Each fact appears in each of its templates: training 0-3 (once each), held out 4-5.
        var training = d.TrainingSentences.ToHashSet();
        var heldOut = d.HeldOutSentences.ToHashSet();
        foreach (var f in d.Facts)
        {
            var templates = SyntheticDomain.Templates[f.Attribute];
            Assert.Equal(6, templates.Count);
            for (var t = 0; t < 6; t++)
            {
                var s = templates[t].Replace("{E}", f.Entity).Replace("{V}", f.Value);
                Assert.Contains(s, t < 4 ? training : heldOut);
            }
        }
    }

    [Fact]
    public void Domain_HeldOutTemplates_NeverAppearInTraining()
    {
        var d = SyntheticDomain.Create(11);
        Assert.Empty(d.TrainingSentences.Intersect(d.HeldOutSentences));
        var heldOutPatterns = SyntheticDomain.Templates.Values.SelectMany(t => t.Skip(4)).Select(TemplateRegex).ToList();
        var trainingPatterns = SyntheticDomain.Templates.Values.SelectMany(t => t.Take(4)).Select(TemplateRegex).ToList();
        Assert.All(d.TrainingSentences, s => Assert.DoesNotContain(heldOutPatterns, p => p.IsMatch(s)));
        Assert.All(d.TrainingSentences, s => Assert.Contains(trainingPatterns, p => p.IsMatch(s)));
        Assert.All(d.HeldOutSentences, s => Assert.Contains(heldOutPatterns, p => p.IsMatch(s)));
        // Training text is shuffled, not fact by fact.
        var inOrder = d.Facts.SelectMany(f => SyntheticDomain.Templates[f.Attribute].Take(4).Select(t => t.Replace("{E}", f.Entity).Replace("{V}", f.Value)));
        Assert.NotEqual(inOrder, d.TrainingSentences);
        Assert.Equal(inOrder.Order(StringComparer.Ordinal), d.TrainingSentences.Order(StringComparer.Ordinal));
    }

    private static Regex TemplateRegex(string template) =>
        new("^" + Regex.Escape(template).Replace(@"\{E}", "[A-Za-z]+").Replace(@"\{V}", "[A-Za-z0-9 ]+") + "$");

    [Fact]
    public void Domain_Sentences_AreShortAsciiWithoutNewlines()
    {
        var d = SyntheticDomain.Create(5, entities: SyntheticDomain.MaxEntities);
        var all = d.TrainingSentences.Concat(d.HeldOutSentences).Concat(d.Cloze.SelectMany(q => q.Options)).ToList();
        Assert.All(all, s =>
        {
            Assert.InRange(Encoding.UTF8.GetByteCount(s), 10, 100);
            Assert.All(s, c => Assert.InRange(c, ' ', '~'));
        });
    }

    [Fact]
    public void Domain_Cloze_HasOneTrueOption_AndDistinctDistractors()
    {
        foreach (var (entities, candidates) in new[] { (48, 8), (3, 8), (10, 2) })
        {
            var d = SyntheticDomain.Create(21, entities, candidates);
            for (var i = 0; i < d.Cloze.Count; i++)
            {
                var q = d.Cloze[i];
                Assert.Equal(d.Facts[i], q.Fact);
                Assert.Equal(candidates, q.Candidates.Count);
                Assert.Equal(candidates, q.Options.Count);
                Assert.Equal(candidates, q.Candidates.Distinct().Count());
                Assert.Equal(candidates, q.Options.Distinct().Count());
                Assert.InRange(q.Correct, 0, candidates - 1);
                Assert.Equal(q.Fact.Value, q.Candidates[q.Correct]);
                Assert.Single(q.Candidates, c => c == q.Fact.Value);
                Assert.Contains(q.Fact.Value, q.Options[q.Correct]);
                var template = SyntheticDomain.Templates[q.Fact.Attribute][4];
                for (var k = 0; k < candidates; k++)
                    Assert.Equal(template.Replace("{E}", q.Fact.Entity).Replace("{V}", q.Candidates[k]), q.Options[k]);
                Assert.Contains(q.Options[q.Correct], d.HeldOutSentences);
                // Distractors are values of the same kind.
                var kind = q.Fact.Attribute switch
                {
                    "founder" => "^[A-Z][a-z]+ [A-Z][a-z]+$",
                    "founded" => "^1[0-8][0-9][0-9]$",
                    "region" => "^[A-Z][a-z]+$",
                    _ => "^[a-z]+$",
                };
                Assert.All(q.Candidates, c => Assert.Matches(kind, c));
            }
            // The correct answer is not always in the same place.
            Assert.True(d.Cloze.Select(q => q.Correct).Distinct().Count() > 1);
        }
    }

    [Fact]
    public void Domain_RejectsBadCounts()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticDomain.Create(1, entities: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticDomain.Create(1, entities: SyntheticDomain.MaxEntities + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticDomain.Create(1, candidates: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticDomain.Create(1, candidates: 9));
    }

    // ---- tasks ----

    [Fact]
    public void Tasks_Names_AndUnknownName()
    {
        Assert.Equal(["addition", "instructions"], PaperTasks.Names);
        var e = Assert.Throws<ArgumentException>(() => PaperTasks.Create("subtraction", 1));
        Assert.Contains("addition", e.Message);
        Assert.Contains("instructions", e.Message);
        Assert.Equal("addition", PaperTasks.Create("addition", 1, 10, 5).Name);
        Assert.Equal("instructions", PaperTasks.Create("instructions", 1, 10, 5).Name);
    }

    [Theory]
    [InlineData("addition")]
    [InlineData("instructions")]
    public void Tasks_AreDeterministic_Disjoint_AndWithinLimits(string name)
    {
        var a = PaperTasks.Create(name, 4);
        var b = PaperTasks.Create(name, 4);
        var c = PaperTasks.Create(name, 5);
        Assert.Equal(a.Train, b.Train);
        Assert.Equal(a.Test, b.Test);
        Assert.NotEqual(a.Train, c.Train);
        Assert.Equal(4000, a.Train.Count);
        Assert.Equal(200, a.Test.Count);
        Assert.False(string.IsNullOrWhiteSpace(a.Description));
        Assert.DoesNotContain('\n', a.Description);

        var trainPrompts = a.Train.Select(x => x.Prompt).ToHashSet();
        Assert.Equal(a.Train.Count, trainPrompts.Count);
        Assert.Equal(a.Test.Count, a.Test.Select(x => x.Prompt).Distinct().Count());
        Assert.DoesNotContain(a.Test, x => trainPrompts.Contains(x.Prompt));

        Assert.All(a.Train.Concat(a.Test), x =>
        {
            Assert.InRange(Encoding.UTF8.GetByteCount(x.Prompt + x.Completion), 1, 60);
            Assert.NotEmpty(x.Completion);
            Assert.All(x.Prompt + x.Completion, ch => Assert.InRange(ch, ' ', '~'));
        });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(9)]
    public void Addition_AnswersAreSums(int digits)
    {
        var task = PaperTasks.Addition(2, digits, train: 60, test: 30);
        var re = new Regex(@"^(\d+)\+(\d+)=$");
        Assert.All(task.Train.Concat(task.Test), x =>
        {
            var m = re.Match(x.Prompt);
            Assert.True(m.Success, x.Prompt);
            foreach (var g in new[] { m.Groups[1].Value, m.Groups[2].Value })
            {
                Assert.Equal(digits, g.Length);
                if (digits > 1) Assert.NotEqual('0', g[0]);
            }
            var sum = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            Assert.Equal(sum.ToString(CultureInfo.InvariantCulture), x.Completion);
        });
    }

    [Fact]
    public void Addition_UsesTheWholeSpace_AndRefusesMore()
    {
        var task = PaperTasks.Addition(1, digits: 1, train: 90, test: 10);
        Assert.Equal(100, task.Train.Concat(task.Test).Select(x => x.Prompt).Distinct().Count());
        Assert.Throws<ArgumentException>(() => PaperTasks.Addition(1, digits: 1, train: 95, test: 6));
        Assert.Throws<ArgumentOutOfRangeException>(() => PaperTasks.Addition(1, digits: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => PaperTasks.Addition(1, digits: 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => PaperTasks.Addition(1, train: 0));
        Assert.Throws<ArgumentException>(() => PaperTasks.Instructions(1, train: 10_000_000, test: 1));
    }

    [Fact]
    public void Instructions_CompletionsFollowEachOp()
    {
        var task = PaperTasks.Instructions(9);
        var re = new Regex(@"^Instruction: (uppercase|reverse|double|first three|last letter|length) ([a-z]{3,8})\. Response: $");
        var seen = new HashSet<string>();
        foreach (var x in task.Train.Concat(task.Test))
        {
            var m = re.Match(x.Prompt);
            Assert.True(m.Success, x.Prompt);
            var op = m.Groups[1].Value;
            var word = m.Groups[2].Value;
            seen.Add(op);
            var expected = op switch
            {
                "uppercase" => word.ToUpperInvariant(),
                "reverse" => string.Concat(word.Reverse()),
                "double" => word + " " + word,
                "first three" => word.Substring(0, 3),
                "last letter" => word.Substring(word.Length - 1),
                "length" => word.Length.ToString(CultureInfo.InvariantCulture),
                _ => throw new InvalidOperationException(op),
            };
            Assert.Equal(expected, x.Completion);
        }
        Assert.Equal(PaperTasks.InstructionOps.ToHashSet(), seen);
        Assert.All(PaperTasks.InstructionWords, w => Assert.Matches("^[a-z]{3,8}$", w));
    }

    // ---- general corpus ----

    private static readonly Regex DocTag = new(
        @"</?(see|seealso|paramref|typeparamref|para|c|code|summary|remarks|returns|param|typeparam|exception|value|xref|list|item|term|description|listheader|p|br|a|member)\b[^>]*>",
        RegexOptions.Compiled);

    [Fact]
    public void SdkDocs_LoadCleanTextDeterministically()
    {
        var folder = GeneralCorpus.FindSdkDocs();
        if (folder is null) return; // no .NET reference pack with XML docs on this machine
        var a = GeneralCorpus.FromSdkDocs();
        var b = GeneralCorpus.FromSdkDocs();
        Assert.Equal("dotnet-sdk-xml-docs", a.Info.Source);
        Assert.Equal(folder, a.Info.Path);
        Assert.True(a.Info.Files > 0);
        Assert.True(a.Info.Documents > 1000);
        Assert.NotEmpty(a.Train);
        Assert.NotEmpty(a.Validation);
        Assert.Equal(a.Train.Length, a.Info.TrainBytes);
        Assert.Equal(a.Validation.Length, a.Info.ValidationBytes);
        Assert.InRange(a.Validation.Length, a.Train.Length / 40, a.Train.Length / 10);
        Assert.Equal(a.Info.Sha256, b.Info.Sha256);
        Assert.Equal(Sha(a.Train, a.Validation), a.Info.Sha256);

        var head = Encoding.UTF8.GetString(a.Train, 0, Math.Min(a.Train.Length, 100_000));
        Assert.DoesNotMatch(DocTag, head);
        Assert.DoesNotMatch(@"\b[TMPFE]:System\.", head);
        Assert.DoesNotContain("  ", head);
        Assert.All(head.Split('\n').SkipLast(1), d => Assert.True(d.Length >= 40 && d == d.Trim(), d));
    }

    private static string Sha(byte[] a, byte[] b) => Convert.ToHexStringLower(SHA256.HashData([.. a, .. b]));

    [Fact]
    public void CrefName_IsTheLastNameSegment()
    {
        Assert.Equal("Concat", GeneralCorpus.CrefName("M:System.String.Concat(System.String,System.String)"));
        Assert.Equal("String", GeneralCorpus.CrefName("T:System.String"));
        Assert.Equal("List", GeneralCorpus.CrefName("T:System.Collections.Generic.List`1"));
        Assert.Equal("Select", GeneralCorpus.CrefName("M:System.Linq.Enumerable.Select``2(System.Collections.Generic.IEnumerable{``0},System.Func{``0,``1})"));
        Assert.Equal("KeyCollection", GeneralCorpus.CrefName("T:System.Collections.Generic.Dictionary`2.KeyCollection"));
        Assert.Equal("String", GeneralCorpus.CrefName("M:System.String.#ctor(System.Char[])"));
        Assert.Equal("Dispose", GeneralCorpus.CrefName("M:System.IO.Stream.System#IDisposable#Dispose"));
        Assert.Equal("ReadAsync", GeneralCorpus.CrefName("System.IO.Stream.ReadAsync(System.Byte[],System.Int32,System.Int32)"));
    }

    [Fact]
    public void Directory_ReadsDocXmlAndText_InPathOrder()
    {
        var dir = NewTempDir();
        try
        {
            var members = new StringBuilder();
            members.Append("""
                <member name="M:Demo.Thing.Join(System.String,System.Int32)">
                  <summary>Joins a <see cref="T:System.String" /> and <paramref name="count" />, or returns <see langword="null" />;
                    see <c>Join</c> and <see cref="M:System.String.Concat(System.String,System.String)" />.</summary>
                  <param name="value">The <typeparamref name="T" /> value.</param>
                  <returns>The <xref data-throw-if-not-resolved="true" uid="System.IO.Stream.ReadAsync(System.Byte[])"></xref> result.</returns>
                  <exception cref="T:System.ArgumentNullException"><paramref name="value" /> is <see langword="null" />.</exception>
                  <example>Never part of the text.</example>
                </member>
                <member name="M:Demo.Short"><summary>Too short to keep.</summary></member>
                <member name="M:System.Runtime.Intrinsics.Arm.AdvSimd.Abs(System.Int32)"><summary>int32x4_t vabsq_s32 (int32x4_t a) A32: VABS.S32 Qd, Qm A64: ABS Vd.4S, Vn.4S</summary></member>
                """);
            for (var i = 0; i < 59; i++)
                members.Append($"<member name=\"M:Demo.M{i}\"><summary>Member {i} {Filler(i)}</summary><remarks><para>More.</para><para>Text.</para></remarks></member>\n");
            members.Append("<member name=\"M:Demo.Again\"><summary>Member 0 " + Filler(0) + "</summary><remarks><para>More.</para><para>Text.</para></remarks></member>\n");
            File.WriteAllText(Path.Combine(dir, "b.xml"), $"<?xml version=\"1.0\"?><doc><assembly><name>Demo</name></assembly><members>{members}</members></doc>");
            Directory.CreateDirectory(Path.Combine(dir, "c"));
            File.WriteAllText(Path.Combine(dir, "c", "notes.md"), "# Notes\n\nLast paragraph of the corpus.\n");
            File.WriteAllText(Path.Combine(dir, "a.txt"), "First paragraph\nof the corpus.\n");
            File.WriteAllText(Path.Combine(dir, "ignored.json"), "{}");

            var corpus = GeneralCorpus.FromDirectory(dir);
            Assert.Equal("directory", corpus.Info.Source);
            Assert.Equal(3, corpus.Info.Files);
            Assert.Equal(1 + 1 + 59 + 2, corpus.Info.Documents);
            var train = Encoding.UTF8.GetString(corpus.Train).Split('\n');
            var validation = Encoding.UTF8.GetString(corpus.Validation).Split('\n');
            Assert.Equal("First paragraph of the corpus.", train[0]);
            Assert.Equal("Joins a String and count, or returns null; see Join and Concat. The T value. The ReadAsync result. value is null.", train[1]);
            Assert.Equal("Member 0 " + Filler(0) + " More. Text.", train[2]);
            Assert.Equal("Last paragraph of the corpus.", train[^1]);
            Assert.Equal(["Member 17 " + Filler(17) + " More. Text.", "Member 37 " + Filler(37) + " More. Text.", "Member 57 " + Filler(57) + " More. Text."], validation);
            Assert.DoesNotContain(train, t => t.Contains("Too short") || t.Contains("vabsq") || t.Contains("Never part"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string Filler(int i) =>
        string.Join(" ", Enumerable.Range(0, 60).Select(k => ((char)('a' + (i + k) % 26)).ToString() + "word"));

    [Fact]
    public void TextFile_ParagraphsAreDocuments_EveryTwentiethIsValidation()
    {
        var dir = NewTempDir();
        try
        {
            var paragraphs = Enumerable.Range(0, 60).Select(i => $"Paragraph {i}:\r\n  {Filler(i)}\t end.").ToList();
            var file = Path.Combine(dir, "corpus.txt");
            File.WriteAllText(file, "\n\n" + string.Join("\r\n \r\n", paragraphs) + "\n\n\n", new UTF8Encoding(encoderShouldEmitUTF8Identifier: true));
            var corpus = GeneralCorpus.FromTextFile(file);
            Assert.Equal("text", corpus.Info.Source);
            Assert.Equal(Path.GetFullPath(file), corpus.Info.Path);
            Assert.Equal(1, corpus.Info.Files);
            Assert.Equal(60, corpus.Info.Documents);
            string Clean(int i) => $"Paragraph {i}: {Filler(i)} end.";
            var expectedTrain = Enumerable.Range(0, 60).Where(i => i % 20 != 19).Select(Clean);
            var expectedValidation = new[] { 19, 39, 59 }.Select(Clean);
            Assert.Equal(string.Join("\n", expectedTrain), Encoding.UTF8.GetString(corpus.Train));
            Assert.Equal(string.Join("\n", expectedValidation), Encoding.UTF8.GetString(corpus.Validation));
            Assert.Equal(Sha(corpus.Train, corpus.Validation), corpus.Info.Sha256);
            Assert.Equal(corpus.Info.Sha256, GeneralCorpus.FromTextFile(file).Info.Sha256);
            Assert.Equal(corpus.Info.Sha256, GeneralCorpus.Load(file, null).Info.Sha256);
            Assert.Equal(corpus.Info.Sha256, GeneralCorpus.Load(file, "").Info.Sha256);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Corpus_Errors_NameTheProblem()
    {
        var dir = NewTempDir();
        try
        {
            var missing = Path.Combine(dir, "missing.txt");
            var e1 = Assert.Throws<FileNotFoundException>(() => GeneralCorpus.FromTextFile(missing));
            Assert.Contains("missing.txt", e1.Message);
            var e2 = Assert.Throws<DirectoryNotFoundException>(() => GeneralCorpus.FromDirectory(Path.Combine(dir, "nowhere")));
            Assert.Contains("nowhere", e2.Message);

            var small = Path.Combine(dir, "small.txt");
            File.WriteAllText(small, "Only one short paragraph.\n");
            var e3 = Assert.Throws<InvalidDataException>(() => GeneralCorpus.FromTextFile(small));
            Assert.Contains("small.txt", e3.Message);
            Assert.Contains("25 training bytes", e3.Message);
            Assert.Contains("0 validation bytes", e3.Message);

            var bad = Path.Combine(dir, "bad.txt");
            File.WriteAllBytes(bad, [.. "caf\u00e9 ok "u8, 0xC3, 0x28, .. "more"u8]);
            var e4 = Assert.Throws<InvalidDataException>(() => GeneralCorpus.FromTextFile(bad));
            Assert.Contains("bad.txt", e4.Message);
            Assert.Contains("byte offset 9", e4.Message);

            var e5 = Assert.Throws<ArgumentException>(() => GeneralCorpus.Load(small, dir));
            Assert.Contains("not both", e5.Message);

            Assert.Null(GeneralCorpus.FindSdkDocs(dir));
            var e6 = Assert.Throws<InvalidOperationException>(() => GeneralCorpus.FromSdkDocs(dir));
            Assert.Contains(dir, e6.Message);
            Assert.Contains("--text FILE", e6.Message);
            Assert.Contains("--corpus DIR", e6.Message);

            File.Delete(bad);
            File.WriteAllText(Path.Combine(dir, "broken.xml"), "<doc><members><member name=\"x\"></doc>");
            var e7 = Assert.Throws<InvalidDataException>(() => GeneralCorpus.FromDirectory(dir));
            Assert.Contains("broken.xml", e7.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string NewTempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "mora-paperdata-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
