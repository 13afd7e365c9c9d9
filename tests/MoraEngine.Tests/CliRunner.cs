using MoraEngine.Cli;

namespace MoraEngine.Tests;

/// <summary>Runs the <c>mora</c> command in-process with standard output captured (tests in the "Console" collection).</summary>
internal static class CliRunner
{
    public static (int Code, string Out) Run(params string[] args)
    {
        var old = Console.Out;
        var sw = new StringWriter();
        Console.SetOut(sw);
        try
        {
            return (MoraCli.Build().Parse(args).Invoke(), sw.ToString());
        }
        finally
        {
            Console.SetOut(old);
        }
    }
}
