using System.CommandLine;
using MoraEngine.Cli.Commands;
using MoraEngine.Examples.Paper;
using MoraEngine.Examples.Uuid;

namespace MoraEngine.Cli;

/// <summary>The <c>mora</c> command tree.</summary>
internal static class MoraCli
{
    public static RootCommand Build() => new("mora — train, adapt and benchmark small transformers in pure managed .NET")
    {
        TrainCommand.Create(),
        UuidCommand.Create(),
        PaperCommand.Create(),
        AdapterCommands.Merge(),
        AdapterCommands.Export(),
        TextCommands.Generate(),
        TextCommands.Eval(),
        AdapterCommands.Analyze(),
        BenchCommand.Create(),
        TokenizeCommand.Create(),
        InfoCommand.Create(),
        SelftestCommand.Create(),
    };
}
