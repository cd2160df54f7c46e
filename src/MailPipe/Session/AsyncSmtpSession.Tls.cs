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

    private TlsParameters? _tls;

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
    /// positive (the connection is left open: send QUIT). EHLO answered 500 or 502 (not recognized) is followed by HELO
    /// and HELO's reply is returned, with no extensions (RFC 5321 §3.2, §4.1.4). Another negative EHLO reply is
    /// returned too (except with <see cref="SmtpTlsMode.StartTlsRequired"/> before TLS, which throws, as it does for an
    /// EHLO not recognized). With
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
    public Task<SmtpReply> ConnectAsync(string host, int port, SmtpTlsMode tlsMode, string? ehloDomain, CancellationToken cancellationToken = default) =>
        SubmissionStart.RunAsync(this, host, port, tlsMode, ehloDomain, cancellationToken);

    private async Task<SmtpReply?> ConnectTlsCoreAsync(SmtpTlsOptions tls, string? serverHostName, bool waitForGreeting, CancellationToken cancellationToken)
    {
        using var operation = BeginOperation(cancellationToken, allowPendingReplies: true);
        var targetHost = PrepareTls(tls, serverHostName, greetingMayBePending: true);
        await HandshakeAsync(tls, targetHost).ConfigureAwait(false);
        return waitForGreeting ? await ReadGreetingAsync().ConfigureAwait(false) : null;
    }

    private async Task<SmtpReply> StartTlsCoreAsync(SmtpTlsOptions tls, CancellationToken cancellationToken)
    {
        using var operation = BeginOperation(cancellationToken, allowPendingReplies: true);
        var targetHost = PrepareTls(tls, serverHostName: null, greetingMayBePending: false);
        if (await ResetOpenTransactionAsync("STARTTLS").ConfigureAwait(false) is { } closing)
        {
            return closing;
        }

        // The smtp tls span (and mailpipe.smtp.tls.duration) covers STARTTLS and the handshake: a refused STARTTLS (454
        // TLS not available, 421) is a TLS failure with the reply code as error.type, counted in mailpipe.smtp.tls.failures.
        var telemetry = SessionTelemetry.StartTls(this);
        SmtpReply reply;
        try
        {
            _channel.WriteCommand(StartTlsVerb, "STARTTLS");
            reply = await _channel.FlushAndReadAsync(_options.ReceiveTimeout, "sending STARTTLS").ConfigureAwait(false);
        }
        catch (Exception)
        {
            telemetry?.Dispose();
            throw;
        }

        if (reply.Code != 220)
        {
            telemetry?.Reply(reply);
            return CloseIfSessionRefused(reply);
        }

        await HandshakeAsync(tls, targetHost, telemetry).ConfigureAwait(false);
        return reply;
    }

    /// <summary>TLS not active yet, no reply pending (but the greeting before implicit TLS); the name the certificate must carry.</summary>
    private string PrepareTls(SmtpTlsOptions tls, string? serverHostName, bool greetingMayBePending)
    {
        if (_tls is not null)
        {
            throw new InvalidOperationException("TLS is already active on this SMTP connection.");
        }

        var pending = _channel.PendingReplyCount;
        if (pending > 0 && !(greetingMayBePending && Greeting is null && pending == 1))
        {
            throw new InvalidOperationException($"{pending} repl(ies) are still pending; read them with ReceiveReplyAsync before starting TLS (RFC 3207 §4.2).");
        }

        return TlsHandshake.TargetHost(tls, serverHostName, Host);
    }

    /// <summary>The handshake on the channel (its telemetry <paramref name="started"/> with STARTTLS, else here); then the capabilities and the AUTH state are forgotten (RFC 3207 §4.2).</summary>
    private async Task HandshakeAsync(SmtpTlsOptions tls, string targetHost, TelemetryScope? started = null)
    {
        using (var telemetry = started ?? SessionTelemetry.StartTls(this))
        {
            try
            {
                _tls = await _channel.UpgradeToTlsAsync(tls, targetHost, tls.HandshakeTimeout, beforeGreeting: Greeting is null).ConfigureAwait(false);
            }
            catch (SmtpException ex)
            {
                // The handshake failed (implicit TLS or after STARTTLS) and the connection is closed: it failed to open, and its span says why.
                telemetry?.Dispose();
                SessionTelemetry.ConnectionEnded(this, MailPipeTelemetry.ErrorType(ex));
                throw;
            }

            telemetry?.Ok(_tls.Protocol);
        }

        Capabilities = SmtpCapabilities.None;
        ResetAuthState();
    }

    /// <summary>Breaks the connection between operations (nothing is being sent) and returns the error to throw.</summary>
    internal SmtpException FailBetweenOperations(SmtpException error, string activity)
    {
        using var operation = BeginOperation(CancellationToken.None, allowPendingReplies: true);

        // Only while a connection is being opened (a greeting not ready, STARTTLS not offered or refused, no common AUTH mechanism): it failed to open.
        SessionTelemetry.ConnectionEnded(this, MailPipeTelemetry.ErrorType(error));
        return (SmtpException)Fail(error, activity);
    }

    private void ResetTlsState() => _tls = null;
}
