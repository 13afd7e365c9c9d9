namespace MoraEngine.Tests;

/// <summary>
/// A small stand-in for Verify.Xunit (which cannot be restored here), with its file convention: the expected text is
/// <c>tests/MoraEngine.Tests/Snapshots/&lt;name&gt;.verified.txt</c>; on a mismatch the actual text goes to
/// <c>&lt;name&gt;.received.txt</c> next to it (git-ignored) and the test fails. With <c>MORA_ACCEPT_SNAPSHOTS=1</c>
/// the received text is accepted as the new verified file instead.
/// </summary>
public static class Snapshot
{
    public static string Directory
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !File.Exists(Path.Combine(dir.FullName, "MoraEngine.sln"))) dir = dir.Parent;
            if (dir == null) throw new InvalidOperationException($"No MoraEngine.sln above {AppContext.BaseDirectory}.");
            return Path.Combine(dir.FullName, "tests", "MoraEngine.Tests", "Snapshots");
        }
    }

    public static void Verify(string actual, string name)
    {
        actual = actual.Replace("\r\n", "\n");
        var verified = Path.Combine(Directory, name + ".verified.txt");
        var received = Path.Combine(Directory, name + ".received.txt");
        var expected = File.Exists(verified) ? File.ReadAllText(verified).Replace("\r\n", "\n") : null;
        if (expected == actual)
        {
            if (File.Exists(received)) File.Delete(received);
            return;
        }
        if (Environment.GetEnvironmentVariable("MORA_ACCEPT_SNAPSHOTS") == "1")
        {
            File.WriteAllText(verified, actual);
            if (File.Exists(received)) File.Delete(received);
            return;
        }
        File.WriteAllText(received, actual);
        var detail = expected == null ? "no verified snapshot yet" : FirstDifference(expected, actual);
        throw new Xunit.Sdk.XunitException(
            $"Snapshot '{name}' differs ({detail}). Compare {received} with {verified}; accept with MORA_ACCEPT_SNAPSHOTS=1.");
    }

    private static string FirstDifference(string expected, string actual)
    {
        var e = expected.Split('\n');
        var a = actual.Split('\n');
        for (var i = 0; i < Math.Max(e.Length, a.Length); i++)
        {
            var el = i < e.Length ? e[i] : "<end>";
            var al = i < a.Length ? a[i] : "<end>";
            if (el != al) return $"line {i + 1}: expected \"{el.Trim()}\", got \"{al.Trim()}\"";
        }
        return "same lines";
    }
}
