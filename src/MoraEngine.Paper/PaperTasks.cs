using System.Globalization;

namespace MoraEngine.Examples.Paper;

/// <summary>One example of a task: the model reads <see cref="Prompt"/> and should write <see cref="Completion"/>.</summary>
public sealed record TaskExample(string Prompt, string Completion);

/// <summary>
/// A task with checkable answers: training and test examples whose prompts are all distinct (no test prompt is a
/// training prompt).
/// </summary>
public sealed record PaperTask(string Name, string Description, IReadOnlyList<TaskExample> Train, IReadOnlyList<TaskExample> Test);

/// <summary>
/// Small synthetic tasks for fine-tuning, made from a seed: <c>addition</c> ("347+589=" → "936") and
/// <c>instructions</c> ("Instruction: reverse velko. Response: " → "oklev"). Prompts and completions are printable
/// ASCII without '\n', and every prompt plus completion is at most <see cref="MaxExampleBytes"/> bytes.
/// </summary>
public static class PaperTasks
{
    /// <summary>The longest prompt plus completion, in bytes.</summary>
    public const int MaxExampleBytes = 60;

    /// <summary>Name of the addition task.</summary>
    public const string AdditionName = "addition";

    /// <summary>Name of the instruction-following task.</summary>
    public const string InstructionsName = "instructions";

    /// <summary>The task names <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = Array.AsReadOnly([AdditionName, InstructionsName]);

    /// <summary>
    /// The operations of the instruction task, as written in prompts: uppercase (velko → VELKO), reverse
    /// (velko → oklev), double (velko → "velko velko"), first three (velko → vel), last letter (velko → o) and
    /// length (velko → 5).
    /// </summary>
    public static IReadOnlyList<string> InstructionOps { get; } =
        Array.AsReadOnly(["uppercase", "reverse", "double", "first three", "last letter", "length"]);

    /// <summary>The invented words of the instruction task (3–8 lowercase letters, built from syllables), sorted.</summary>
    public static IReadOnlyList<string> InstructionWords => Words.Value;

    /// <summary>The task called <paramref name="name"/> (case-insensitive) with its default settings.</summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="Names"/>.</exception>
    public static PaperTask Create(string name, ulong seed, int train = 4000, int test = 200, int additionDigits = 2)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Equals(AdditionName, StringComparison.OrdinalIgnoreCase)) return Addition(seed, additionDigits, train, test);
        if (name.Equals(InstructionsName, StringComparison.OrdinalIgnoreCase)) return Instructions(seed, train, test);
        throw new ArgumentException($"PaperTasks: unknown task '{name}'; the tasks are: {string.Join(", ", Names)}.", nameof(name));
    }

    /// <summary>
    /// Addition of two numbers with exactly <paramref name="digits"/> digits each (no leading zeros; 0–9 when
    /// digits is 1): prompt "347+589=", completion "936".
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">digits is not 1–9, or a count is out of range.</exception>
    /// <exception cref="ArgumentException">There are fewer distinct problems than train + test.</exception>
    public static PaperTask Addition(ulong seed, int digits = 3, int train = 4000, int test = 200)
    {
        if (digits < 1 || digits > 9) throw new ArgumentOutOfRangeException(nameof(digits), digits, "PaperTasks: addition operands must have 1 to 9 digits.");
        CheckCounts(train, test);
        long lo = digits == 1 ? 0 : Pow10(digits - 1);
        var span = Pow10(digits) - lo;
        var space = span * span;
        var rng = new Rng(seed);
        var (trainIds, testIds) = DrawDistinct(rng, space, train, test, AdditionName);
        TaskExample Make(long id)
        {
            var a = lo + id / span;
            var b = lo + id % span;
            return new TaskExample(
                a.ToString(CultureInfo.InvariantCulture) + "+" + b.ToString(CultureInfo.InvariantCulture) + "=",
                (a + b).ToString(CultureInfo.InvariantCulture));
        }
        return new PaperTask(AdditionName,
            $"Add two {digits}-digit numbers: the prompt is \"a+b=\" and the completion is the sum in decimal.",
            Array.AsReadOnly(trainIds.Select(Make).ToArray()), Array.AsReadOnly(testIds.Select(Make).ToArray()));
    }

    /// <summary>
    /// Instruction following: prompt "Instruction: &lt;op&gt; &lt;word&gt;. Response: " with one of
    /// <see cref="InstructionOps"/> and an invented word, completion the result of the operation.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A count is out of range.</exception>
    /// <exception cref="ArgumentException">There are fewer distinct problems than train + test.</exception>
    public static PaperTask Instructions(ulong seed, int train = 4000, int test = 200)
    {
        CheckCounts(train, test);
        var words = Words.Value;
        var ops = InstructionOps.Count;
        var rng = new Rng(seed);
        var (trainIds, testIds) = DrawDistinct(rng, (long)words.Count * ops, train, test, InstructionsName);
        TaskExample Make(long id)
        {
            var op = (int)(id % ops);
            var word = words[(int)(id / ops)];
            return new TaskExample($"Instruction: {InstructionOps[op]} {word}. Response: ", Apply(op, word));
        }
        return new PaperTask(InstructionsName,
            "Follow an instruction (uppercase, reverse, double, first three, last letter or length) on an invented word: " +
            "the prompt is \"Instruction: <op> <word>. Response: \" and the completion is the result.",
            Array.AsReadOnly(trainIds.Select(Make).ToArray()), Array.AsReadOnly(testIds.Select(Make).ToArray()));
    }

    /// <summary>The answer to instruction <paramref name="op"/> (an index into <see cref="InstructionOps"/>) on a word.</summary>
    private static string Apply(int op, string word) => op switch
    {
        0 => word.ToUpperInvariant(),
        1 => new string(word.Reverse().ToArray()),
        2 => word + " " + word,
        3 => word[..3],
        4 => word[^1..],
        5 => word.Length.ToString(CultureInfo.InvariantCulture),
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    private static readonly string[] Syllables =
        ["ka", "lo", "mi", "ve", "ru", "ta", "zo", "ni", "pe", "su", "du", "fi", "dra", "kel", "mur", "tiz", "vak", "lur", "zun", "sek"];

    private static readonly Lazy<IReadOnlyList<string>> Words = new(BuildWords);

    /// <summary>Every distinct word of one to four syllables with 3–8 letters, in ordinal order.</summary>
    private static IReadOnlyList<string> BuildWords()
    {
        var set = new SortedSet<string>(StringComparer.Ordinal);
        void Grow(string prefix, int syllables)
        {
            if (prefix.Length >= 3 && prefix.Length <= 8) set.Add(prefix);
            if (syllables == 4) return;
            foreach (var s in Syllables)
                if (prefix.Length + s.Length <= 8) Grow(prefix + s, syllables + 1);
        }
        Grow("", 0);
        return Array.AsReadOnly(set.ToArray());
    }

    private static void CheckCounts(int train, int test)
    {
        if (train < 1) throw new ArgumentOutOfRangeException(nameof(train), train, "PaperTasks: need at least one training example.");
        if (test < 0) throw new ArgumentOutOfRangeException(nameof(test), test, "PaperTasks: the number of test examples must not be negative.");
    }

    private static long Pow10(int n)
    {
        long p = 1;
        for (var i = 0; i < n; i++) p *= 10;
        return p;
    }

    /// <summary>Uniform in [0, n) for any positive 64-bit n (rejection on 62 random bits).</summary>
    private static long NextLong(Rng rng, long n)
    {
        if (n <= int.MaxValue) return rng.NextInt((int)n);
        const long range = 1L << 62;
        var limit = range - range % n;
        long x;
        do x = (long)((((ulong)rng.NextUInt() << 32) | rng.NextUInt()) >> 2); while (x >= limit);
        return x % n;
    }

    /// <summary>
    /// train + test distinct problem ids from [0, space): the test ids never occur among the training ids. Small
    /// spaces are shuffled whole; large ones are sampled with rejection of repeats.
    /// </summary>
    private static (long[] Train, long[] Test) DrawDistinct(Rng rng, long space, int train, int test, string task)
    {
        var total = (long)train + test;
        if (total > space)
            throw new ArgumentException($"PaperTasks: {task} has only {space} distinct problems, fewer than the {train} training + {test} test examples asked for.");
        long[] ids;
        if (space <= 1 << 22)
        {
            var all = new long[space];
            for (var i = 0; i < all.Length; i++) all[i] = i;
            for (var i = 0; i < total; i++)
            {
                var j = i + NextLong(rng, space - i);
                (all[i], all[j]) = (all[j], all[i]);
            }
            ids = all[..(int)total];
        }
        else
        {
            var seen = new HashSet<long>();
            ids = new long[total];
            for (var i = 0; i < total; i++)
            {
                long id;
                do id = NextLong(rng, space); while (!seen.Add(id));
                ids[i] = id;
            }
        }
        return (ids[..train], ids[train..]);
    }
}
