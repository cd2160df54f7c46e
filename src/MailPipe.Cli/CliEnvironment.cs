namespace MailPipe.Cli;

/// <summary>What the command line gets from its process besides the arguments: standard input, and whether standard output and error are terminals.</summary>
/// <param name="OpenInput">Opens standard input (for the file argument <c>-</c>).</param>
/// <param name="OutputIsTerminal">Whether standard output is a terminal.</param>
/// <param name="ErrorIsTerminal">Whether standard error is a terminal (the progress of a batch is shown only then).</param>
internal sealed record CliEnvironment(Func<Stream> OpenInput, bool OutputIsTerminal, bool ErrorIsTerminal)
{
    /// <summary>No standard input, and neither output a terminal: as when run in-process by tests.</summary>
    public static CliEnvironment Redirected { get; } = new(() => Stream.Null, OutputIsTerminal: false, ErrorIsTerminal: false);

    /// <summary>The process's own standard streams.</summary>
    /// <returns>The environment.</returns>
    public static CliEnvironment FromConsole() => new(Console.OpenStandardInput, !Console.IsOutputRedirected, !Console.IsErrorRedirected);
}
