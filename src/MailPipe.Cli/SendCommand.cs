using System.CommandLine;
using System.CommandLine.Parsing;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MimeKit;

namespace MailPipe.Cli;

/// <summary><c>mailpipe send</c>: its options, their checks, and the run.</summary>
internal sealed class SendCommand
{
    private const double MaxTimeoutSeconds = 24 * 60 * 60;

    private readonly Argument<string[]> _files = new("files")
    {
        Description = "Message files (.eml, RFC 5322) to send, in order, over one connection.",
        Arity = ArgumentArity.ZeroOrMore,
        HelpName = "FILE",
    };

    private readonly Option<string?> _from = new("--from")
    {
        Description = "The sender (MAIL FROM). With files it overrides the From/Sender field; \"<>\" sends with the null reverse-path.",
        HelpName = "ADDRESS",
    };

    private readonly Option<string[]> _to = new("--to")
    {
        Description = "A recipient (RCPT TO); repeat for more. With files it overrides the To/Cc/Bcc fields.",
        HelpName = "ADDRESS",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Option<string?> _subject = new("--subject") { Description = "The subject of a message built from the options.", HelpName = "TEXT" };

    private readonly Option<string?> _body = new("--body") { Description = "The text of a message built from the options.", HelpName = "TEXT" };

    private readonly Option<ServerAddress?> _server = new("--server")
    {
        Description = "The SMTP server, host[:port] or [IPv6]:port (port 25 by default). Without it, an embedded server on 127.0.0.1 saves the messages to --save-dir.",
        HelpName = "HOST[:PORT]",
        CustomParser = ParseServer,
    };

    private readonly Option<string?> _heloName = new("--helo-name") { Description = "The name the client gives in EHLO/HELO (default: this machine's host name).", HelpName = "NAME" };

    private readonly Option<string?> _saveDirectory = new("--save-dir")
    {
        Description = $"Where the embedded server saves each message, as <timestamp>-<n>.eml (default {SendOptions.DefaultSaveDirectory}); only without --server.",
        HelpName = "DIR",
    };

    private readonly Option<bool> _json = new("--json") { Description = "Print one JSON object per message, one per line." };

    private readonly Option<bool> _trace = new("--trace") { Description = "Print the SMTP transcript (C:/S: lines) to standard error; addresses are masked unless --log-addresses." };

    private readonly Option<bool> _logAddresses = new("--log-addresses") { Description = "Show mail addresses unmasked in the --trace transcript." };

    private readonly Option<FileInfo> _caFile = new("--ca-file")
    {
        Description = "A certificate authority (PEM or DER) to trust besides the system store for the server's TLS certificate.",
        HelpName = "PATH",
    };

    private readonly Option<double?> _timeout = new("--timeout") { Description = "Seconds allowed for the connect, each send and each reply.", HelpName = "SECONDS" };

    /// <summary>Creates the command and its checks.</summary>
    public SendCommand()
    {
        Command = new Command("send", "Send .eml files, or a message built from --from/--to/--subject/--body, over one SMTP connection. " + ExitCodes.Summary)
        {
            _files, _from, _to, _subject, _body, _server, _heloName, _saveDirectory, _json, _trace, _logAddresses, _caFile, _timeout,
        };

        _from.Validators.Add(result =>
        {
            if (!OutgoingMessage.TryParseSender(result.GetValueOrDefault<string?>() ?? string.Empty, out _))
            {
                result.AddError($"--from: '{result.GetValueOrDefault<string?>()}' is not a mail address");
            }
        });
        _to.Validators.Add(result =>
        {
            foreach (var value in result.GetValueOrDefault<string[]>() ?? [])
            {
                if (!OutgoingMessage.TryParseRecipients(value, out _))
                {
                    result.AddError($"--to: '{value}' is not a mail address");
                }
            }
        });
        _heloName.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } name && !IsValidHeloName(name))
            {
                result.AddError($"--helo-name: '{name}' is not a domain name or address literal");
            }
        });
        _timeout.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<double?>() is { } seconds && !(seconds > 0 && seconds <= MaxTimeoutSeconds))
            {
                result.AddError($"--timeout: {seconds} is not a number of seconds above 0 and at most {MaxTimeoutSeconds}");
            }
        });
        _caFile.AcceptExistingOnly();
        Command.Validators.Add(CheckCombination);
        Command.SetAction(RunAsync);
    }

    /// <summary>The command.</summary>
    public Command Command { get; }

    /// <summary>The host name the client announces when <c>--helo-name</c> is not given: this machine's, or <c>localhost</c>.</summary>
    /// <returns>The name.</returns>
    public static string DefaultHeloName()
    {
        try
        {
            var name = Dns.GetHostName();
            return IsValidHeloName(name) ? name : "localhost";
        }
        catch (SocketException)
        {
            return "localhost";
        }
    }

    /// <summary>Loads <c>--ca-file</c>: one DER certificate, or one or more PEM certificates.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The certificates.</returns>
    /// <exception cref="CryptographicException">The file holds no certificate that loads.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static X509Certificate2Collection LoadCertificateAuthorities(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var certificates = new X509Certificate2Collection();
        if (bytes.AsSpan().IndexOf("-----BEGIN"u8) >= 0)
        {
            certificates.ImportFromPem(Encoding.ASCII.GetString(bytes));
        }
        else
        {
            certificates.Add(X509CertificateLoader.LoadCertificate(bytes));
        }

        return certificates.Count > 0 ? certificates : throw new CryptographicException("the file holds no PEM certificate");
    }

    /// <summary>Runs <c>mailpipe send</c> with checked options.</summary>
    /// <param name="options">The options.</param>
    /// <param name="output">Standard output: the results.</param>
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
            EmbeddedServer? embedded = null;
            var server = options.Server;
            if (server is null && messages.Exists(m => m.InputError is null))
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

            var codes = new List<int>();
            try
            {
                using var loggerFactory = options.Trace ? TranscriptLoggerProvider.CreateFactory(error) : null;
                var printer = new ResultPrinter(output, options.Json);
                var sender = new BatchSender(server ?? new ServerAddress("localhost", ServerAddress.DefaultPort), options.HeloName, options.CreateSessionOptions(loggerFactory));
                await sender.SendAsync(
                    messages,
                    result =>
                    {
                        if (embedded is not null && result.Outcome == MessageOutcome.Accepted && embedded.TryTakeSaved(out var path))
                        {
                            result = result with { SavedTo = path };
                        }

                        printer.Print(result);
                        codes.Add(result.ExitCode);
                    },
                    cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                if (embedded is not null)
                {
                    await embedded.DisposeAsync().ConfigureAwait(false);
                }
            }

            return ExitCodes.Combine(codes);
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

    private static ServerAddress? ParseServer(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : null;
        if (ServerAddress.TryParse(text, out var address, out var problem))
        {
            return address;
        }

        result.AddError($"--server: {problem}");
        return null;
    }

    private static bool IsValidHeloName(string name)
    {
        if (name.Length is 0 or > 255)
        {
            return false;
        }

        if (name[0] == '[' && name[^1] == ']')
        {
            var literal = name[1..^1];
            return IPAddress.TryParse(literal.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase) ? literal[5..] : literal, out _);
        }

        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_'))
            {
                return false;
            }
        }

        return true;
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
        else if (from is null || to.Length == 0)
        {
            result.AddError("give .eml files to send, or --from and --to (with --subject and --body) to build a message");
        }
        else if (OutgoingMessage.TryParseSender(from, out var mailbox) && mailbox is null)
        {
            result.AddError("--from: a built message needs a sender address (\"<>\" is only for files)");
        }

        if (result.GetResult(_server) is not null && result.GetResult(_saveDirectory) is not null)
        {
            result.AddError("--save-dir is for the embedded server; it cannot be used with --server");
        }
    }

    private async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var output = parseResult.InvocationConfiguration.Output;
        var error = parseResult.InvocationConfiguration.Error;
        X509Certificate2Collection? authorities = null;
        if (parseResult.GetValue(_caFile) is { } caFile)
        {
            try
            {
                authorities = LoadCertificateAuthorities(caFile.FullName);
            }
            catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync($"mailpipe send: --ca-file {caFile}: not a certificate: {ex.Message}").ConfigureAwait(false);
                return ExitCodes.UsageOrInput;
            }
        }

        var fromText = parseResult.GetValue(_from);
        MailboxAddress? fromMailbox = null;
        if (fromText is not null)
        {
            _ = OutgoingMessage.TryParseSender(fromText, out fromMailbox); // checked by the option's validator
        }

        var to = new List<MailboxAddress>();
        foreach (var value in parseResult.GetValue(_to) ?? [])
        {
            _ = OutgoingMessage.TryParseRecipients(value, out var mailboxes); // checked by the option's validator
            to.AddRange(mailboxes);
        }

        using var options = new SendOptions
        {
            Files = parseResult.GetValue(_files) ?? [],
            FromGiven = fromText is not null,
            FromMailbox = fromMailbox,
            To = to,
            Subject = parseResult.GetValue(_subject),
            Body = parseResult.GetValue(_body),
            Server = parseResult.GetValue(_server),
            HeloName = parseResult.GetValue(_heloName) ?? DefaultHeloName(),
            SaveDirectory = parseResult.GetValue(_saveDirectory) ?? SendOptions.DefaultSaveDirectory,
            Json = parseResult.GetValue(_json),
            Trace = parseResult.GetValue(_trace),
            LogAddresses = parseResult.GetValue(_logAddresses),
            Timeout = parseResult.GetValue(_timeout) is { } seconds ? TimeSpan.FromSeconds(seconds) : null,
            TrustedCertificateAuthorities = authorities,
        };
        return await RunAsync(options, output, error, cancellationToken).ConfigureAwait(false);
    }
}
