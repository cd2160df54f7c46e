using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using MimeKit;

namespace MailPipe.Cli;

/// <summary><c>mailpipe send</c>: its options, their checks, and the run.</summary>
internal sealed partial class SendCommand
{
    private readonly Argument<string[]> _files = new("FILE")
    {
        Description = "Message files (.eml, RFC 5322) to send, in order, over one connection (see --reconnect, --max-per-connection); a directory stands for its *.eml files, a name with * or ? for the files it matches, - for a message read from standard input. Default: none (a message built from the options).",
        Arity = ArgumentArity.ZeroOrMore,
        HelpName = "FILE",
    };

    private readonly Option<string?> _from = new("--from", "-f")
    {
        Description = "The sender (MAIL FROM): exactly one address (RFC 5321 mailbox, or Name <mailbox>). With files it overrides the From/Sender field; \"<>\" sends with the null reverse-path. Default: each file's Sender or From field; required for a built message.",
        HelpName = "ADDRESS",
    };

    private readonly Option<string[]> _to = new("--to", "-t")
    {
        Description = "A recipient (RCPT TO): exactly one address (RFC 5321 mailbox, or Name <mailbox>), or postmaster alone, in any case (RFC 5321 §4.5.1); repeat the option for more. With files it overrides the To/Cc/Bcc fields. Default: each file's To, Cc and Bcc fields (Bcc then removed); required for a built message.",
        HelpName = "ADDRESS",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Option<string?> _subject = new("--subject") { Description = "The subject of a message built from the options (default: empty).", HelpName = "TEXT" };

    private readonly Option<string?> _body = new("--body") { Description = "The text of a message built from the options (default: empty).", HelpName = "TEXT" };

    private readonly Option<string[]> _header = new("--header")
    {
        Description = "A header field \"Name: value\"; repeat for more. A built message gets it (replacing its own From, To, Subject, Date, Message-ID or MIME-Version field of that name; Content-Type: text/html sets the type of the text); a file or standard input gets it in front of its header section, unchanged otherwise (a From, To or Cc given so counts for the envelope read from the fields: the sender without --from, the recipients without --to). Default: none.",
        HelpName = "\"NAME: VALUE\"",
        Arity = ArgumentArity.OneOrMore,
    };

    /// <summary>What <c>--attach</c> files may total: the built message (base64, ≈ 4/3 of it) must fit one array.</summary>
    internal const long MaxAttachmentBytes = 1L << 30;

    private readonly Option<string[]> _attach = new("--attach")
    {
        Description = "Attach a file to the built message (multipart/mixed, base64, type from the file name); repeat for more. Not with files. Default: none.",
        HelpName = "FILE",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Option<string?> _quitAfter = new("--quit-after")
    {
        Description = "End the session with QUIT after this step: connect, banner, ehlo, tls (needs --tls, --starttls or --tls-optional), auth, mail or rcpt (MAIL and RCPT of the first message: does the server take these recipients? exit 5 when it refuses all). No message is sent. Default: none (send the messages).",
        HelpName = "STEP",
    };

    private readonly Option<bool> _tlsOptional = new("--tls-optional")
    {
        Description = "STARTTLS when the server offers it and accepts it, plain SMTP otherwise (default: plain SMTP unless --tls or --starttls).",
    };

    private readonly Option<string?> _notify = new("--notify")
    {
        Description = "Ask for delivery status notifications (DSN, RFC 3461) for every recipient: NEVER, or a comma list of SUCCESS, FAILURE, DELAY. Sent when the server offers DSN. Default: the server's.",
        HelpName = "WHEN",
    };

    private readonly Option<string?> _ret = new("--ret")
    {
        Description = "What a DSN returns of the message: FULL or HDRS (RFC 3461 §4.3). Default: the server's.",
        HelpName = "FULL|HDRS",
    };

    private readonly Option<string?> _envid = new("--envid")
    {
        Description = "The envelope identifier a DSN carries (RFC 3461 §4.4; 1 to 100 printable ASCII characters, no space). Default: none.",
        HelpName = "ID",
    };

    private readonly Option<bool> _requireTls = new("--requiretls")
    {
        Description = "REQUIRETLS (RFC 8689): the message must travel over TLS all the way; needs --tls or --starttls and a server that offers REQUIRETLS (otherwise not sent, exit 6). Default: off.",
    };

    private readonly Option<bool> _smtpUtf8 = new("--smtputf8")
    {
        Description = "Declare SMTPUTF8 (RFC 6531) on every message (default: only when an address is not ASCII); the server must offer it (otherwise not sent, exit 6).",
    };

    private readonly Option<int> _reconnect = new("--reconnect")
    {
        Description = "When the server ends the session at a limit (closes it, a 421, or MAIL refused with 4.5.3 after it took messages), the messages it did not take go on a new connection; this many new connections in a row may decide no message before the rest is reported as not sent. 0: one connection, as before.",
        HelpName = "N",
        DefaultValueFactory = _ => BatchSender.DefaultReconnects,
        CustomParser = r => ServeCommand.ParseCount(r, "--reconnect", 0, 100, "give 0 to 100"),
    };

    private readonly Option<int> _maxPerConnection = new("--max-per-connection")
    {
        Description = "The most messages sent over one connection; the next ones go on a new connection (QUIT first); 0: no limit.",
        HelpName = "N",
        DefaultValueFactory = _ => 0,
        CustomParser = r => ServeCommand.ParseCount(r, "--max-per-connection", 0, int.MaxValue, "give a whole number, 0 for no limit"),
    };

    private readonly ConnectionOptions _connection = new(
        "The SMTP server, host[:port] or [IPv6]:port (port 25 by default). Default: an embedded server on 127.0.0.1 that saves the messages to --save-dir.",
        serverRequired: false);

    private readonly Option<string?> _saveDirectory = new("--save-dir")
    {
        Description = $"Where the embedded server saves each message, as <timestamp>-<n>.eml (default {SendOptions.DefaultSaveDirectory}); only without --server.",
        HelpName = "DIR",
    };

    private readonly Option<string?> _auth = new("--auth")
    {
        Description = "Authenticate (RFC 4954) with this mechanism: " + string.Join(", ", AuthSettings.Mechanisms) + ", or auto for the strongest password mechanism both sides support. Default: no authentication; auto with --user.",
        HelpName = "MECHANISM",
    };

    private readonly Option<string?> _user = new("--user") { Description = "The user name to authenticate as (the mailbox, for XOAUTH2 and OAUTHBEARER). Default: none (no authentication).", HelpName = "USER" };

    private readonly Option<string?> _passwordEnvironment = new("--password-env")
    {
        Description = "The environment variable that holds the password (the OAuth access token for XOAUTH2 and OAUTHBEARER); one trailing line end (LF or CRLF, as left by a file it was read from) is dropped. Secrets are never taken from the command line. Default: none.",
        HelpName = "VARIABLE",
    };

    private readonly Option<bool> _allowCleartextAuth = new("--allow-cleartext-auth")
    {
        Description = "Let PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER send the secret on a connection without TLS (test servers only). Default: off.",
    };

    private readonly Option<bool> _json = new("--json") { Description = "Print one JSON object per line for each message as soon as its outcome is known, then a summary object (default: readable text)." };

    /// <summary>Creates the command and its checks.</summary>
    public SendCommand()
    {
        Command = new Command(
            "send",
            "Send .eml files (a directory, a wildcard), or a message built from --from/--to/--subject/--body, over one SMTP connection (a new one takes what the server did not when it ends a session at a limit: --reconnect); the transactions are pipelined, and a summary with messages per second ends the output. " + ExitCodes.Summary)
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
        Command.Options.Add(_header);
        Command.Options.Add(_attach);
        Command.Options.Add(_quitAfter);
        Command.Options.Add(_tlsOptional);
        Command.Options.Add(_notify);
        Command.Options.Add(_ret);
        Command.Options.Add(_envid);
        Command.Options.Add(_requireTls);
        Command.Options.Add(_smtpUtf8);
        Command.Options.Add(_reconnect);
        Command.Options.Add(_maxPerConnection);
        _quitAfter.AcceptOnlyFromAmong(QuitSteps);
        _ret.AcceptOnlyFromAmong("FULL", "HDRS", "full", "hdrs");
        _header.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                if (!HeaderArgument.TryParse(token.Value, out _, out var problem))
                {
                    result.AddError($"--header: '{Shown(token.Value)}' {problem}");
                }
            }
        });
        _attach.Validators.Add(result =>
        {
            foreach (var token in result.Tokens.Where(t => !File.Exists(t.Value)))
            {
                result.AddError($"--attach: '{Shown(token.Value)}' is not a file");
            }

            // The built message is rendered in memory whole (base64 makes it a third larger): say so before connecting,
            // not as a failed send after it.
            var total = result.Tokens.Where(t => File.Exists(t.Value)).Sum(t => new FileInfo(t.Value).Length);
            if (total > MaxAttachmentBytes)
            {
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"--attach: the attachments total {total:N0} bytes; a built message is held in memory whole, so they may total at most {MaxAttachmentBytes:N0} bytes (1 GiB). Write the message to a file and send the file: files are streamed"));
            }
        });
        _notify.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && !TryParseNotify(result.Tokens[0].Value, out _))
            {
                result.AddError($"--notify: '{Shown(result.Tokens[0].Value)}' is not NEVER or a comma list of SUCCESS, FAILURE, DELAY");
            }
        });
        _envid.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && result.Tokens[0].Value is var id && (id.Length is 0 or > 100 || id.Any(c => c is < '!' or > '~')))
            {
                result.AddError($"--envid: '{Shown(id)}' is not 1 to 100 printable ASCII characters without spaces (RFC 3461 §4.4)");
            }
        });

        _from.Validators.Add(result => CheckAddress(result, "--from", allowNullPath: true, forwardPath: false));
        _to.Validators.Add(result => CheckAddress(result, "--to", allowNullPath: false, forwardPath: true));
        _auth.Validators.Add(result =>
        {
            if (!AuthSettings.TryParseMechanism(result.GetValueOrDefault<string?>(), out _))
            {
                result.AddError($"--auth: '{result.GetValueOrDefault<string?>()}' is not one of {string.Join(", ", AuthSettings.Mechanisms)}, auto");
            }
        });
        _subject.Validators.Add(result =>
        {
            // As --header: a line break would be silently dropped by the message builder, joining the lines.
            if (result.GetValueOrDefault<string?>() is { } subject && subject.AsSpan().IndexOfAny("\r\n\0") >= 0)
            {
                result.AddError("--subject: the subject holds a line break (CR or LF) or NUL; give it on one line");
            }

            if (result.GetValueOrDefault<string?>() is { } text && HeaderArgument.IsNotUtf8(text))
            {
                result.AddError($"--subject: '{Shown(text)}' {HeaderArgument.NotUtf8Problem("subject")}");
            }
        });
        _body.Validators.Add(result =>
        {
            // As --header and --subject: the text would go out with U+FFFD where the bytes were, and nobody told.
            if (result.GetValueOrDefault<string?>() is { } text && HeaderArgument.IsNotUtf8(text))
            {
                result.AddError($"--body: the text {HeaderArgument.NotUtf8Problem("text")}");
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
                result.AddError($"{AuthSettings.ShownVariable("--password-env", name)}: not an environment variable name");
            }
        });
        PathOptions.RefuseEmpty(_saveDirectory);
        Command.Validators.Add(CheckCombination);
        Command.SetAction(RunAsync);
    }

    /// <summary>The command.</summary>
    public Command Command { get; }

    /// <summary>Standard input and whether the standard streams are terminals.</summary>
    public CliEnvironment Environment { get; init; } = CliEnvironment.Redirected;

    private async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var output = parseResult.InvocationConfiguration.Output;
        var error = parseResult.InvocationConfiguration.Error;
        var defaultMode = parseResult.GetValue(_tlsOptional) ? SmtpTlsMode.StartTlsWhenAvailable : SmtpTlsMode.None;
        if (!_connection.TryRead(parseResult, defaultMode, out var connection, out var connectionError))
        {
            await error.WriteLineAsync($"mailpipe send: {connectionError}").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }

        using (connection)
        {
            if (!FileArguments.TryExpand(parseResult.GetValue(_files) ?? [], out var files, out var found, out var filesError))
            {
                await error.WriteLineAsync($"mailpipe send: {filesError}").ConfigureAwait(false);
                return ExitCodes.UsageOrInput;
            }

            AuthSettings? auth = null;
            if (parseResult.GetValue(_user) is { } user)
            {
                var variable = parseResult.GetValue(_passwordEnvironment)!;
                var secret = AuthSettings.ReadSecretVariable(variable);
                if (string.IsNullOrEmpty(secret))
                {
                    await error.WriteLineAsync($"mailpipe send: {AuthSettings.ShownVariable("--password-env", variable)}: the environment variable is not set or empty").ConfigureAwait(false);
                    return ExitCodes.UsageOrInput;
                }

                _ = AuthSettings.TryParseMechanism(parseResult.GetValue(_auth) ?? AuthSettings.Automatic, out var mechanism); // checked by the option's validator
                auth = new AuthSettings(mechanism, user, secret);
            }

            var fromText = parseResult.GetValue(_from);
            var fromMailbox = fromText is null ? null : ToMailbox(fromText, forwardPath: false);
            var toValues = parseResult.GetValue(_to) ?? [];
            var to = toValues.Select(v => ToMailbox(v, forwardPath: true)!).ToList();

            var options = new SendOptions
            {
                Files = files,
                FoundFiles = found,
                FromGiven = fromText is not null,
                FromMailbox = fromMailbox,
                FromEnvelopeAddress = fromMailbox is null ? null : MailboxArgument.AsWritten(fromMailbox, fromText!),
                To = to,
                ToEnvelopeAddresses = [.. to.Select((m, i) => MailboxArgument.AsWritten(m, toValues[i]))],
                Subject = parseResult.GetValue(_subject),
                Body = parseResult.GetValue(_body),
                Connection = connection!,
                Auth = auth,
                AllowCleartextAuthentication = parseResult.GetValue(_allowCleartextAuth),
                SaveDirectory = parseResult.GetValue(_saveDirectory) ?? SendOptions.DefaultSaveDirectory,
                Json = parseResult.GetValue(_json),
                Headers = [.. (parseResult.GetValue(_header) ?? []).Select(h => HeaderArgument.TryParse(h, out var header, out _) ? header! : throw new InvalidOperationException(h))],
                Attachments = parseResult.GetValue(_attach) ?? [],
                QuitAfter = parseResult.GetValue(_quitAfter) is { } step ? Enum.Parse<QuitAfter>(step, ignoreCase: true) : QuitAfter.None,
                Reconnects = parseResult.GetValue(_reconnect),
                MaxPerConnection = parseResult.GetValue(_maxPerConnection),
                Envelope = new EnvelopeSettings
                {
                    Notify = parseResult.GetValue(_notify) is { } notify && TryParseNotify(notify, out var when) ? when : DsnNotify.Default,
                    Return = parseResult.GetValue(_ret)?.ToUpperInvariant() switch { "FULL" => DsnReturn.Full, "HDRS" => DsnReturn.Headers, _ => null },
                    EnvelopeId = parseResult.GetValue(_envid),
                    RequireTls = parseResult.GetValue(_requireTls),
                    SmtpUtf8 = parseResult.GetValue(_smtpUtf8),
                },
            };
            // Ctrl+C or SIGTERM stops the batch (MailPipe never ends a message it is writing) and every message is still
            // reported, with the summary; a second one ends the process at once.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Stop(context, stop));
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Stop(context, stop));
            return await RunAsync(options, output, error, Environment, stop.Token).ConfigureAwait(false);
        }

        static void Stop(PosixSignalContext context, CancellationTokenSource stop)
        {
            context.Cancel = !stop.IsCancellationRequested;
            stop.Cancel();
        }
    }
}
