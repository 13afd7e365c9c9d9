using BenchmarkDotNet.Running;

namespace MoraEngine.Bench;

/// <summary>Entry point: pick suites with BenchmarkDotNet's usual arguments, e.g. <c>--filter *Gemm*</c>.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
