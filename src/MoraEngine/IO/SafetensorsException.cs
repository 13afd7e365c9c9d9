namespace MoraEngine.IO;

/// <summary>
/// Thrown when a safetensors file is malformed, truncated or uses a dtype this reader cannot convert.
/// The message always names the file and, where one is involved, the tensor.
/// </summary>
/// <remarks>
/// Derives from <see cref="IOException"/> because <see cref="InvalidDataException"/> is sealed; callers that
/// already catch I/O failures while loading a checkpoint therefore also catch corrupt files.
/// </remarks>
public sealed class SafetensorsException : IOException
{
    /// <summary>Creates the exception for <paramref name="filePath"/> (and optionally one tensor in it).</summary>
    /// <param name="filePath">The file being read.</param>
    /// <param name="tensorName">The tensor the problem concerns, or <c>null</c> for file-level problems.</param>
    /// <param name="problem">What is wrong, without the file/tensor prefix.</param>
    /// <param name="innerException">The underlying cause, if any (e.g. a JSON parse error).</param>
    public SafetensorsException(string filePath, string? tensorName, string problem, Exception? innerException = null)
        : base(Format(filePath, tensorName, problem), innerException)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file that failed to load.</summary>
    public string FilePath { get; }

    /// <summary>The tensor the problem concerns, or <c>null</c> for file-level problems.</summary>
    public string? TensorName { get; }

    private static string Format(string filePath, string? tensorName, string problem) =>
        tensorName is null
            ? $"Safetensors file '{filePath}': {problem}"
            : $"Safetensors file '{filePath}', tensor '{tensorName}': {problem}";
}
