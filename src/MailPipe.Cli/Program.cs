using System.CommandLine;
using System.CommandLine.Help;

namespace MailPipe.Cli;

/// <summary>The <c>mailpipe</c> command line.</summary>
internal static class Program
{
    /// <summary>The process entry point.</summary>
    /// <param name="args">The arguments.</param>
    /// <returns>The exit code (see <see cref="ExitCodes"/>).</returns>
    public static Task<int> Main(string[] args) => RunAsync(args, Console.Out, Console.Error, CancellationToken.None);

    /// <summary>Runs the command line in-process, with the given writers as standard output and standard error.</summary>
    /// <param name="args">The arguments, as after the program name.</param>
    /// <param name="output">Standard output.</param>
    /// <param name="error">Standard error.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The exit code (see <see cref="ExitCodes"/>).</returns>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(error);
        if (Array.Exists(args, IsPasswordOption))
        {
            // Said before parsing, so that the parser's "unrecognized argument" message never echoes the password.
            await error.WriteLineAsync(
                $"{CommandName}: there is no --password option: a password on the command line shows in the process list and the shell history. " +
                "Put it in an environment variable and give its name: --password-env VARIABLE.").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }

        var root = CreateRootCommand();
        var configuration = new InvocationConfiguration { Output = output, Error = error };
        return await root.Parse(args).InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The name of the command, as installed by <c>dotnet tool install MailPipe.Cli</c>.</summary>
    public const string CommandName = "mailpipe";

    /// <summary>The root command with its subcommands.</summary>
    /// <returns>The command tree.</returns>
    /// <remarks>A <see cref="Command"/> named <see cref="CommandName"/> rather than a <see cref="RootCommand"/>, whose name would be the assembly's (<c>MailPipe.Cli</c>) in help and errors.</remarks>
    public static Command CreateRootCommand()
    {
        var root = new Command(CommandName, "mailpipe: send mail over SMTP with MailPipe, probe a server, or run a local SMTP server that saves what it receives. " + ExitCodes.Summary);
        root.Options.Add(new HelpOption());
        root.Options.Add(new VersionOption());
        root.Subcommands.Add(new SendCommand().Command);
        root.Subcommands.Add(new ProbeCommand().Command);
        root.Subcommands.Add(new ServeCommand().Command);
        return root;
    }

    private static bool IsPasswordOption(string argument) =>
        argument == "--password"
        || argument.StartsWith("--password=", StringComparison.Ordinal)
        || argument.StartsWith("--password:", StringComparison.Ordinal);
}
