using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace MailPipe.Cli;

/// <summary>
/// <c>mailpipe serve</c>: the embedded SMTP server on its own, a local development inbox. It saves every message to
/// <c>--save-dir</c> and prints one line per message (the envelope, the size, the file) until Ctrl+C or SIGTERM.
/// </summary>
internal sealed partial class ServeCommand
{
    /// <summary>The address listened on when <c>--listen</c> is not given.</summary>
    public const string DefaultListen = "127.0.0.1:2525";

    /// <summary>The port of a <c>--listen</c> value without one.</summary>
    public const int DefaultPort = 2525;

    /// <summary>The folder the messages are saved in when <c>--save-dir</c> is not given.</summary>
    public const string DefaultSaveDirectory = "./mailpipe-inbox";

    private static readonly System.Buffers.SearchValues<char> NotInHost = System.Buffers.SearchValues.Create(" \t\r\n\0/[]");

    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly Option<string> _listen = new("--listen")
    {
        Description = $"Where to listen: host:port, [IPv6]:port, or :port for 127.0.0.1; port 0 picks a free port (printed at the start).",
        HelpName = "HOST:PORT",
        DefaultValueFactory = _ => DefaultListen,
    };

    private readonly Option<string> _saveDirectory = new("--save-dir")
    {
        Description = $"Where each message is saved, as <timestamp>-<n>.eml, before the 250 reply.",
        HelpName = "DIR",
        DefaultValueFactory = _ => DefaultSaveDirectory,
    };

    private readonly Option<bool> _startTls = new("--starttls")
    {
        Description = "Offer STARTTLS (RFC 3207) with a self-signed certificate generated in memory for localhost, 127.0.0.1, ::1 and the --listen host (or with --tls-cert). Default off.",
    };

    private readonly Option<string?> _tlsCertificate = new("--tls-cert")
    {
        Description = "The certificate for STARTTLS (PEM; implies --starttls). Default: generated.",
        HelpName = "FILE",
    };

    private readonly Option<string?> _tlsKey = new("--tls-key")
    {
        Description = "The private key of --tls-cert (PEM, unencrypted). Default: in the --tls-cert file.",
        HelpName = "FILE",
    };

    private readonly Option<string?> _tlsCertificateOut = new("--tls-cert-out")
    {
        Description = "Write the generated certificate (PEM, without its key) to this file, for clients to trust: mailpipe send --starttls --ca-file FILE. Default: not written.",
        HelpName = "FILE",
    };

    private readonly Option<bool> _auth = new("--auth")
    {
        Description = "Offer AUTH PLAIN and LOGIN (RFC 4954) and accept any user name and password (only --auth-user's with it). With --starttls, only after STARTTLS. Default off.",
    };

    private readonly Option<string?> _authUser = new("--auth-user")
    {
        Description = "Accept only this user name, with the password in --auth-password-env (implies --auth). Default: any.",
        HelpName = "USER",
    };

    private readonly Option<string?> _authPasswordEnvironment = new("--auth-password-env")
    {
        Description = "The environment variable that holds --auth-user's password (never on the command line); one trailing line end (LF or CRLF) is dropped. Default: none (any password); goes with --auth-user.",
        HelpName = "VARIABLE",
    };

    private readonly Option<bool> _authRequired = new("--auth-required")
    {
        Description = "Refuse MAIL with 530 until the client has authenticated (implies --auth). Default off.",
    };

    private readonly Option<string> _maxSize = new("--max-size")
    {
        Description = $"The largest message taken, in bytes (K, M suffixes: KiB, MiB), advertised as SIZE; a larger one gets 552 and the connection stays usable (data that goes on far past the limit gets 552 and the close).",
        HelpName = "BYTES",
        DefaultValueFactory = _ => $"{EmbeddedServerOptions.DefaultMaxMessageSize / 1024 / 1024}M",
    };

    private readonly Option<int> _maxRecipients = new("--max-recipients")
    {
        Description = $"The most recipients per message; more get 452.",
        HelpName = "N",
        DefaultValueFactory = _ => EmbeddedServerOptions.DefaultMaxRecipients,
        CustomParser = r => ParseCount(r, "--max-recipients", 1, int.MaxValue, "give 1 to 2147483647 (RFC 5321 §4.5.3.1.8 asks for at least 100)"),
    };

    private readonly Option<double> _idleTimeout = new("--idle-timeout")
    {
        Description = $"How long the server waits for a client's next bytes (a command, more of a message) before it answers 421 and closes: {DurationArgument.Forms}, at most 1 day.",
        HelpName = "SECONDS",
        DefaultValueFactory = _ => EmbeddedServerOptions.DefaultIdleTimeout.TotalSeconds,
        CustomParser = ParseIdleTimeout,
    };

    private readonly Option<int> _maxConnections = new("--max-connections")
    {
        Description = $"The most connections open at once; one more gets 421.",
        HelpName = "N",
        DefaultValueFactory = _ => EmbeddedServerOptions.DefaultMaxConnections,
        CustomParser = r => ParseCount(r, "--max-connections", 1, 10_000, "give 1 to 10000"),
    };

    private readonly Option<bool> _json = new("--json")
    {
        Description = "Print one JSON object per line: {\"type\":\"listening\",...} at the start, {\"type\":\"message\",...} per message, {\"type\":\"stopped\",...} at the end. Default: text.",
    };

    /// <summary>Creates the command and its checks.</summary>
    public ServeCommand()
    {
        Command = new Command(
            "serve",
            "Run a local SMTP server that saves every message it receives to a folder and prints one line per message (envelope, size, file): a development inbox. " +
            "It offers PIPELINING, 8BITMIME, SMTPUTF8 and SIZE; STARTTLS and AUTH when asked. Ctrl+C or SIGTERM stops it (exit 0). Exit codes: 0 stopped, 1 usage error, 2 cannot listen.")
        {
            _listen, _saveDirectory, _startTls, _tlsCertificate, _tlsKey, _tlsCertificateOut, _auth, _authUser, _authPasswordEnvironment, _authRequired,
            _maxSize, _maxRecipients, _idleTimeout, _maxConnections, _json,
        };
        _listen.Validators.Add(result =>
        {
            if (!TryParseListen(result.GetValueOrDefault<string>(), out _, out _, out var error))
            {
                result.AddError($"--listen: {error}");
            }
        });
        _maxSize.Validators.Add(result =>
        {
            if (!TryParseSize(result.GetValueOrDefault<string>(), out _))
            {
                result.AddError($"--max-size: '{result.GetValueOrDefault<string>()}' is not a size from 1 byte to 2047M (a number, with K or M for KiB or MiB)");
            }
        });
        _authUser.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } user && (user.Length == 0 || user.AsSpan().IndexOfAny("\r\n\0") >= 0))
            {
                result.AddError("--auth-user: the user name is empty or holds a line break or NUL");
            }
        });
        foreach (var path in new Option[] { _saveDirectory, _tlsCertificate, _tlsKey, _tlsCertificateOut })
        {
            PathOptions.RefuseEmpty(path);
        }

        Command.Validators.Add(CheckCombination);
        Command.SetAction(RunAsync);
    }

    /// <summary>The command.</summary>
    public Command Command { get; }

    /// <summary>Runs the server until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <param name="options">The server options, <see cref="EmbeddedServerOptions.Received"/> left unset (the command prints).</param>
    /// <param name="json">Whether to print JSON lines.</param>
    /// <param name="certificateOut">Where to write the generated certificate, or <see langword="null"/>.</param>
    /// <param name="output">Standard output: the lines.</param>
    /// <param name="error">Standard error: why it could not start.</param>
    /// <param name="cancellationToken">Stops the server (Ctrl+C, SIGTERM).</param>
    /// <returns>The exit code: 0 stopped, 2 cannot listen or save.</returns>
    public static async Task<int> RunAsync(EmbeddedServerOptions options, bool json, string? certificateOut, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var printer = new Printer(output, error, json);
        var count = 0;
        options = options with
        {
            Received = message =>
            {
                Interlocked.Increment(ref count);
                printer.Message(message);
            },
        };

        if (options.Certificate is not null && certificateOut is not null)
        {
            try
            {
                await File.WriteAllTextAsync(certificateOut, ServerCertificate.ToPem(options.Certificate), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync($"mailpipe serve: cannot write --tls-cert-out {certificateOut}: {ex.Message}").ConfigureAwait(false);
                return ExitCodes.UsageOrInput;
            }
        }

        EmbeddedServer server;
        Program.PreferInlineSocketCompletions();
        try
        {
            server = await EmbeddedServer.StartAsync(options, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            // 2525 is also where a local MTA under test listens (Postfix here): say how to get a free port.
            var hint = ex.SocketErrorCode == SocketError.AddressAlreadyInUse ? " (another server has that port: --listen :0 picks a free one)" : string.Empty;
            await error.WriteLineAsync($"mailpipe serve: cannot listen on {Display(options.EndPoint)}: {ex.Message}{hint}").ConfigureAwait(false);
            return ExitCodes.ConnectionFailed;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"mailpipe serve: cannot use --save-dir {options.SaveDirectory}: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }
        catch (OperationCanceledException)
        {
            return ExitCodes.Success;
        }

        await using (server.ConfigureAwait(false))
        {
            printer.Listening(server.EndPoint, options, certificateOut);
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C or SIGTERM: stop below.
            }
        }

        printer.Stopped(Volatile.Read(ref count));
        return ExitCodes.Success;
    }

    private void CheckCombination(CommandResult result)
    {
        var user = result.GetResult(_authUser) is not null;
        var password = result.GetResult(_authPasswordEnvironment) is not null;
        if (user != password)
        {
            result.AddError("--auth-user and --auth-password-env go together (the name of the environment variable that holds the password)");
        }

        if (result.GetResult(_tlsKey) is not null && result.GetResult(_tlsCertificate) is null)
        {
            result.AddError("--tls-key needs --tls-cert");
        }

        if (result.GetResult(_tlsCertificateOut) is not null && result.GetResult(_tlsCertificate) is not null)
        {
            result.AddError("--tls-cert-out writes the generated certificate; with --tls-cert the clients can trust that file itself");
        }

        if (result.GetResult(_tlsCertificateOut) is not null && !result.GetValue(_startTls))
        {
            result.AddError("--tls-cert-out needs --starttls");
        }
    }

    private async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        // SIGTERM (a service manager, docker stop, kill) stops the server as Ctrl+C does: cleanly, exit 0.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Stop(context, stop));
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Stop(context, stop));
        return await RunUntilStoppedAsync(parseResult, stop.Token).ConfigureAwait(false);

        static void Stop(PosixSignalContext context, CancellationTokenSource stop)
        {
            context.Cancel = true;
            stop.Cancel();
        }
    }

    private async Task<int> RunUntilStoppedAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var output = parseResult.InvocationConfiguration.Output;
        var error = parseResult.InvocationConfiguration.Error;
        // Checked by the validator already.
        _ = TryParseListen(parseResult.GetValue(_listen), out var host, out var port, out _);
        var address = Resolve(host);
        if (address is null)
        {
            await error.WriteLineAsync($"mailpipe serve: --listen: cannot resolve '{host}'").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }

        EmbeddedServer.Authenticator? authenticator = null;
        var authUser = parseResult.GetValue(_authUser);
        if (authUser is not null)
        {
            var variable = parseResult.GetValue(_authPasswordEnvironment)!;
            var password = variable.Length == 0 || variable.Contains('=', StringComparison.Ordinal) ? null : AuthSettings.ReadSecretVariable(variable);
            if (string.IsNullOrEmpty(password))
            {
                await error.WriteLineAsync($"mailpipe serve: {AuthSettings.ShownVariable("--auth-password-env", variable)}: the environment variable is not set or empty").ConfigureAwait(false);
                return ExitCodes.UsageOrInput;
            }

            authenticator = new EmbeddedServer.Authenticator(authUser, password);
        }
        else if (parseResult.GetValue(_auth) || parseResult.GetValue(_authRequired))
        {
            authenticator = new EmbeddedServer.Authenticator(null, null);
        }

        X509Certificate2? certificate = null;
        var certificatePath = parseResult.GetValue(_tlsCertificate);
        try
        {
            if (certificatePath is not null)
            {
                certificate = ServerCertificate.Load(certificatePath, parseResult.GetValue(_tlsKey));
            }
            else if (parseResult.GetValue(_startTls))
            {
                certificate = ServerCertificate.Generate(host);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            var why = ex is CryptographicException && certificatePath is not null ? ServerCertificate.EncryptedKeyError(certificatePath, parseResult.GetValue(_tlsKey)) : null;
            await error.WriteLineAsync($"mailpipe serve: {why ?? $"--tls-cert {certificatePath}: {ex.Message}"}").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }

        using (certificate)
        {
            _ = TryParseSize(parseResult.GetValue(_maxSize), out var maxSize);
            var options = new EmbeddedServerOptions
            {
                EndPoint = new IPEndPoint(address, port),
                SaveDirectory = parseResult.GetValue(_saveDirectory) ?? DefaultSaveDirectory,
                MaxMessageSize = maxSize,
                MaxRecipients = parseResult.GetValue(_maxRecipients),
                IdleTimeout = TimeSpan.FromSeconds(parseResult.GetValue(_idleTimeout)),
                MaxConnections = parseResult.GetValue(_maxConnections),
                Certificate = certificate,
                Authenticator = authenticator,
                AuthenticationRequired = parseResult.GetValue(_authRequired),
            };
            return await RunAsync(options, parseResult.GetValue(_json), parseResult.GetValue(_tlsCertificateOut), output, error, cancellationToken).ConfigureAwait(false);
        }
    }
}
