using System.CommandLine;
using System.CommandLine.Parsing;
using System.Net.Sockets;
using MimeKit;

namespace MailPipe.Cli;

/// <summary><c>mailpipe send</c>: its options, their checks, and the run.</summary>
internal sealed class SendCommand
{
    private readonly Argument<string[]> _files = new("files")
    {
        Description = "Message files (.eml, RFC 5322) to send, in order, over one connection; a directory stands for its *.eml files, a name with * or ? for the files it matches.",
        Arity = ArgumentArity.ZeroOrMore,
        HelpName = "FILE",
    };

    private readonly Option<string?> _from = new("--from")
    {
        Description = "The sender (MAIL FROM): exactly one address (RFC 5321 mailbox, or Name <mailbox>). With files it overrides the From/Sender field; \"<>\" sends with the null reverse-path.",
        HelpName = "ADDRESS",
    };

    private readonly Option<string[]> _to = new("--to")
    {
        Description = "A recipient (RCPT TO): exactly one address (RFC 5321 mailbox, or Name <mailbox>); repeat the option for more. With files it overrides the To/Cc/Bcc fields.",
        HelpName = "ADDRESS",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Option<string?> _subject = new("--subject") { Description = "The subject of a message built from the options.", HelpName = "TEXT" };

    private readonly Option<string?> _body = new("--body") { Description = "The text of a message built from the options.", HelpName = "TEXT" };

    private readonly ConnectionOptions _connection = new(
        "The SMTP server, host[:port] or [IPv6]:port (port 25 by default). Without it, an embedded server on 127.0.0.1 saves the messages to --save-dir.",
        serverRequired: false);

    private readonly Option<string?> _saveDirectory = new("--save-dir")
    {
        Description = $"Where the embedded server saves each message, as <timestamp>-<n>.eml (default {SendOptions.DefaultSaveDirectory}); only without --server.",
        HelpName = "DIR",
    };

    private readonly Option<string?> _auth = new("--auth")
    {
        Description = "Authenticate (RFC 4954) with this mechanism: " + string.Join(", ", AuthSettings.Mechanisms) + ", or auto for the strongest password mechanism both sides support (the default with --user).",
        HelpName = "MECHANISM",
    };

    private readonly Option<string?> _user = new("--user") { Description = "The user name to authenticate as (the mailbox, for XOAUTH2 and OAUTHBEARER).", HelpName = "USER" };

    private readonly Option<string?> _passwordEnvironment = new("--password-env")
    {
        Description = "The environment variable that holds the password (the OAuth access token for XOAUTH2 and OAUTHBEARER). Secrets are never taken from the command line.",
        HelpName = "VARIABLE",
    };

    private readonly Option<bool> _allowCleartextAuth = new("--allow-cleartext-auth")
    {
        Description = "Let PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER send the secret on a connection without TLS (test servers only).",
    };

    private readonly Option<bool> _json = new("--json") { Description = "Print one JSON object per message, one per line, then a summary object." };

    /// <summary>Creates the command and its checks.</summary>
    public SendCommand()
    {
        Command = new Command(
            "send",
            "Send .eml files (a directory, a wildcard), or a message built from --from/--to/--subject/--body, over one SMTP connection; the transactions are pipelined, and a summary with messages per second ends the output. " + ExitCodes.Summary)
        {
            _files, _from, _to, _subject, _body,
        };
        foreach (var option in _connection.All)
        {
            Command.Options.Add(option);
        }

        Command.Options.Add(_auth);
        Command.Options.Add(_user);
        Command.Options.Add(_passwordEnvironment);
        Command.Options.Add(_allowCleartextAuth);
        Command.Options.Add(_saveDirectory);
        Command.Options.Add(_json);

        _from.Validators.Add(result => CheckAddress(result, "--from", allowNullPath: true));
        _to.Validators.Add(result => CheckAddress(result, "--to", allowNullPath: false));
        _auth.Validators.Add(result =>
        {
            if (!AuthSettings.TryParseMechanism(result.GetValueOrDefault<string?>(), out _))
            {
                result.AddError($"--auth: '{result.GetValueOrDefault<string?>()}' is not one of {string.Join(", ", AuthSettings.Mechanisms)}, auto");
            }
        });
        _user.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } user && (user.Length == 0 || user.AsSpan().IndexOfAny("\r\n\0") >= 0))
            {
                result.AddError("--user: the user name is empty or holds a line break or NUL");
            }
        });
        _passwordEnvironment.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } name && (name.Length == 0 || name.AsSpan().IndexOfAny("=\0") >= 0))
            {
                result.AddError($"--password-env: '{name}' is not an environment variable name (give the variable's name, not the password)");
            }
        });
        Command.Validators.Add(CheckCombination);
        Command.SetAction(RunAsync);
    }

    /// <summary>The command.</summary>
    public Command Command { get; }

    /// <summary>Runs <c>mailpipe send</c> with checked options.</summary>
    /// <param name="options">The options.</param>
    /// <param name="output">Standard output: the results and the summary.</param>
    /// <param name="error">Standard error: diagnostics and the transcript.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The exit code (see <see cref="ExitCodes"/>).</returns>
    public static async Task<int> RunAsync(SendOptions options, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var messages = await LoadMessagesAsync(options, cancellationToken).ConfigureAwait(false);
        try
        {
            var printer = new ResultPrinter(output, options.Json);
            var results = new List<MessageResult>(messages.Count);

            // Every file is opened before the connection is made: one that cannot be is reported now and costs nothing else.
            var sendable = new List<OutgoingMessage>(messages.Count);
            foreach (var message in messages)
            {
                if (message.Prepare())
                {
                    sendable.Add(message);
                    continue;
                }

                var result = BatchSender.NotSent(message, ExitCodes.UsageOrInput, message.InputError!);
                printer.Print(result);
                results.Add(result);
            }

            BatchReport? report = null;
            var server = options.Connection.Server;
            if (sendable.Count > 0)
            {
                EmbeddedServer? embedded = null;
                if (server is null)
                {
                    try
                    {
                        embedded = await EmbeddedServer.StartAsync(options.SaveDirectory, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or SocketException)
                    {
                        await error.WriteLineAsync($"mailpipe: cannot start the embedded SMTP server with --save-dir {options.SaveDirectory}: {ex.Message}").ConfigureAwait(false);
                        return ExitCodes.UsageOrInput;
                    }

                    server = embedded.Address;
                    await error.WriteLineAsync($"mailpipe: no --server given: delivering to an embedded SMTP server on {server}, saving to {options.SaveDirectory}").ConfigureAwait(false);
                }

                try
                {
                    using var loggerFactory = options.Connection.Trace ? TranscriptLoggerProvider.CreateFactory(error) : null;
                    var sessionOptions = options.Connection.CreateSessionOptions(loggerFactory, options.AllowCleartextAuthentication);
                    var sender = new BatchSender(server, options.Connection.HeloName, options.Connection.TlsMode, options.Auth, sessionOptions);
                    report = await sender.SendAsync(sendable, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    if (embedded is not null)
                    {
                        await embedded.DisposeAsync().ConfigureAwait(false);
                    }
                }

                if (report.SessionError is { } sessionError)
                {
                    await error.WriteLineAsync($"mailpipe send: {sessionError}").ConfigureAwait(false);
                }

                foreach (var sent in report.Results)
                {
                    var result = sent;
                    if (embedded is not null && result.Outcome == MessageOutcome.Accepted && embedded.TryTakeSaved(out var path))
                    {
                        result = result with { SavedTo = path };
                    }

                    printer.Print(result);
                    results.Add(result);
                }
            }

            var summary = BatchSummary.From(results, report, server);
            printer.Print(summary);
            return summary.ExitCode;
        }
        finally
        {
            foreach (var message in messages)
            {
                message.Dispose();
            }
        }
    }

    private static async Task<List<OutgoingMessage>> LoadMessagesAsync(SendOptions options, CancellationToken cancellationToken)
    {
        if (options.Files.Count == 0)
        {
            var builder = new MessageBuilder(options.FromMailbox!, options.To, options.Subject, options.Body, DateTimeOffset.Now);
            return [OutgoingMessage.Composed(1, builder)];
        }

        var recipients = options.To.Select(m => m.Address).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var messages = new List<OutgoingMessage>(options.Files.Count);
        for (var i = 0; i < options.Files.Count; i++)
        {
            messages.Add(await OutgoingMessage.LoadFileAsync(i + 1, options.Files[i], options.FromAddress, recipients, cancellationToken).ConfigureAwait(false));
        }

        return messages;
    }

    private static void CheckAddress(OptionResult result, string option, bool allowNullPath)
    {
        foreach (var token in result.Tokens)
        {
            if (!MailboxArgument.TryParse(token.Value, allowNullPath, out _, out _, out var problem))
            {
                var shown = token.Value.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\0", "\\0", StringComparison.Ordinal);
                result.AddError($"{option}: '{TerminalText.Sanitize(shown)}' {problem}");
            }
        }
    }

    /// <summary>The mailbox of a checked address value; <see langword="null"/> for the null reverse-path.</summary>
    private static MailboxAddress? ToMailbox(string value)
    {
        _ = MailboxArgument.TryParse(value, allowNullPath: true, out var address, out var name, out _); // checked by the option's validator
        return address.Length == 0 ? null : new MailboxAddress(name, address);
    }

    private void CheckCombination(CommandResult result)
    {
        var files = result.GetValue(_files) ?? [];
        var from = result.GetValue(_from);
        var to = result.GetValue(_to) ?? [];
        if (files.Length > 0)
        {
            if (result.GetValue(_subject) is not null || result.GetValue(_body) is not null)
            {
                result.AddError("--subject and --body build a message of their own; they cannot be used with files");
            }
        }
        else if (from is null && to.Length == 0)
        {
            result.AddError("nothing to send: give .eml files, or --from and --to (with --subject and --body) to build a message");
        }
        else if (from is null)
        {
            result.AddError("--from is missing: a built message needs a sender (--from ADDRESS)");
        }
        else if (to.Length == 0)
        {
            result.AddError("--to is missing: a built message needs at least one recipient (--to ADDRESS, repeat for more)");
        }
        else if (MailboxArgument.TryParse(from, allowNullPath: true, out var address, out _, out _) && address.Length == 0)
        {
            result.AddError("--from: a built message needs a sender address (\"<>\" is only for files)");
        }

        var server = result.GetResult(_connection.Server) is not null;
        if (server && result.GetResult(_saveDirectory) is not null)
        {
            result.AddError("--save-dir is for the embedded server; it cannot be used with --server");
        }

        _connection.Validate(result, tlsByDefault: false);
        var tls = result.GetValue(_connection.ImplicitTls) || result.GetValue(_connection.StartTls);
        if (tls && !server)
        {
            result.AddError("--tls and --starttls need --server: the embedded server speaks plain SMTP only");
        }

        var auth = result.GetResult(_auth) is not null;
        var user = result.GetResult(_user) is not null;
        var passwordEnvironment = result.GetResult(_passwordEnvironment) is not null;
        if (auth || user || passwordEnvironment)
        {
            if (!user || !passwordEnvironment)
            {
                result.AddError("authentication needs both --user and --password-env (the name of the environment variable that holds the password or token)");
            }

            if (!server)
            {
                result.AddError("--auth, --user and --password-env need --server: the embedded server does not authenticate");
            }

            var mechanism = AuthSettings.TryParseMechanism(result.GetValue(_auth) ?? AuthSettings.Automatic, out var name) ? name : AuthSettings.Automatic;
            if (AuthSettings.RevealsSecret(mechanism) && !tls && !result.GetValue(_allowCleartextAuth))
            {
                result.AddError($"--auth {mechanism} sends the secret itself: use --tls or --starttls, or --allow-cleartext-auth to send it without TLS anyway");
            }
        }
    }

    private async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var output = parseResult.InvocationConfiguration.Output;
        var error = parseResult.InvocationConfiguration.Error;
        if (!_connection.TryRead(parseResult, SmtpTlsMode.None, out var connection, out var connectionError))
        {
            await error.WriteLineAsync($"mailpipe send: {connectionError}").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }

        using (connection)
        {
            if (!FileArguments.TryExpand(parseResult.GetValue(_files) ?? [], out var files, out var filesError))
            {
                await error.WriteLineAsync($"mailpipe send: {filesError}").ConfigureAwait(false);
                return ExitCodes.UsageOrInput;
            }

            AuthSettings? auth = null;
            if (parseResult.GetValue(_user) is { } user)
            {
                var variable = parseResult.GetValue(_passwordEnvironment)!;
                var secret = Environment.GetEnvironmentVariable(variable);
                if (string.IsNullOrEmpty(secret))
                {
                    await error.WriteLineAsync($"mailpipe send: --password-env {variable}: the environment variable is not set or empty").ConfigureAwait(false);
                    return ExitCodes.UsageOrInput;
                }

                _ = AuthSettings.TryParseMechanism(parseResult.GetValue(_auth) ?? AuthSettings.Automatic, out var mechanism); // checked by the option's validator
                auth = new AuthSettings(mechanism, user, secret);
            }

            var fromText = parseResult.GetValue(_from);
            var fromMailbox = fromText is null ? null : ToMailbox(fromText);
            var to = (parseResult.GetValue(_to) ?? []).Select(v => ToMailbox(v)!).ToList();

            var options = new SendOptions
            {
                Files = files,
                FromGiven = fromText is not null,
                FromMailbox = fromMailbox,
                To = to,
                Subject = parseResult.GetValue(_subject),
                Body = parseResult.GetValue(_body),
                Connection = connection!,
                Auth = auth,
                AllowCleartextAuthentication = parseResult.GetValue(_allowCleartextAuth),
                SaveDirectory = parseResult.GetValue(_saveDirectory) ?? SendOptions.DefaultSaveDirectory,
                Json = parseResult.GetValue(_json),
            };
            return await RunAsync(options, output, error, cancellationToken).ConfigureAwait(false);
        }
    }
}
