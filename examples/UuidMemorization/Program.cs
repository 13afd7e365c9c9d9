// The MoRA paper's memory experiment: FFT vs LoRA vs MoRA memorising random UUID pairs.
//   dotnet run -c Release --project examples/UuidMemorization -- --help
// The same command is `mora uuid`; the experiment is MoraEngine.Examples.Uuid.UuidExperiment (src/MoraEngine.Uuid).
return MoraEngine.Examples.Uuid.UuidCommand.CreateRoot().Parse(args).Invoke();
