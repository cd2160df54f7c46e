using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace MailPipe.Cli;

/// <summary>What one connection did with a batch.</summary>
/// <param name="Results">One result per message, in batch order.</param>
/// <param name="Elapsed">From the start of the connect to the last reply of the batch (QUIT not included).</param>
/// <param name="Tls">The TLS parameters, or <see langword="null"/> without TLS.</param>
/// <param name="AuthenticatedAs">The user name when AUTH succeeded, else <see langword="null"/>.</param>
/// <param name="AuthMechanism">The mechanism AUTH succeeded with, else <see langword="null"/>.</param>
/// <param name="AcceptedBytes">The size of the accepted messages as read (before SMTP's line-end and dot encoding).</param>
/// <param name="SessionError">Why no message could be sent (connection, TLS, authentication), else <see langword="null"/>.</param>
internal sealed record BatchReport(
    IReadOnlyList<MessageResult> Results,
    TimeSpan Elapsed,
    TlsInfo? Tls,
    string? AuthenticatedAs,
    string? AuthMechanism,
    long AcceptedBytes,
    string? SessionError);

/// <summary>
/// Sends a batch of messages over one SMTP connection: connect with the TLS mode asked for, EHLO (again after
/// STARTTLS; HELO when EHLO is not understood and no STARTTLS is needed), AUTH when asked, then every message through
/// one <see cref="AsyncSmtpSession.SendBatchAsync(IAsyncEnumerable{SmtpMessage}, CancellationToken)"/> call, so that
/// the transactions overlap (PIPELINING, CHUNKING), and QUIT.
/// </summary>
/// <remarks>
/// The messages' files are opened before the connection is made (<see cref="OutgoingMessage.Prepare"/>), so a file
/// that cannot be opened never costs the batch. Should reading an open file still fail in the middle of the batch,
/// MailPipe closes the connection and the batch's per-message results are lost: every message handed over by then is
/// reported with an unknown outcome (exit 7), the others as not sent.
/// </remarks>
internal sealed class BatchSender
{
    private readonly ServerAddress _server;
    private readonly string _heloName;
    private readonly SmtpTlsMode _tlsMode;
    private readonly AuthSettings? _auth;
    private readonly SmtpSessionOptions _sessionOptions;
    private TlsInfo? _tls;

    /// <summary>Creates a sender.</summary>
    /// <param name="server">Where to connect.</param>
    /// <param name="heloName">The client's name for EHLO/HELO.</param>
    /// <param name="tlsMode">How to protect the connection.</param>
    /// <param name="auth">The authentication to run, or <see langword="null"/>.</param>
    /// <param name="sessionOptions">Timeouts, TLS settings and logging of the session.</param>
    public BatchSender(ServerAddress server, string heloName, SmtpTlsMode tlsMode, AuthSettings? auth, SmtpSessionOptions sessionOptions)
    {
        _server = server;
        _heloName = heloName;
        _tlsMode = tlsMode;
        _auth = auth;
        _sessionOptions = sessionOptions;
    }

    /// <summary>Sends the batch.</summary>
    /// <param name="messages">The messages, each prepared (<see cref="OutgoingMessage.Prepare"/> returned <see langword="true"/>).</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed (a message in flight is never completed).</param>
    /// <returns>The results, in batch order, and what the connection was.</returns>
    public async Task<BatchReport> SendAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        _tls = null;
        var stopwatch = Stopwatch.StartNew();
        var session = new AsyncSmtpSession(_sessionOptions);
        await using (session.ConfigureAwait(false))
        {
            var failure = await OpenAsync(session, cancellationToken).ConfigureAwait(false);
            if (failure is { } why)
            {
                stopwatch.Stop();
                return new BatchReport(
                    [.. messages.Select(m => NotSent(m, why.ExitCode, why.Reason))],
                    stopwatch.Elapsed,
                    _tls,
                    null,
                    null,
                    0,
                    why.Reason);
            }

            var tls = _tls;
            var mechanism = session.AuthenticatedMechanism;
            var handedOver = new List<(OutgoingMessage Message, long? Size)>(messages.Count);
            var readErrors = new Dictionary<OutgoingMessage, string>();
            var results = new MessageResult[messages.Count];
            long acceptedBytes = 0;
            try
            {
                var sent = await session.SendBatchAsync(ProduceAsync(messages, session.Capabilities, handedOver, readErrors, cancellationToken), cancellationToken).ConfigureAwait(false);
                var byMessage = new Dictionary<OutgoingMessage, MessageResult>(sent.Count);
                for (var i = 0; i < sent.Count && i < handedOver.Count; i++)
                {
                    var result = ToMessageResult(handedOver[i].Message, sent[i]);
                    byMessage[handedOver[i].Message] = result;
                    if (result.Outcome == MessageOutcome.Accepted)
                    {
                        acceptedBytes += handedOver[i].Size ?? 0;
                    }
                }

                for (var i = 0; i < messages.Count; i++)
                {
                    var message = messages[i];
                    results[i] = byMessage.TryGetValue(message, out var result) ? result
                        : readErrors.TryGetValue(message, out var readError) ? NotSent(message, ExitCodes.UsageOrInput, readError)
                        : NotSent(message, ExitCodes.ConnectionFailed, "not sent: the batch ended before this message");
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ObjectDisposedException)
            {
                // A file failed while its data was being sent: MailPipe closed the connection and kept no results.
                var inFlight = handedOver.Select(h => h.Message).ToHashSet();
                for (var i = 0; i < messages.Count; i++)
                {
                    var message = messages[i];
                    results[i] = inFlight.Contains(message)
                        ? Unknown(message, $"reading a file of the batch failed while sending ({ex.Message}); the connection was closed, and whether this message was delivered is unknown")
                        : NotSent(message, ExitCodes.ConnectionFailed, $"not sent: reading a file of the batch failed ({ex.Message}) and the connection was closed");
                }
            }

            stopwatch.Stop();
            if (session.State == SmtpSessionState.Connected)
            {
                await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
            }

            return new BatchReport(results, stopwatch.Elapsed, tls, mechanism is null ? null : _auth?.UserName, mechanism, acceptedBytes, null);
        }
    }

    /// <summary>The exit code and outcome of a library result.</summary>
    /// <param name="result">What <c>SendAsync</c> returned.</param>
    /// <returns>The code (see <see cref="ExitCodes"/>) and the CLI's outcome.</returns>
    public static (int ExitCode, MessageOutcome Outcome) Classify(SmtpSendResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return result.Outcome switch
        {
            SmtpSendOutcome.Accepted => (ExitCodes.Success, MessageOutcome.Accepted),
            SmtpSendOutcome.Refused when result.MailReply is { IsPositiveCompletion: false } => (ExitCodes.SenderRefused, MessageOutcome.Refused),
            SmtpSendOutcome.Refused when !result.Recipients.Any(r => r.Accepted) => (ExitCodes.NoRecipientAccepted, MessageOutcome.Refused),
            SmtpSendOutcome.Refused => (ExitCodes.MessageRefused, MessageOutcome.Refused),
            SmtpSendOutcome.Unknown => (ExitCodes.OutcomeUnknown, MessageOutcome.Unknown),
            _ => (result.Exception is SmtpException ex ? ExitCodes.ForError(ex.ErrorCode) : ExitCodes.ConnectionFailed, MessageOutcome.NotSent),
        };
    }

    /// <summary>Why a session could not be opened, as the CLI says it: the library's message with a hint at the option that helps.</summary>
    /// <param name="server">The server.</param>
    /// <param name="exception">The failure.</param>
    /// <returns>The reason.</returns>
    public static string Describe(ServerAddress server, SmtpException exception)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(exception);

        // MailPipe's certificate messages end with a hint at its API; the CLI names its own options instead.
        var message = exception.Message
            .Replace(" Set SmtpTlsOptions.AcceptCertificateNameMismatch to accept it.", string.Empty, StringComparison.Ordinal)
            .Replace(" Trust its root with SmtpTlsOptions.TrustedRootCertificates if it is a private CA.", string.Empty, StringComparison.Ordinal);
        return exception.ErrorCode switch
        {
            SmtpErrorCode.StartTlsNotOffered => $"--starttls: {message}",
            SmtpErrorCode.BadCertificateName => $"TLS with {server} failed: {message} (--accept-name-mismatch accepts such a certificate; --tls-name sets the name to check)",
            SmtpErrorCode.BadCertificate => $"TLS with {server} failed: {message} (--ca-file trusts a private certificate authority)",
            SmtpErrorCode.TlsHandshakeFailed or SmtpErrorCode.StartTlsResponseInjection => $"TLS with {server} failed: {message}",
            SmtpErrorCode.AuthenticationError => $"authentication failed: {message}",
            _ => $"cannot talk to {server}: {message}",
        };
    }

    /// <summary>Hands the messages to MailPipe one by one, each opened as the server's extensions allow; a file that fails to read is left out and reported.</summary>
    private static async IAsyncEnumerable<SmtpMessage> ProduceAsync(
        IReadOnlyList<OutgoingMessage> messages,
        SmtpCapabilities capabilities,
        List<(OutgoingMessage Message, long? Size)> handedOver,
        Dictionary<OutgoingMessage, string> readErrors,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var message in messages)
        {
            SmtpMessage smtpMessage;
            try
            {
                smtpMessage = await message.Content!.OpenAsync(message.Envelope!, capabilities, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                readErrors[message] = $"cannot read {message.File}: {ex.Message}";
                continue;
            }

            handedOver.Add((message, smtpMessage.Envelope.Size ?? smtpMessage.ContentLength));
            yield return smtpMessage;
        }
    }

    /// <summary>Connects, protects the connection, introduces the client and authenticates; returns why the connection is unusable, or <see langword="null"/>.</summary>
    private async Task<(int ExitCode, string Reason)?> OpenAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        try
        {
            var reply = await session.ConnectAsync(_server.Host, _server.Port, _tlsMode, _heloName, cancellationToken).ConfigureAwait(false);
            _tls = ConnectionSettings.Describe(session);
            if (session.Greeting is { IsPositiveCompletion: false } greeting)
            {
                await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
                return (ExitCodes.ConnectionFailed, $"the server at {_server} refused the session: {ReplyInfo.From(greeting)}");
            }

            if (reply.Code is 500 or 502 && session.IsConnected && _tlsMode is SmtpTlsMode.None or SmtpTlsMode.Implicit)
            {
                // Not an ESMTP server (RFC 5321 §3.2): HELO, without extensions.
                reply = await session.HeloAsync(_heloName, cancellationToken).ConfigureAwait(false);
            }

            if (!reply.IsPositiveCompletion)
            {
                await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
                return (ExitCodes.ConnectionFailed, $"the server at {_server} refused EHLO/HELO {_heloName}: {ReplyInfo.From(reply)}");
            }

            return _auth is null ? null : await AuthenticateAsync(session, _auth, cancellationToken).ConfigureAwait(false);
        }
        catch (SmtpException ex)
        {
            return (ExitCodes.ForError(ex.ErrorCode), Describe(_server, ex));
        }
    }

    private static async Task<(int ExitCode, string Reason)?> AuthenticateAsync(AsyncSmtpSession session, AuthSettings auth, CancellationToken cancellationToken)
    {
        SmtpReply reply;
        try
        {
            reply = await auth.AuthenticateAsync(session, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException ex)
        {
            // The clear-text policy, checked before anything is sent (the options' checks should have caught it).
            await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
            return (ExitCodes.AuthenticationFailed, $"authentication failed: {auth}: {ex.Message}");
        }
        catch (ArgumentException ex)
        {
            await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
            return (ExitCodes.UsageOrInput, $"{auth}: {ex.Message}");
        }

        if (reply.Code == 235)
        {
            return null;
        }

        await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
        return (reply.IsServiceClosing ? ExitCodes.ConnectionFailed : ExitCodes.AuthenticationFailed, $"authentication failed: {auth}: {ReplyInfo.From(reply)}");
    }

    private static MessageResult ToMessageResult(OutgoingMessage message, SmtpSendResult result)
    {
        var (exitCode, outcome) = Classify(result);
        return new MessageResult
        {
            Index = message.Index,
            File = message.File,
            From = result.Envelope.ReversePath,
            Recipients = [.. result.Recipients.Select(r => new RecipientResult(r.Recipient.Address, r.Reply is null ? null : ReplyInfo.From(r.Reply)))],
            MailReply = result.MailReply is null ? null : ReplyInfo.From(result.MailReply),
            DataReply = result.DataReply is null ? null : ReplyInfo.From(result.DataReply),
            FinalReply = result.FinalReply is null ? null : ReplyInfo.From(result.FinalReply),
            Outcome = outcome,
            ExitCode = exitCode,
            Error = result.Exception?.Message,
        };
    }

    private static async Task QuietQuitAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        if (!session.IsConnected)
        {
            return;
        }

        try
        {
            await session.QuitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SmtpException)
        {
            // Every message already has its outcome; a failed QUIT changes none of them.
            await session.DisconnectAsync().ConfigureAwait(false);
        }
    }

    /// <summary>A message that never reached the server.</summary>
    /// <param name="message">The message.</param>
    /// <param name="exitCode">Its exit code.</param>
    /// <param name="reason">Why.</param>
    /// <returns>The result.</returns>
    public static MessageResult NotSent(OutgoingMessage message, int exitCode, string reason)
    {
        ArgumentNullException.ThrowIfNull(message);
        return new()
        {
            Index = message.Index,
            File = message.File,
            From = message.ReversePath,
            Recipients = [.. message.Recipients.Select(r => new RecipientResult(r, null))],
            Outcome = MessageOutcome.NotSent,
            ExitCode = exitCode,
            Error = reason,
        };
    }

    private static MessageResult Unknown(OutgoingMessage message, string reason) =>
        NotSent(message, ExitCodes.OutcomeUnknown, reason) with { Outcome = MessageOutcome.Unknown };
}
