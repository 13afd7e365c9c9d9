using System.Diagnostics;
using MoraEngine.Adapters;
using MoraEngine.Cli;
using MoraEngine.IO;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;
using Xunit;

namespace MoraEngine.Tests;

/// <summary>Resume that checks its plan, signals and kills during saves, and mutated files.</summary>
[Collection("Console")]
public class ResumePlanTests
{
    private static int Run(params string[] args) => CliRunner.Run(args).Code;

    private static string[] Copy(string dir, params string[] extra) =>
        ["train", "--copy-length", "4", "--out", dir, "--checkpoint-every", "5", .. extra];

    [Fact]
    public void Resume_TakesThePlan_RefusesConflicts_AndExtendsOnlyWhenAsked()
    {
        var dir = Directory.CreateTempSubdirectory("mora-plan").FullName;
        try
        {
            Assert.Equal(0, Run(Copy(dir, "--steps", "10", "--lr", "2e-3", "--batch", "4")));
            // The run is complete: nothing to do, no NaN summary, exit 0.
            Assert.Equal(0, Run(Copy(dir, "--resume")));
            // A conflicting option is an error, and so is a longer run without --extend.
            Assert.Equal(2, Run(Copy(dir, "--resume", "--batch", "8")));
            Assert.Equal(2, Run(Copy(dir, "--resume", "--lr", "1e-3")));
            Assert.Equal(2, Run(Copy(dir, "--resume", "--steps", "14")));
            Assert.Equal("10", Safetensors.Load(Path.Combine(dir, "checkpoint.safetensors")).Metadata["step"]);
            // With --extend it continues to the new end, with the plan's lr and batch.
            Assert.Equal(0, Run(Copy(dir, "--resume", "--steps", "14", "--extend")));
            Assert.Equal("14", Safetensors.Load(Path.Combine(dir, "checkpoint.safetensors")).Metadata["step"]);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Resume_OfATextRun_FindsItsText_AndRefusesAChangedFile()
    {
        var dir = Directory.CreateTempSubdirectory("mora-plan-text").FullName;
        try
        {
            var text = Path.Combine(dir, "t.txt");
            File.WriteAllText(text, string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 40)));
            Assert.Equal(0, Run("train", "--text", text, "--config", "small-cpu", "--steps", "4", "--batch", "2", "--out", dir, "--checkpoint-every", "2"));
            // Without --text the resumed run reads the plan's file (not the copy task) and continues.
            Assert.Equal(0, Run("train", "--out", dir, "--resume", "--steps", "6", "--extend"));
            Assert.Equal("6", Safetensors.Load(Path.Combine(dir, "checkpoint.safetensors")).Metadata["step"]);
            File.AppendAllText(text, "changed");
            Assert.Equal(2, Run("train", "--out", dir, "--resume", "--steps", "8", "--extend"));
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>Child processes of the real CLI: SIGTERM saves like Ctrl+C, kill -9 never leaves a broken checkpoint.</summary>
public class KillTests
{
    private static Process Start(string outDir, int steps)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "mora.dll"), "train", "--steps", steps.ToString(), "--batch", "8",
                     "--copy-length", "6", "--checkpoint-every", "1", "--out", outDir, "--device", "cpu", "--log-every", "1" })
            psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static void WaitForCheckpoint(string path, Process p)
    {
        var sw = Stopwatch.StartNew();
        while (!File.Exists(path) && !p.HasExited && sw.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(20);
        Assert.True(File.Exists(path), "the child wrote no checkpoint");
    }

    [Fact]
    public void Sigterm_SavesAndExits130_LikeCtrlC()
    {
        if (OperatingSystem.IsWindows()) return;
        var dir = Directory.CreateTempSubdirectory("mora-term").FullName;
        try
        {
            var p = Start(dir, 100_000);
            var ckpt = Path.Combine(dir, "checkpoint.safetensors");
            WaitForCheckpoint(ckpt, p);
            Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
            Assert.True(p.WaitForExit(30_000), "the child did not stop on SIGTERM");
            Assert.Equal(130, p.ExitCode);
            Assert.True(int.Parse(Safetensors.Load(ckpt).Metadata["step"]) >= 1);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Kill9_AtRandomPoints_AlwaysLeavesALoadableCheckpoint_AndStrayTemporariesAreCleaned()
    {
        if (OperatingSystem.IsWindows()) return;
        var dir = Directory.CreateTempSubdirectory("mora-kill").FullName;
        var rng = new Random(5);
        try
        {
            var ckpt = Path.Combine(dir, "checkpoint.safetensors");
            for (var round = 0; round < 4; round++)
            {
                var p = Start(dir, 100_000);
                WaitForCheckpoint(ckpt, p);
                Thread.Sleep(rng.Next(0, 400));
                p.Kill();
                p.WaitForExit();
                // Whatever the moment, the checkpoint loads and its data matches its checksum.
                var file = Safetensors.Load(ckpt);
                Assert.Contains(Safetensors.ChecksumKey, file.Metadata.Keys);
                File.Delete(ckpt);   // the next child starts fresh (it would refuse to overwrite a run without --resume? no: it restarts)
            }
            // Temporaries of killed writers are removed by the next save next to them.
            var stray = ckpt + ".tmp-999999-deadbeef";
            File.WriteAllText(stray, "x");
            var model = new TransformerModel(ModelConfig.Tiny);
            ModelIO.SaveWeights(ckpt, model);
            Assert.False(File.Exists(stray));
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>
/// Seeded mutants of a small checkpoint, adapter file, adapter config and model config: every one ends in the
/// project's own error or loads bit-identical tensors, and none allocates beyond the file's size.
/// </summary>
public class FuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>Checkpoint mutants per run (MORA_FUZZ_MUTANTS raises it for a longer campaign); adapters get half as many.</summary>
    private static int Mutants => int.TryParse(Environment.GetEnvironmentVariable("MORA_FUZZ_MUTANTS"), out var n) && n > 0 ? n : 300;

    private static byte[] Mutate(byte[] original, Random rng)
    {
        var b = (byte[])original.Clone();
        switch (rng.Next(6))
        {
            case 0: // flip a few bits anywhere
                for (var i = rng.Next(1, 4); i > 0; i--) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return b;
            case 1: // a byte in the header
                var h = (int)Math.Min(b.Length - 1, 8 + BitConverter.ToInt64(original, 0));
                b[rng.Next(h)] = (byte)rng.Next(256);
                return b;
            case 2: // the header length off by a little
                var len = BitConverter.ToInt64(original, 0) + rng.Next(-3, 4);
                BitConverter.GetBytes(len).CopyTo(b, 0);
                return b;
            case 3: // truncated
                return b[..rng.Next(b.Length)];
            case 4: // bytes appended
                return [.. b, .. Enumerable.Range(0, rng.Next(1, 9)).Select(_ => (byte)rng.Next(256))];
            default: // a digit in the header changed (shapes, offsets, metadata numbers)
                var end = (int)Math.Min(b.Length, 8 + BitConverter.ToInt64(original, 0));
                var digits = Enumerable.Range(8, Math.Max(0, end - 8)).Where(i => b[i] is >= (byte)'0' and <= (byte)'9').ToArray();
                if (digits.Length > 0) b[digits[rng.Next(digits.Length)]] = (byte)('0' + rng.Next(10));
                return b;
        }
    }

    [Fact]
    public void MutatedCheckpointsAndAdapters_FailCleanly_OrLoadIdentically()
    {
        var dir = Directory.CreateTempSubdirectory("mora-fuzz").FullName;
        try
        {
            var cfg = ModelConfig.Tiny with { Layers = 1, DModel = 16, Heads = 2, VocabSize = 12, Context = 8 };
            var model = new TransformerModel(cfg, 3);
            var adapted = AdaptedModel.Wrap(model, new AdapterConfig { Method = AdapterMethod.Mora, Rank = 2, TargetModules = ["q", "v"] });
            var trainer = new Trainer(model, new AdamW(model.TrainableParameters(), 1e-2f), new ConstantLr(1e-2f), new CopyTaskSource(3, 6, 1),
                new TrainerOptions { BatchSize = 2, Time = 7 });
            trainer.TrainStep();
            var ckpt = Path.Combine(dir, "c.safetensors");
            trainer.SaveCheckpoint(ckpt);
            var adapterDir = Path.Combine(dir, "adapter");
            adapted.Save(adapterDir);
            var ckptBytes = File.ReadAllBytes(ckpt);
            var adapterBytes = File.ReadAllBytes(Path.Combine(adapterDir, AdaptedModel.WeightsFileName));
            var adapterJson = File.ReadAllText(Path.Combine(adapterDir, AdaptedModel.ConfigFileName));
            var reference = Safetensors.Load(ckpt).Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.Data);
            var rng = new Random(2026);
            int clean = 0, identical = 0;
            var mutant = Path.Combine(dir, "m.safetensors");
            for (var i = 0; i < Mutants; i++)
            {
                File.WriteAllBytes(mutant, Mutate(ckptBytes, rng));
                try
                {
                    var file = Safetensors.Load(mutant);
                    var fresh = new TransformerModel(cfg, 3);
                    AdaptedModel.Wrap(fresh, new AdapterConfig { Method = AdapterMethod.Mora, Rank = 2, TargetModules = ["q", "v"] });
                    var t2 = new Trainer(fresh, new AdamW(fresh.TrainableParameters(), 1e-2f), new ConstantLr(1e-2f), new CopyTaskSource(3, 6, 1),
                        new TrainerOptions { BatchSize = 2, Time = 7 });
                    Checkpoint.Restore(mutant, t2);
                    foreach (var (name, data) in reference)
                        Assert.True(file.Tensors[name].Data.AsSpan().SequenceEqual(data), $"mutant {i}: '{name}' loaded with other values");
                    identical++;
                }
                catch (SafetensorsException)
                {
                    clean++;
                }
            }
            for (var i = 0; i < Mutants / 2; i++)
            {
                var d = Path.Combine(dir, $"a{i}");
                Directory.CreateDirectory(d);
                var mutateWeights = rng.Next(2) == 0;
                File.WriteAllBytes(Path.Combine(d, AdaptedModel.WeightsFileName), mutateWeights ? Mutate(adapterBytes, rng) : adapterBytes);
                var json = adapterJson.ToCharArray();
                if (!mutateWeights)
                    for (var k = rng.Next(1, 3); k > 0; k--) json[rng.Next(json.Length)] = "0123456789\"{}[],:tfn -x"[rng.Next(23)];
                File.WriteAllText(Path.Combine(d, AdaptedModel.ConfigFileName), new string(json));
                var fresh = new TransformerModel(cfg, 3);
                try
                {
                    AdaptedModel.Load(d, fresh);
                    identical++;
                }
                catch (Exception e) when (e is SafetensorsException or ArgumentException)
                {
                    clean++;
                    Assert.All(fresh.Linears(), l => Assert.Null(l.Layer.Adapter));   // nothing half-attached
                }
            }
            var total = Mutants + Mutants / 2;
            output.WriteLine($"{total} mutants: {clean} refused with the project's errors, {identical} loaded bit-identical");
            Assert.Equal(total, clean + identical);
            Assert.True(clean > total * 2 / 3, $"only {clean} of {total} mutants were refused");
        }
        finally { Directory.Delete(dir, true); }
    }
}
