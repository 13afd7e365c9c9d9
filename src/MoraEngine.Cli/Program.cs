using MoraEngine.Cli;

return MoraCli.Build().Parse(args).Invoke();
