using System.CommandLine;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace MailPipe.Cli;

/// <summary>
/// <c>mailpipe probe</c>: connects to a server and reports what it offers: the greeting, the EHLO extensions before
/// and after STARTTLS, the TLS version and cipher suite, and the certificate (subject, issuer, validity, names, whether
/// it names the server and is trusted). Nothing is sent but EHLO, STARTTLS and QUIT.
/// </summary>
internal sealed class ProbeCommand
{
    private readonly ConnectionOptions _connection = new("The SMTP server to probe, host[:port] or [IPv6]:port (port 25 by default).", serverRequired: true);

    private readonly Option<bool> _json = new("--json") { Description = "Print the report as one JSON object. Default: readable text." };

    /// <summary>Creates the command.</summary>
    public ProbeCommand()
    {
        Command = new Command(
            "probe",
            "Connect to an SMTP server and report its greeting, its EHLO extensions before and after STARTTLS, and its TLS version, cipher suite and certificate. " +
            "Without --tls or --starttls, STARTTLS is used when offered. Exit codes: 0 probed, 1 usage error, 2 connection or TLS failure (also: STARTTLS required by --starttls but not offered), 8 protocol violation or timeout.");
        foreach (var option in _connection.All)
        {
            Command.Options.Add(option);
        }

        Command.Options.Add(_json);
        Command.Validators.Add(result => _connection.Validate(result, tlsByDefault: true));
        Command.SetAction(RunAsync);
    }

    /// <summary>The command.</summary>
    public Command Command { get; }

    /// <summary>Whether standard output and error are terminals: when both are, the report's <c>error</c> is not said again on standard error.</summary>
    public CliEnvironment Environment { get; init; } = CliEnvironment.Redirected;

    /// <summary>Probes the server.</summary>
    /// <param name="settings">The checked connection options; <see cref="ConnectionSettings.Server"/> is set.</param>
    /// <param name="error">Standard error, for the transcript.</param>
    /// <param name="cancellationToken">Cancels.</param>
    /// <returns>The report.</returns>
    public static async Task<ProbeReport> ProbeAsync(ConnectionSettings settings, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var server = settings.Server ?? throw new ArgumentException("The settings name no server.", nameof(settings));
        var report = new ProbeReport { Server = server, TlsMode = settings.TlsModeName, TargetHost = settings.TlsName ?? server.Host };
        var recorder = new CertificateRecorder(settings.AcceptNameMismatch);
        using var loggerFactory = settings.Trace ? TranscriptLoggerProvider.CreateFactory(error) : null;
        var session = new AsyncSmtpSession(settings.CreateSessionOptions(loggerFactory, validationCallback: recorder.Validate));
        await using (session.ConfigureAwait(false))
        {
            try
            {
                await ProbeAsync(session, settings, report, recorder, cancellationToken).ConfigureAwait(false);
            }
            catch (SmtpException ex)
            {
                report.ExitCode = ExitCodes.ForError(ex.ErrorCode);
                report.Error = BatchSender.Describe(server, ex, settings.TlsMode);
            }

            // Everything is known by now: a server that does not answer QUIT does not hold the report for the reply timeout.
            await BatchSender.QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
        }

        return report;
    }

    private static async Task ProbeAsync(AsyncSmtpSession session, ConnectionSettings settings, ProbeReport report, CertificateRecorder recorder, CancellationToken cancellationToken)
    {
        var server = report.Server;
        SmtpReply greeting;
        if (settings.TlsMode == SmtpTlsMode.Implicit)
        {
            await session.ConnectAsync(server.Host, server.Port, waitForGreeting: false, cancellationToken).ConfigureAwait(false);
            try
            {
                greeting = (await session.ConnectTlsAsync(waitForGreeting: true, cancellationToken).ConfigureAwait(false))!;
            }
            finally
            {
                report.Tls = TlsReport.From(session, recorder);
            }
        }
        else
        {
            greeting = (await session.ConnectAsync(server.Host, server.Port, waitForGreeting: true, cancellationToken).ConfigureAwait(false))!;
        }

        report.Greeting = ReplyInfo.From(greeting);
        if (!greeting.IsPositiveCompletion)
        {
            report.Fail(ExitCodes.ConnectionFailed, $"the server at {server} refused the session");
            return;
        }

        var heloName = settings.HeloName ?? await session.GetDefaultClientDomainAsync(cancellationToken).ConfigureAwait(false);
        var ehlo = await session.EhloAsync(heloName, cancellationToken).ConfigureAwait(false);
        report.Ehlo = EhloReport.From(ehlo);
        if (ehlo.Code is 500 or 502 && session.IsConnected)
        {
            var helo = await session.HeloAsync(heloName, cancellationToken).ConfigureAwait(false);
            report.Helo = ReplyInfo.From(helo);
            if (!helo.IsPositiveCompletion)
            {
                report.Fail(ExitCodes.ConnectionFailed, $"the server at {server} refused EHLO and HELO {heloName}");
                return;
            }
        }
        else if (!ehlo.IsPositiveCompletion)
        {
            report.Fail(ExitCodes.ConnectionFailed, $"the server at {server} refused EHLO {heloName}");
            return;
        }

        if (settings.TlsMode is not (SmtpTlsMode.StartTlsRequired or SmtpTlsMode.StartTlsWhenAvailable))
        {
            return;
        }

        var required = settings.TlsMode == SmtpTlsMode.StartTlsRequired;
        report.StartTlsOffered = session.Capabilities.SupportsStartTls;
        if (!session.Capabilities.SupportsStartTls)
        {
            if (required)
            {
                report.Fail(ExitCodes.ConnectionFailed, $"--starttls: {server} does not offer STARTTLS in its EHLO reply; nothing more was sent");
            }

            return;
        }

        SmtpReply startTls;
        try
        {
            startTls = await session.StartTlsAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            report.Tls = TlsReport.From(session, recorder);
        }

        report.StartTls = ReplyInfo.From(startTls);
        if (startTls.Code != 220)
        {
            if (required)
            {
                report.Fail(ExitCodes.ConnectionFailed, $"--starttls: {server} refused STARTTLS");
            }

            return;
        }

        report.EhloAfterStartTls = EhloReport.From(await session.EhloAsync(heloName, cancellationToken).ConfigureAwait(false));
    }

    private async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var output = parseResult.InvocationConfiguration.Output;
        var error = parseResult.InvocationConfiguration.Error;
        if (!_connection.TryRead(parseResult, SmtpTlsMode.StartTlsWhenAvailable, out var settings, out var problem))
        {
            await error.WriteLineAsync($"mailpipe probe: {problem}").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }

        using (settings)
        {
            var report = await ProbeAsync(settings!, error, cancellationToken).ConfigureAwait(false);
            var shown = false;
            try
            {
                await output.WriteAsync(parseResult.GetValue(_json) ? report.ToJson() + "\n" : TerminalText.Sanitize(report.ToText())).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                shown = Environment.OutputIsTerminal && Environment.ErrorIsTerminal;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A full disk, say: the report is lost, which standard error says; the exit code is still the probe's.
                await error.WriteLineAsync($"mailpipe probe: writing the report to standard output failed ({ex.InnerException?.Message ?? ex.Message})").ConfigureAwait(false);
            }

            // The report ends with the error; on a terminal that shows both streams, saying it again on standard error doubled it.
            if (report.Error is { } reason && !shown)
            {
                await error.WriteLineAsync($"mailpipe probe: {reason}").ConfigureAwait(false);
            }

            return report.ExitCode;
        }
    }

    /// <summary>
    /// Keeps the certificate the server presented and what was wrong with it, so that the report can show it even when
    /// the handshake fails; decides as MailPipe does without a callback (see <see cref="SmtpTlsOptions"/>): no fault, or
    /// only the name and <c>--accept-name-mismatch</c>. The faults it gets are those left after <c>--ca-file</c>.
    /// </summary>
    internal sealed class CertificateRecorder(bool acceptNameMismatch)
    {
        /// <summary>The last certificate seen, or <see langword="null"/>.</summary>
        public X509Certificate2? Certificate { get; private set; }

        /// <summary>What was wrong with it.</summary>
        public SslPolicyErrors Errors { get; private set; }

        /// <summary>Whether a certificate decision was made.</summary>
        public bool Seen { get; private set; }

        /// <summary>The validation callback.</summary>
        /// <param name="sender">The TLS stream.</param>
        /// <param name="certificate">The server's certificate.</param>
        /// <param name="chain">Its chain.</param>
        /// <param name="errors">Its faults, after the extra roots.</param>
        /// <returns>Whether to accept it.</returns>
        public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            Seen = true;
            Certificate = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            Errors = errors;
            return errors == SslPolicyErrors.None || (errors == SslPolicyErrors.RemoteCertificateNameMismatch && acceptNameMismatch);
        }
    }
}
