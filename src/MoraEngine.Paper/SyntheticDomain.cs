namespace MoraEngine.Examples.Paper;

/// <summary>One fact of the synthetic domain: an entity (an invented town), an attribute name and its value.</summary>
public sealed record DomainFact(string Entity, string Attribute, string Value);

/// <summary>
/// One cloze question: the same held-out sentence with each candidate value; Correct indexes Options.
/// <see cref="Candidates"/>[k] is the value that fills <see cref="Options"/>[k]; exactly one candidate is the fact's
/// true value, at index <see cref="Correct"/>.
/// </summary>
public sealed record ClozeItem(DomainFact Fact, IReadOnlyList<string> Candidates, IReadOnlyList<string> Options, int Correct);

/// <summary>
/// A fictional domain for continual pretraining: invented towns, each with five facts (region, founder, founding
/// year, main export, emblem animal), each stated by six sentence templates. Templates 0–3 of every attribute make
/// the training text; templates 4–5 make held-out text for perplexity, and template 4 makes one cloze question per
/// fact (which of several candidate values makes the sentence true). Everything follows from the seed. Sentences
/// are ASCII, at most <see cref="MaxSentenceBytes"/> bytes and never contain '\n'.
/// </summary>
public sealed class SyntheticDomain
{
    /// <summary>The longest sentence, in bytes.</summary>
    public const int MaxSentenceBytes = 100;

    /// <summary>The most entities a domain can have.</summary>
    public const int MaxEntities = 200;

    private const int TemplatesPerAttribute = 6;
    private const int TrainingTemplates = 4;
    private const int FirstYear = 1000;
    private const int LastYear = 1899;

    private static readonly string[] AttributeNames = ["region", "founder", "founded", "export", "emblem"];

    private static readonly string[][] TemplateTable =
    [
        // region
        [
            "{E} lies in the region of {V}.",
            "In {V} lies the town of {E}.",
            "The town of {E} belongs to {V}.",
            "Travellers reach {E} by crossing the hills of {V}.",
            "{E} is a town in the region of {V}.",
            "Among the towns of {V} you will find {E}.",
        ],
        // founder
        [
            "{E} was founded by {V}.",
            "{V} founded the town of {E}.",
            "The founder of {E} was {V}.",
            "Long ago {V} built the first houses of {E}.",
            "The town of {E} was first settled by {V}.",
            "It was {V} who laid the first stone of {E}.",
        ],
        // founded
        [
            "{E} was founded in the year {V}.",
            "In {V} the town of {E} was founded.",
            "The founding of {E} took place in {V}.",
            "{E} has stood since the year {V}.",
            "The town of {E} dates back to the year {V}.",
            "Records show that {E} was built in {V}.",
        ],
        // export
        [
            "The main export of {E} is {V}.",
            "{E} is known for its {V}.",
            "Merchants travel to {E} to buy {V}.",
            "Fine {V} is what {E} is famous for.",
            "The people of {E} sell mostly {V}.",
            "Carts full of {V} leave {E} every week.",
        ],
        // emblem
        [
            "The emblem of {E} is the {V}.",
            "The banner of {E} shows the {V}.",
            "The {V} is the emblem animal of {E}.",
            "{E} chose the {V} as its emblem.",
            "On the flag of {E} you can see the {V}.",
            "The people of {E} honour the {V} above all animals.",
        ],
    ];

    private static readonly string[] Regions = ["Varnholt", "Eskarra", "Tumelin", "Brisvald", "Okaruun", "Selvenne", "Durmakh", "Yllastre"];

    private static readonly string[] Goods = ["copper", "amber", "silk", "salt", "wool", "timber", "honey", "glass", "pepper", "marble", "tin", "linen"];

    private static readonly string[] Animals = ["heron", "wolf", "owl", "stag", "bear", "falcon", "otter", "lynx", "raven", "boar"];

    private static readonly string[] GivenNames =
        ["Orvan", "Maelis", "Tovik", "Selka", "Idrun", "Bavor", "Cenwyn", "Halvi", "Jorund", "Kessa", "Liro", "Nadrek", "Pellin", "Rusa", "Ulwen", "Yorin"];

    private static readonly string[] FamilyNames =
        ["Quellan", "Dorvash", "Hestrel", "Yanrik", "Morvath", "Tallisk", "Ebberly", "Venhollow", "Grisand", "Ostrovel", "Pennacre", "Sarnoth", "Kildane", "Wrenhart", "Falloway", "Durrisk"];

    private static readonly string[] NameStarts = ["Vel", "Tash", "Kor", "Zan", "Mir", "Thal", "Quen", "Dro", "Yss", "Brel", "Osk", "Hald", "Fen", "Gur", "Lunn", "Syr"];

    private static readonly string[] NameMiddles = ["ka", "lo", "ve", "ri", "sha", "to", "zi", "mu", "ne", "dra"];

    private static readonly string[] NameEnds = ["ra", "kiro", "dun", "vash", "eth", "oth", "ira", "esk", "ul", "is", "ost", "avo"];

    private SyntheticDomain(ulong seed, IReadOnlyList<string> entities, IReadOnlyList<DomainFact> facts, IReadOnlyList<string> training,
        IReadOnlyList<string> heldOut, IReadOnlyList<ClozeItem> cloze)
    {
        Seed = seed;
        Entities = entities;
        Facts = facts;
        TrainingSentences = training;
        HeldOutSentences = heldOut;
        Cloze = cloze;
    }

    /// <summary>
    /// The domain of <paramref name="seed"/>: <paramref name="entities"/> towns (1 to <see cref="MaxEntities"/>) and
    /// cloze questions with <paramref name="candidates"/> values each (2 to 8, the number of regions).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A count is out of range.</exception>
    public static SyntheticDomain Create(ulong seed, int entities = 48, int candidates = 8)
    {
        if (entities < 1 || entities > MaxEntities)
            throw new ArgumentOutOfRangeException(nameof(entities), entities, $"SyntheticDomain: the number of entities must be between 1 and {MaxEntities}.");
        var maxCandidates = new[] { Regions.Length, Goods.Length, Animals.Length }.Min();
        if (candidates < 2 || candidates > maxCandidates)
            throw new ArgumentOutOfRangeException(nameof(candidates), candidates, $"SyntheticDomain: the number of cloze candidates must be between 2 and {maxCandidates}.");

        var rng = new Rng(seed);
        var names = NewEntityNames(rng, entities);
        var founders = Shuffled(rng, AllFounderNames());
        var years = Shuffled(rng, Enumerable.Range(FirstYear, LastYear - FirstYear + 1).Select(y => y.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());

        // values[entity][attribute]
        var values = new string[entities][];
        for (var e = 0; e < entities; e++)
        {
            values[e] =
            [
                Regions[rng.NextInt(Regions.Length)],
                founders[e],
                years[e],
                Goods[rng.NextInt(Goods.Length)],
                Animals[rng.NextInt(Animals.Length)],
            ];
        }

        var facts = new List<DomainFact>(entities * AttributeNames.Length);
        var training = new List<string>(entities * AttributeNames.Length * TrainingTemplates);
        var heldOut = new List<string>(entities * AttributeNames.Length * (TemplatesPerAttribute - TrainingTemplates));
        for (var e = 0; e < entities; e++)
        {
            for (var a = 0; a < AttributeNames.Length; a++)
            {
                var fact = new DomainFact(names[e], AttributeNames[a], values[e][a]);
                facts.Add(fact);
                for (var t = 0; t < TemplatesPerAttribute; t++)
                {
                    var sentence = Fill(TemplateTable[a][t], fact.Entity, fact.Value);
                    (t < TrainingTemplates ? training : heldOut).Add(sentence);
                }
            }
        }
        Shuffle(rng, training);

        var cloze = new List<ClozeItem>(facts.Count);
        for (var i = 0; i < facts.Count; i++)
        {
            var e = i / AttributeNames.Length;
            var a = i % AttributeNames.Length;
            var fact = facts[i];
            var distractors = Distractors(rng, a, e, values, fact.Value, candidates - 1, founders, years);
            var list = new List<string>(candidates) { fact.Value };
            list.AddRange(distractors);
            Shuffle(rng, list);
            var options = list.Select(v => Fill(TemplateTable[a][TrainingTemplates], fact.Entity, v)).ToArray();
            cloze.Add(new ClozeItem(fact, list.ToArray(), options, list.IndexOf(fact.Value)));
        }

        return new SyntheticDomain(seed, names, facts, training, heldOut, cloze);
    }

    /// <summary>The seed the domain was made from.</summary>
    public ulong Seed { get; }

    /// <summary>The invented town names, in the order of <see cref="Facts"/>.</summary>
    public IReadOnlyList<string> Entities { get; }

    /// <summary>Every fact, town by town, in the order of <see cref="Attributes"/>.</summary>
    public IReadOnlyList<DomainFact> Facts { get; }

    /// <summary>Every fact stated by each of its attribute's training templates (0–3), in seeded random order.</summary>
    public IReadOnlyList<string> TrainingSentences { get; }

    /// <summary>
    /// Every fact stated by each of its attribute's held-out templates (4–5), fact by fact; none of these templates
    /// is ever used for training.
    /// </summary>
    public IReadOnlyList<string> HeldOutSentences { get; }

    /// <summary>One cloze question per fact (in the order of <see cref="Facts"/>), built on its first held-out template.</summary>
    public IReadOnlyList<ClozeItem> Cloze { get; }

    /// <summary>Training templates per attribute (templates 0–3).</summary>
    public int TrainingTemplatesPerAttribute => TrainingTemplates;

    /// <summary>Held-out templates per attribute (templates 4–5).</summary>
    public int HeldOutTemplatesPerAttribute => TemplatesPerAttribute - TrainingTemplates;

    /// <summary>The attribute names: region, founder, founded, export, emblem.</summary>
    public static IReadOnlyList<string> Attributes { get; } = Array.AsReadOnly(AttributeNames);

    /// <summary>
    /// Each attribute's six sentence templates, with {E} for the town and {V} for the value: the first four are
    /// training templates, the last two held out.
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Templates { get; } =
        AttributeNames.Select((name, a) => (name, a))
            .ToDictionary(p => p.name, p => (IReadOnlyList<string>)Array.AsReadOnly(TemplateTable[p.a]), StringComparer.Ordinal)
            .AsReadOnly();

    private static string Fill(string template, string entity, string value)
    {
        var s = template.Replace("{E}", entity, StringComparison.Ordinal).Replace("{V}", value, StringComparison.Ordinal);
        if (s.Length > MaxSentenceBytes || s.Any(c => c is < ' ' or > '~'))
            throw new InvalidOperationException($"SyntheticDomain: sentence '{s}' is not printable ASCII of at most {MaxSentenceBytes} bytes.");
        return s;
    }

    private static string[] NewEntityNames(Rng rng, int count)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var v in Regions.Concat(GivenNames).Concat(FamilyNames)) taken.Add(v);
        var names = new string[count];
        for (var i = 0; i < count; i++)
        {
            string name;
            do
            {
                name = NameStarts[rng.NextInt(NameStarts.Length)];
                if (rng.NextInt(2) == 1) name += NameMiddles[rng.NextInt(NameMiddles.Length)];
                name += NameEnds[rng.NextInt(NameEnds.Length)];
            } while (!taken.Add(name));
            names[i] = name;
        }
        return names;
    }

    private static string[] AllFounderNames()
    {
        var all = new string[GivenNames.Length * FamilyNames.Length];
        var k = 0;
        foreach (var given in GivenNames)
            foreach (var family in FamilyNames)
                all[k++] = given + " " + family;
        return all;
    }

    /// <summary>
    /// Wrong values for a cloze question. Region, export and emblem draw from the attribute's value list; founder and
    /// year draw from the other towns' values first (names the training text also states), then from unused ones.
    /// </summary>
    private static List<string> Distractors(Rng rng, int attribute, int entity, string[][] values, string truth, int count,
        string[] founders, string[] years)
    {
        List<string> pool;
        List<string> fresh = [];
        switch (AttributeNames[attribute])
        {
            case "region": pool = [.. Regions]; break;
            case "export": pool = [.. Goods]; break;
            case "emblem": pool = [.. Animals]; break;
            default:
                pool = [];
                for (var e = 0; e < values.Length; e++)
                    if (e != entity) pool.Add(values[e][attribute]);
                // Values no town has: the founders and years after the first values.Length of the shuffled lists.
                var unused = attribute == 1 ? founders : years;
                for (var i = values.Length; i < unused.Length; i++) fresh.Add(unused[i]);
                break;
        }
        pool.Remove(truth);
        Shuffle(rng, pool);
        var picked = pool.Take(count).ToList();
        if (picked.Count < count)
        {
            Shuffle(rng, fresh);
            picked.AddRange(fresh.Where(v => v != truth).Take(count - picked.Count));
        }
        if (picked.Count != count || picked.Distinct(StringComparer.Ordinal).Count() != count)
            throw new InvalidOperationException($"SyntheticDomain: could not find {count} distinct distractors for {AttributeNames[attribute]}.");
        return picked;
    }

    private static T[] Shuffled<T>(Rng rng, T[] items)
    {
        var copy = (T[])items.Clone();
        Shuffle(rng, copy);
        return copy;
    }

    /// <summary>Fisher–Yates shuffle in place.</summary>
    private static void Shuffle<T>(Rng rng, IList<T> items)
    {
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = rng.NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
