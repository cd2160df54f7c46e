using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MailPipe.Transport;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>TLS: implicit TLS (RFC 8314 §3.3), STARTTLS (RFC 3207), the certificate policy and the negotiated parameters.</summary>
public sealed partial class AsyncSmtpSession
{
    private static readonly byte[] StartTlsVerb = "STARTTLS"u8.ToArray();

    /// <summary>While an AUTH exchange runs: the transcript shows 334 replies as <c>334 &lt;redacted&gt;</c>.</summary>
    private TlsSnapshot? _tls;

    /// <summary>Whether TLS is active on this connection (after <see cref="ConnectTlsAsync(bool, CancellationToken)"/> or a successful <see cref="StartTlsAsync(CancellationToken)"/>).</summary>
    public bool IsEncrypted => _tls is not null;

    /// <summary>The negotiated TLS version (such as <see cref="SslProtocols.Tls13"/>); <see cref="SslProtocols.None"/> without TLS.</summary>
    public SslProtocols SslProtocol => _tls?.Protocol ?? SslProtocols.None;

    /// <summary>The negotiated cipher suite (IANA name, such as <c>TLS_AES_256_GCM_SHA384</c>); <see langword="null"/> without TLS.</summary>
    public TlsCipherSuite? NegotiatedCipherSuite => _tls?.CipherSuite;

    /// <summary>The server's certificate as presented in the handshake (a copy the caller may keep); <see langword="null"/> without TLS.</summary>
    public X509Certificate2? RemoteCertificate => _tls?.RemoteCertificate;

    /// <summary>
    /// What was wrong with the server's certificate although it was accepted (<see cref="SslPolicyErrors.None"/> for a
    /// fully valid one): <see cref="SslPolicyErrors.RemoteCertificateNameMismatch"/> when
    /// <see cref="SmtpTlsOptions.AcceptCertificateNameMismatch"/> let it through, or whatever a caller's validation
    /// callback accepted. A chain error cured by <see cref="SmtpTlsOptions.TrustedRootCertificates"/> is not listed.
    /// </summary>
    public SslPolicyErrors RemoteCertificateErrors => _tls?.Errors ?? SslPolicyErrors.None;

    /// <summary>Whether TLS is active with a certificate that does not name the expected server (accepted by the caller's policy, RFC 6125 §6.6).</summary>
    public bool CertificateNameMismatch => (RemoteCertificateErrors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0;

    /// <summary>
    /// Starts TLS on the open connection now, with <see cref="SmtpSessionOptions.Tls"/>: the seed's
    /// <c>ConnectTls(serverHostName, wait)</c>. For implicit TLS (RFC 8314 §3.3, port 465) call it right after
    /// <c>ConnectAsync(host, port, waitForGreeting: false)</c> with <paramref name="waitForGreeting"/> =
    /// <see langword="true"/>; after a STARTTLS command sent by hand that got 220, call it with
    /// <see langword="false"/> (or use <see cref="StartTlsAsync(CancellationToken)"/>, which does both).
    /// </summary>
    /// <param name="waitForGreeting">Whether to read the server's greeting (RFC 5321 §4.2) over TLS once the handshake is done.</param>
    /// <param name="cancellationToken">Cancels the handshake or the wait; the connection is then closed.</param>
    /// <returns>The greeting (possibly negative) when <paramref name="waitForGreeting"/>, else <see langword="null"/>.</returns>
    /// <exception cref="InvalidOperationException">Not connected, TLS already active, replies still pending, no server name known (a stream connection without <see cref="SmtpTlsOptions.TargetHost"/>), or another operation is running.</exception>
    /// <exception cref="SmtpProtocolException"><see cref="SmtpErrorCode.StartTlsResponseInjection"/>: bytes were buffered before the handshake (RFC 3207 §5); they are never handed to TLS.</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.BadCertificateName"/>, <see cref="SmtpErrorCode.BadCertificate"/>, <see cref="SmtpErrorCode.TlsHandshakeFailed"/>, <see cref="SmtpErrorCode.TimedOut"/> (after <see cref="SmtpTlsOptions.HandshakeTimeout"/>), or a failure reading the greeting. The connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<SmtpReply?> ConnectTlsAsync(bool waitForGreeting = false, CancellationToken cancellationToken = default) =>
        ConnectTlsCoreAsync(_options.Tls, serverHostName: null, waitForGreeting, cancellationToken);

    /// <summary>
    /// Starts TLS on the open connection now, checking the certificate against <paramref name="serverHostName"/>: the
    /// seed's <c>ConnectTls(serverHostName, wait)</c>. See <see cref="ConnectTlsAsync(bool, CancellationToken)"/>.
    /// </summary>
    /// <param name="serverHostName">The name the server's certificate must carry, also sent as SNI (RFC 6066 §3); overrides <see cref="SmtpTlsOptions.TargetHost"/> and the connected host.</param>
    /// <param name="waitForGreeting">Whether to read the greeting over TLS once the handshake is done (implicit TLS).</param>
    /// <param name="cancellationToken">Cancels the handshake or the wait; the connection is then closed.</param>
    /// <returns>The greeting when <paramref name="waitForGreeting"/>, else <see langword="null"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="serverHostName"/> is empty or holds CR, LF or NUL.</exception>
    /// <exception cref="InvalidOperationException">Not connected, TLS already active, replies still pending, or another operation is running.</exception>
    /// <exception cref="SmtpProtocolException"><see cref="SmtpErrorCode.StartTlsResponseInjection"/> (RFC 3207 §5).</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.BadCertificateName"/>, <see cref="SmtpErrorCode.BadCertificate"/>, <see cref="SmtpErrorCode.TlsHandshakeFailed"/>, <see cref="SmtpErrorCode.TimedOut"/>; the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<SmtpReply?> ConnectTlsAsync(string serverHostName, bool waitForGreeting = false, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serverHostName);
        SmtpCommandWriter.ValidateArgument(serverHostName, nameof(serverHostName));
        return ConnectTlsCoreAsync(_options.Tls, serverHostName, waitForGreeting, cancellationToken);
    }

    /// <summary>
    /// Starts TLS on the open connection now with the caller's TLS settings for this handshake (the seed's
    /// <c>ConnectTlsOpenSSL</c>): client certificates, protocols, cipher policy, validation callback, extra roots.
    /// See <see cref="ConnectTlsAsync(bool, CancellationToken)"/>.
    /// </summary>
    /// <param name="tlsOptions">The settings for this handshake, used instead of <see cref="SmtpSessionOptions.Tls"/>; read now, not kept.</param>
    /// <param name="waitForGreeting">Whether to read the greeting over TLS once the handshake is done (implicit TLS).</param>
    /// <param name="cancellationToken">Cancels the handshake or the wait; the connection is then closed.</param>
    /// <returns>The greeting when <paramref name="waitForGreeting"/>, else <see langword="null"/>.</returns>
    /// <exception cref="ArgumentException">A setting of <paramref name="tlsOptions"/> is invalid.</exception>
    /// <exception cref="InvalidOperationException">Not connected, TLS already active, replies still pending, no server name known, or another operation is running.</exception>
    /// <exception cref="SmtpProtocolException"><see cref="SmtpErrorCode.StartTlsResponseInjection"/> (RFC 3207 §5).</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.BadCertificateName"/>, <see cref="SmtpErrorCode.BadCertificate"/>, <see cref="SmtpErrorCode.TlsHandshakeFailed"/>, <see cref="SmtpErrorCode.TimedOut"/>; the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<SmtpReply?> ConnectTlsAsync(SmtpTlsOptions tlsOptions, bool waitForGreeting = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tlsOptions);
        tlsOptions.Validate();
        return ConnectTlsCoreAsync(tlsOptions, serverHostName: null, waitForGreeting, cancellationToken);
    }

    /// <summary>
    /// Sends STARTTLS (RFC 3207 §4) and reads the reply; on 220 checks that the server sent nothing more (response
    /// injection, RFC 3207 §5), performs the TLS handshake with <see cref="SmtpSessionOptions.Tls"/>, and clears
    /// <see cref="Capabilities"/> (RFC 3207 §4.2): send EHLO again next. The seed's <c>SendCommand("STARTTLS")</c> +
    /// <c>ConnectTls(host, false)</c>.
    /// </summary>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>The reply to STARTTLS: 220 when TLS is now active; a negative reply (454 TLS not available, 501, 502) leaves the connection open and unencrypted.</returns>
    /// <exception cref="InvalidOperationException">Not connected, TLS already active, replies still pending, no server name known, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpProtocolException"><see cref="SmtpErrorCode.StartTlsResponseInjection"/>: bytes followed the 220 reply; they are never handed to TLS and the connection is closed.</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.BadCertificateName"/>, <see cref="SmtpErrorCode.BadCertificate"/>, <see cref="SmtpErrorCode.TlsHandshakeFailed"/>, <see cref="SmtpErrorCode.TimedOut"/>, or a transport failure; the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<SmtpReply> StartTlsAsync(CancellationToken cancellationToken = default) =>
        StartTlsCoreAsync(_options.Tls, cancellationToken);

    /// <summary>
    /// Sends STARTTLS (RFC 3207) and, on 220, starts TLS with the caller's TLS settings for this handshake. See
    /// <see cref="StartTlsAsync(CancellationToken)"/>.
    /// </summary>
    /// <param name="tlsOptions">The settings for this handshake; <see langword="null"/> for <see cref="SmtpSessionOptions.Tls"/>.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>The reply to STARTTLS: 220 when TLS is now active, or a negative reply (connection left open and unencrypted).</returns>
    /// <exception cref="ArgumentException">A setting of <paramref name="tlsOptions"/> is invalid.</exception>
    /// <exception cref="InvalidOperationException">Not connected, TLS already active, replies still pending, no server name known, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpProtocolException"><see cref="SmtpErrorCode.StartTlsResponseInjection"/> (RFC 3207 §5).</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.BadCertificateName"/>, <see cref="SmtpErrorCode.BadCertificate"/>, <see cref="SmtpErrorCode.TlsHandshakeFailed"/>, <see cref="SmtpErrorCode.TimedOut"/>, or a transport failure; the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<SmtpReply> StartTlsAsync(SmtpTlsOptions? tlsOptions, CancellationToken cancellationToken = default)
    {
        tlsOptions?.Validate();
        return StartTlsCoreAsync(tlsOptions ?? _options.Tls, cancellationToken);
    }

    /// <summary>
    /// Connects, protects the connection as <paramref name="tlsMode"/> says, and sends EHLO: one call for what a
    /// submission client does first (RFC 5321 §3.1-3.2, RFC 8314, RFC 3207). With STARTTLS, EHLO is sent again over TLS
    /// (RFC 3207 §4.2) and that second reply is returned. TLS settings come from <see cref="SmtpSessionOptions.Tls"/>.
    /// </summary>
    /// <param name="host">A host name or IP literal; also the name the certificate must carry unless <see cref="SmtpTlsOptions.TargetHost"/> says otherwise.</param>
    /// <param name="port">The TCP port, 1 to 65535: usually 465 for <see cref="SmtpTlsMode.Implicit"/>, 587 or 25 for STARTTLS.</param>
    /// <param name="tlsMode">How to use TLS; there is no default on purpose.</param>
    /// <param name="ehloDomain">The client's domain or address literal for EHLO, such as <c>client.example.org</c> or <c>[192.0.2.1]</c>; <see langword="null"/> for <see cref="GetDefaultClientDomainAsync"/> (computed after connect).</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>
    /// The last EHLO reply (its extensions are in <see cref="Capabilities"/>); the greeting instead when it was not
    /// positive (the connection is left open: send QUIT). A negative EHLO reply is returned too (except with
    /// <see cref="SmtpTlsMode.StartTlsRequired"/> before TLS, which throws). With
    /// <see cref="SmtpTlsMode.StartTlsWhenAvailable"/> and no STARTTLS, or a refused one, the plain-text EHLO reply.
    /// </returns>
    /// <exception cref="ArgumentException"><paramref name="host"/> or <paramref name="ehloDomain"/> is empty or invalid.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="port"/> is out of range, or <paramref name="tlsMode"/> is not defined.</exception>
    /// <exception cref="InvalidOperationException">The session is already connected, or another operation is running.</exception>
    /// <exception cref="SmtpException">
    /// <see cref="SmtpErrorCode.StartTlsNotOffered"/> (StartTlsRequired and the EHLO reply lacks STARTTLS or is negative,
    /// or STARTTLS was refused: the connection is closed and nothing more is sent), the certificate and handshake codes of
    /// <see cref="ConnectTlsAsync(bool, CancellationToken)"/>, or a connect/transport failure. The connection is closed.
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> ConnectAsync(string host, int port, SmtpTlsMode tlsMode, string? ehloDomain, CancellationToken cancellationToken = default)
    {
        if (ehloDomain is not null)
        {
            ValidateDomain(ehloDomain);
        }

        if (!Enum.IsDefined(tlsMode))
        {
            throw new ArgumentOutOfRangeException(nameof(tlsMode), tlsMode, "Unknown TLS mode.");
        }

        SmtpReply greeting;
        if (tlsMode == SmtpTlsMode.Implicit)
        {
            await ConnectAsync(host, port, waitForGreeting: false, cancellationToken).ConfigureAwait(false);
            greeting = (await ConnectTlsAsync(waitForGreeting: true, cancellationToken).ConfigureAwait(false))!;
        }
        else
        {
            greeting = (await ConnectAsync(host, port, waitForGreeting: true, cancellationToken).ConfigureAwait(false))!;
        }

        if (!greeting.IsPositiveCompletion || !IsConnected)
        {
            return greeting;
        }

        if (SmtpGreetingRules.NotReady(greeting) is { } notReady)
        {
            throw FailBetweenOperations(notReady, "reading the greeting");
        }

        ehloDomain ??= await GetDefaultClientDomainAsync(cancellationToken).ConfigureAwait(false);
        var ehlo = await EhloAsync(ehloDomain, cancellationToken).ConfigureAwait(false);
        if (tlsMode is not (SmtpTlsMode.StartTlsRequired or SmtpTlsMode.StartTlsWhenAvailable) || ehlo.IsServiceClosing)
        {
            return ehlo;
        }

        var required = tlsMode == SmtpTlsMode.StartTlsRequired;
        if (!ehlo.IsPositiveCompletion || !Capabilities.SupportsStartTls)
        {
            if (!required)
            {
                return ehlo;
            }

            throw FailBetweenOperations(new SmtpException(
                SmtpErrorCode.StartTlsNotOffered,
                ehlo.IsPositiveCompletion
                    ? $"TLS is required but {host}:{port} does not offer STARTTLS in its EHLO reply; nothing more was sent and the connection was closed."
                    : $"TLS is required but {host}:{port} answered EHLO with {ehlo.Code}; nothing more was sent and the connection was closed."),
                "checking for STARTTLS");
        }

        var startTls = await StartTlsAsync(cancellationToken).ConfigureAwait(false);
        if (startTls.Code != 220)
        {
            if (!required || startTls.IsServiceClosing)
            {
                return startTls.IsServiceClosing ? startTls : ehlo;
            }

            throw FailBetweenOperations(
                new SmtpException(SmtpErrorCode.StartTlsNotOffered, $"TLS is required but {host}:{port} refused STARTTLS ({startTls}); the connection was closed."),
                "starting TLS");
        }

        return await EhloAsync(ehloDomain, cancellationToken).ConfigureAwait(false);
    }

    private async Task<SmtpReply?> ConnectTlsCoreAsync(SmtpTlsOptions tls, string? serverHostName, bool waitForGreeting, CancellationToken cancellationToken)
    {
        BeginOperation(cancellationToken, allowPendingReplies: true);
        try
        {
            var targetHost = PrepareTls(tls, serverHostName, greetingMayBePending: true);
            await HandshakeAsync(tls, targetHost).ConfigureAwait(false);
            return waitForGreeting ? await ReadGreetingAsync().ConfigureAwait(false) : null;
        }
        finally
        {
            EndOperation();
        }
    }

    private async Task<SmtpReply> StartTlsCoreAsync(SmtpTlsOptions tls, CancellationToken cancellationToken)
    {
        BeginOperation(cancellationToken, allowPendingReplies: true);
        try
        {
            var targetHost = PrepareTls(tls, serverHostName: null, greetingMayBePending: false);
            if (await ResetOpenTransactionAsync("STARTTLS").ConfigureAwait(false) is { } closing)
            {
                return closing;
            }

            WriteCommand(StartTlsVerb, "STARTTLS");
            var reply = await FlushAndReadAsync(_options.ReceiveTimeout, "sending STARTTLS").ConfigureAwait(false);
            if (reply.Code != 220)
            {
                return CloseIfServiceClosing(reply);
            }

            await HandshakeAsync(tls, targetHost).ConfigureAwait(false);
            return reply;
        }
        finally
        {
            EndOperation();
        }
    }

    /// <summary>Checks that TLS may start now and finds the server name; throws before anything is sent.</summary>
    private string PrepareTls(SmtpTlsOptions tls, string? serverHostName, bool greetingMayBePending)
    {
        if (_tls is not null)
        {
            throw new InvalidOperationException("TLS is already active on this SMTP connection.");
        }

        var greetingPending = greetingMayBePending && Greeting is null && _pendingReplies.Count == 1;
        if (_pendingReplies.Count > 0 && !greetingPending)
        {
            throw new InvalidOperationException($"{_pendingReplies.Count} repl(ies) are still pending; read them with ReceiveReplyAsync before starting TLS (RFC 3207 §4.2).");
        }

        return serverHostName ?? tls.TargetHost ?? tls.ClientAuthenticationOptions?.TargetHost ?? Host
            ?? throw new InvalidOperationException("No server name to check the certificate against: the session was connected over a stream; set SmtpTlsOptions.TargetHost or pass serverHostName.");
    }

    /// <summary>The response-injection check, then the handshake over the same transport; swaps the pipes. Every failure closes the connection.</summary>
    private async Task HandshakeAsync(SmtpTlsOptions tls, string targetHost)
    {
        using var telemetry = SessionTelemetry.StartTls(this);
        var connection = Connection;
        var injected = _parser.HasPartialReply ? 1L : 0L;
        if (connection.Input.TryRead(out var buffered))
        {
            injected += buffered.Buffer.Length;
            connection.Input.AdvanceTo(buffered.Buffer.Start);
        }

        if (injected > 0)
        {
            throw Fail(
                new SmtpProtocolException(
                    SmtpErrorCode.StartTlsResponseInjection,
                    $"The server sent {injected} byte(s) after its reply to STARTTLS and before the TLS handshake (response injection, RFC 3207 §5); they were discarded and the connection was closed."),
                "starting TLS");
        }

        var check = new CertificateCheck(tls, targetHost);
        var sslOptions = check.CreateClientOptions();
        StartTimer(tls.HandshakeTimeout);
        try
        {
            await connection.UpgradeToTlsAsync(sslOptions, _channel.SendToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw FailTls(ex, check);
        }

        StopTimer();
        var stream = connection.TlsStream!;
        _tls = new TlsSnapshot(stream.SslProtocol, stream.NegotiatedCipherSuite, check.Certificate, check.Errors);
        telemetry?.Ok(stream.SslProtocol);
        Capabilities = SmtpCapabilities.None;
        ResetAuthState();
        _parser.Reset();
        if (_sessionLog.IsEnabled(LogLevel.Debug))
        {
            Log.TlsEstablished(_sessionLog, stream.SslProtocol.ToString(), stream.NegotiatedCipherSuite.ToString());
        }
    }

    /// <summary>Classifies a handshake failure: the certificate decision, else a TLS/IO failure; cancellation and timeouts go through <c>Fail</c> as usual.</summary>
    private Exception FailTls(Exception exception, CertificateCheck check)
    {
        const string Activity = "negotiating TLS";
        if (exception is SmtpException || _callerToken.IsCancellationRequested || _channel.SendCancelled)
        {
            return Fail(exception, Activity);
        }

        SmtpException error;
        if (check.Rejected && check.Errors == SslPolicyErrors.RemoteCertificateNameMismatch)
        {
            error = new SmtpException(
                SmtpErrorCode.BadCertificateName,
                $"The server's certificate ({check.Certificate?.Subject}) does not name '{check.TargetHost}'; the connection was closed. Set SmtpTlsOptions.AcceptCertificateNameMismatch to accept it.",
                exception);
        }
        else if (check.Rejected)
        {
            error = new SmtpException(
                SmtpErrorCode.BadCertificate,
                $"The server's certificate ({check.Certificate?.Subject ?? "none"}) was rejected ({check.Errors}); the connection was closed. Trust its root with SmtpTlsOptions.TrustedRootCertificates if it is a private CA.",
                exception);
        }
        else
        {
            error = new SmtpException(SmtpErrorCode.TlsHandshakeFailed, $"The TLS handshake with '{check.TargetHost}' failed: {exception.Message}", exception);
        }

        return Fail(error, Activity);
    }

    /// <summary>
    /// Closes the connection for a failure found between two operations (a policy decision, not I/O), under the
    /// operation guard so that an operation started meanwhile on another thread is not torn down: that case throws
    /// <see cref="InvalidOperationException"/> instead.
    /// </summary>
    private SmtpException FailBetweenOperations(SmtpException error, string activity)
    {
        BeginOperation(CancellationToken.None, allowPendingReplies: true);
        try
        {
            return (SmtpException)Fail(error, activity);
        }
        finally
        {
            EndOperation();
        }
    }

    private void ResetTlsState()
    {
        _redactServerText = false;
        _tls = null;
    }

    private sealed record TlsSnapshot(SslProtocols Protocol, TlsCipherSuite CipherSuite, X509Certificate2? RemoteCertificate, SslPolicyErrors Errors);
}
