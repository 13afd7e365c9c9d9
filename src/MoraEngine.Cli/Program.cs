using System.CommandLine;
using MoraEngine.Cli.Commands;

var root = new RootCommand("mora — train, adapt and benchmark small transformers in pure managed .NET")
{
    TrainCommand.Create(),
    BenchCommand.Create(),
    InfoCommand.Create(),
};
return root.Parse(args).Invoke();
