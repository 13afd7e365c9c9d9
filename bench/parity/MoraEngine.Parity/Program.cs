using MoraEngine.Parity;

// parity run  --arch uuid|llama --method fft|lora|mora|relora|remora [--mora-type T] [--rank R] [--alpha A] [--lr LR]
//             [--steps N] [--schedule-steps N] [--warmup N] [--batch B] [--pairs P] [--d-model D] [--layers L]
//             [--heads H] [--restart-every N] [--seed S] [--base FILE] [--eval] --out DIR
// parity compare DIR...   (after bench/parity/reference.py DIR)
return Cli.Run(args);

internal static class Cli
{
    public static int Run(string[] args)
    {
        try
        {
            if (args.Length == 0) return Usage();
            return args[0] switch
            {
                "run" => RunCase(args[1..]),
                "compare" => Compare(args[1..]),
                _ => Usage(),
            };
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or InvalidOperationException)
        {
            Console.Error.WriteLine($"parity: {e.Message}");
            return 2;
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: parity run --arch uuid|llama --method fft|lora|mora|relora|remora [options] --out DIR");
        Console.Error.WriteLine("       parity compare DIR...");
        return 2;
    }

    private static int RunCase(string[] args)
    {
        var (c, outDir, evaluate) = ParityCase.FromArgs(args);
        if (outDir == null) throw new ArgumentException("--out DIR is required.");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var r = c.Run(outDir, evaluate, (step, loss) =>
        {
            if (step % 50 == 0 || step == c.Steps) Console.Error.WriteLine($"  {c.Name} step {step}/{c.Steps} loss {loss:0.0000}");
        });
        var acc = r.FinalEval is { } e ? $", char accuracy {e.CharAccuracy * 100:0.0}%" : "";
        Console.WriteLine($"{c.Name}: {c.Steps} steps in {sw.Elapsed.TotalSeconds:0.0} s, final loss {r.Losses[^1]:0.0000}{acc} -> {outDir}");
        return 0;
    }

    private static int Compare(string[] dirs)
    {
        if (dirs.Length == 0) throw new ArgumentException("compare: name at least one case directory.");
        Console.WriteLine(ParityReport.Header);
        var ok = true;
        foreach (var d in dirs)
        {
            var r = ParityReport.Compare(d);
            Console.WriteLine(r.Row());
            ok &= r.Passed;
        }
        return ok ? 0 : 1;
    }
}
