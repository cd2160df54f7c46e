using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

namespace MailPipe.Cli;

/// <summary>The <c>mailpipe</c> command line.</summary>
internal static class Program
{
    /// <summary>The process entry point.</summary>
    /// <param name="args">The arguments.</param>
    /// <returns>The exit code (see <see cref="ExitCodes"/>).</returns>
    public static async Task<int> Main(string[] args)
    {
        // Standard output buffered (Console.Out writes through on every call): the send command flushes it whenever it
        // is about to wait for the server, so each result is out as soon as it is known, and a burst costs one write.
        _isProcess = true;

        // A standard stream closed at start (>&-, 2>&-): the runtime has taken its descriptor for one of its own, and
        // writing there fails (EBADF). Without standard error its lines go nowhere (as when it fails later: a full
        // disk); without standard output the results would be lost, so nothing is done at all.
        var error = CliEnvironment.WasClosedAtStart(2) ? TextWriter.Null : new LossyWriter(Console.Error);
        if (CliEnvironment.WasClosedAtStart(1))
        {
            await error.WriteLineAsync($"{CommandName}: standard output is closed (the process was started without one, as with >&-): the results would be lost, so nothing was done; give >/dev/null to discard them").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }

        var output = new StreamWriter(CliEnvironment.OpenStandardOutput(), new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false), 64 * 1024) { AutoFlush = false };
        try
        {
            return await RunAsync(args, output, error, CliEnvironment.FromConsole(), CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                await output.DisposeAsync().ConfigureAwait(false); // flushes
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Standard output failed (a full disk, a reader gone): the command has said so on standard error.
            }
        }
    }

    /// <summary>Whether this is the tool's own process (<see cref="Main"/>), not a host that runs <see cref="RunAsync(string[], TextWriter, TextWriter, CancellationToken)"/> in-process.</summary>
    private static bool _isProcess;

    /// <summary>
    /// In the tool's own process, and only there, lets the runtime run socket continuations on its epoll threads rather
    /// than handing each one to the thread pool (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>, read once, when
    /// the process's first socket is registered; the runtime then runs one epoll thread per core). Each hop costs a
    /// thread-pool wake-up (and the pool's spinning, <c>sched_yield</c>) per read and buys nothing here: <c>send</c>
    /// has one connection; the embedded server and <c>serve</c> do nothing on a socket's thread that waits for another
    /// socket (a message is written to its file synchronously, in one call, and every socket wait is asynchronous), so
    /// a connection waits for another only while that one's work runs, as on a thread pool of one thread per core.
    /// Measured in benchmarks/README.md (issues #15 and #16). A value already in the environment is kept (<c>=0</c>
    /// turns it off); a host that runs the command line in-process keeps the runtime's default.
    /// </summary>
    internal static void PreferInlineSocketCompletions()
    {
        const string Name = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
        if (_isProcess && Environment.GetEnvironmentVariable(Name) is null)
        {
            Environment.SetEnvironmentVariable(Name, "1");
        }
    }

    /// <summary>Runs the command line in-process, with the given writers as standard output and standard error.</summary>
    /// <param name="args">The arguments, as after the program name.</param>
    /// <param name="output">Standard output.</param>
    /// <param name="error">Standard error.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The exit code (see <see cref="ExitCodes"/>).</returns>
    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken) =>
        RunAsync(args, output, error, CliEnvironment.Redirected, cancellationToken);

    /// <summary>Runs the command line in-process, with the given standard streams.</summary>
    /// <param name="args">The arguments, as after the program name.</param>
    /// <param name="output">Standard output.</param>
    /// <param name="error">Standard error.</param>
    /// <param name="environment">Standard input, and whether standard output and error are terminals.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The exit code (see <see cref="ExitCodes"/>).</returns>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CliEnvironment environment, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(error);
        if (Array.Exists(args, IsPasswordOption))
        {
            // Said before parsing, so that the parser's "unrecognized argument" message never echoes the password.
            await error.WriteLineAsync(
                $"{CommandName}: there is no --password option: a password on the command line shows in the process list and the shell history. " +
                $"Put it in an environment variable and give its name: {(args.Length > 0 && args[0] == "serve" ? "--auth-user USER --auth-password-env VARIABLE" : "--password-env VARIABLE")}.").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }

        var root = CreateRootCommand(environment);
        var configuration = new InvocationConfiguration { Output = output, Error = error };
        var parseResult = root.Parse(args, ParserConfiguration);
        if (parseResult.Action is not HelpAction && UsageProblems(parseResult) is { Count: > 0 } problems)
        {
            // One line per problem, then where the options are listed; not the whole help text.
            var command = parseResult.CommandResult.Command;
            var prefix = command == root ? CommandName : $"{CommandName} {command.Name}";
            foreach (var problem in problems)
            {
                await error.WriteLineAsync($"{prefix}: {problem}").ConfigureAwait(false);
            }

            await error.WriteLineAsync($"{prefix}: see '{prefix} --help' for the options").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }

        return await parseResult.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether an option of the command has a value that did not parse (a missing value: <c>--to</c> last; two values
    /// for an option that takes one: <c>--from</c> given twice). Its error is reported on its own; a check across
    /// options skips then, as reading such a value throws.
    /// </summary>
    /// <param name="result">The command's result.</param>
    /// <returns>Whether any option's value failed.</returns>
    internal static bool HasOptionErrors(CommandResult result) =>
        result.Children.OfType<OptionResult>().Any(o => o.Errors.Any() || (o.Tokens.Count == 0 && !o.Implicit && o.Option.Arity.MinimumNumberOfValues > 0)
            || o.Tokens.Count > o.Option.Arity.MaximumNumberOfValues);

    /// <summary>
    /// What is wrong with the command line, one entry per problem: first any token that looks like an option but is
    /// none (the FILE argument would otherwise take <c>--bogus</c> for a file name), with the closest option when one is
    /// near; otherwise the parser's and the validators' errors, each once.
    /// </summary>
    /// <param name="parseResult">The parse result.</param>
    /// <returns>The problems; empty when the command line is usable.</returns>
    internal static List<string> UsageProblems(ParseResult parseResult)
    {
        ArgumentNullException.ThrowIfNull(parseResult);
        var command = parseResult.CommandResult.Command;
        if (command.Subcommands.Count > 0 && parseResult.Tokens is [{ Type: TokenType.Argument } first, ..] && parseResult.UnmatchedTokens.Contains(first.Value))
        {
            // A typo in the command itself ("mailpipe sned ..."): the options after it belong to the command that was
            // meant, so they are not listed as unknown.
            return [UnknownCommand(first.Value, command)];
        }

        var positional = new HashSet<Token>(ReferenceEqualityComparer.Instance);
        foreach (var argument in parseResult.CommandResult.Children.OfType<ArgumentResult>())
        {
            positional.UnionWith(argument.Tokens);
        }

        var unknown = new List<string>();
        foreach (var token in parseResult.Tokens)
        {
            if (token.Type == TokenType.DoubleDash)
            {
                break; // after "--" everything is a file, even "-x.eml"
            }

            if (token.Value.Length > 1 && token.Value[0] == '-' && (positional.Contains(token) || parseResult.UnmatchedTokens.Contains(token.Value)))
            {
                unknown.Add(UnknownOption(token.Value, command));
            }
        }

        if (unknown.Count > 0)
        {
            return [.. unknown.Distinct(StringComparer.Ordinal)];
        }

        return [.. parseResult.Errors.Select(e => NamingTheOption(e, OneLine(e.Message).TrimEnd('.'))).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>
    /// The parser's own message for an option's value (<c>Argument 'ALL' not recognized. Must be one of: ...</c>) does
    /// not say which option it was given to: it gets the option's name in front, as the validators' messages have.
    /// </summary>
    private static string NamingTheOption(ParseError error, string message) =>
        (error.SymbolResult as OptionResult ?? (error.SymbolResult as ArgumentResult)?.Parent as OptionResult) is { Option.Name: { } name }
            && !message.Contains(name, StringComparison.Ordinal)
            ? $"{name}: {message}"
            : message;

    /// <summary>
    /// A parser message on one line: System.CommandLine lists the allowed values of an enumeration on lines of their
    /// own (<c>Must be one of:</c>, then one per line, each name in both cases); they are joined, each name once.
    /// </summary>
    private static string OneLine(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return lines.Length <= 1
            ? message.Trim()
            : $"{lines[0]} {string.Join(", ", lines.Skip(1).Distinct(StringComparer.OrdinalIgnoreCase))}";
    }

    private static string UnknownOption(string token, Command command)
    {
        var name = token.Split('=', ':')[0];
        var names = command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith('-')).ToList();
        var closest = names.MinBy(n => Distance(n, name));
        var hint = closest is not null && Distance(closest, name) <= Math.Max(1, name.Length / 4) ? $" (did you mean {closest}?)" : string.Empty;
        var files = command.Arguments.Count > 0 ? "; a file whose name starts with '-' goes after -- or as ./-name" : string.Empty;
        return $"unknown option '{name}'{hint}{files}";
    }

    private static string UnknownCommand(string token, Command command)
    {
        var names = command.Subcommands.Select(c => c.Name).ToList();
        var closest = names.MinBy(n => Distance(n, token));
        var hint = closest is not null && Distance(closest, token) <= Math.Max(1, token.Length / 2) ? $" (did you mean {closest}?)" : string.Empty;
        return $"unknown command '{token}'{hint}; the commands are {string.Join(", ", names)}";
    }

    /// <summary>
    /// The edit distance of two short strings, a swap of two neighbouring characters counting as one edit (optimal
    /// string alignment): <c>--form</c> is one typo away from <c>--from</c>, not two.
    /// </summary>
    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i, j - 1] + 1, d[i - 1, j] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }

    /// <summary>No response files: an argument starting with '@' (an address such as <c>@example.test</c>, a file name) is taken as written.</summary>
    internal static ParserConfiguration ParserConfiguration { get; } = new() { ResponseFileTokenReplacer = null };

    /// <summary>The name of the command, as installed by <c>dotnet tool install MailPipe.Cli</c>.</summary>
    public const string CommandName = "mailpipe";

    /// <summary>The root command with its subcommands.</summary>
    /// <returns>The command tree.</returns>
    /// <remarks>A <see cref="Command"/> named <see cref="CommandName"/> rather than a <see cref="RootCommand"/>, whose name would be the assembly's (<c>MailPipe.Cli</c>) in help and errors.</remarks>
    /// <param name="environment">Standard input and the terminals, or <see langword="null"/> for none (<see cref="CliEnvironment.Redirected"/>).</param>
    public static Command CreateRootCommand(CliEnvironment? environment = null)
    {
        var root = new Command(CommandName, "mailpipe: send mail over SMTP with MailPipe, probe a server, or run a local SMTP server that saves what it receives. " + ExitCodes.Summary);
        root.Options.Add(new HelpOption());
        root.Options.Add(new VersionOption());
        root.Subcommands.Add(new SendCommand { Environment = environment ?? CliEnvironment.Redirected }.Command);
        root.Subcommands.Add(new ProbeCommand { Environment = environment ?? CliEnvironment.Redirected }.Command);
        root.Subcommands.Add(new ServeCommand().Command);
        return root;
    }

    private static bool IsPasswordOption(string argument) =>
        argument == "--password"
        || argument.StartsWith("--password=", StringComparison.Ordinal)
        || argument.StartsWith("--password:", StringComparison.Ordinal);
}
