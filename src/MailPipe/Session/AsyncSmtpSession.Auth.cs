using System.Net;
using System.Security.Cryptography;
using MailPipe.Authentication;

namespace MailPipe;

/// <summary>
/// AUTH (RFC 4954): the raw exchange with 334 continuations, the typed mechanisms, and the automatic choice. A refused
/// password is a returned reply (535), never an exception. The transcript never shows secrets: <c>C: AUTH PLAIN
/// &lt;redacted&gt;</c>, <c>S: 334 &lt;redacted&gt;</c>, <c>C: &lt;redacted&gt;</c>.
/// </summary>
public sealed partial class AsyncSmtpSession
{
    /// <summary>The mechanism of the last successful AUTH on this connection (235), or <see langword="null"/>; cleared by a disconnect. Another 2yz reply to AUTH (such as 250) is returned but is not a success.</summary>
    public string? AuthenticatedMechanism { get; private set; }

    /// <summary>The mechanism of the last AUTH exchange begun on this session, successful or not (for the pool's message when the server refuses it).</summary>
    internal string? LastAttemptedMechanism { get; private set; }

    /// <summary>Whether AUTH succeeded on this connection (RFC 4954 §4: a 235 reply); cleared by a disconnect.</summary>
    public bool IsAuthenticated => AuthenticatedMechanism is not null;

    /// <summary>
    /// Runs one AUTH exchange for any SASL mechanism (RFC 4954 §4, RFC 4422): the seed's <c>Auth()</c>. Sends
    /// <c>AUTH mechanism [initial-response]</c>; for each 334 reply decodes the base64 challenge, calls
    /// <paramref name="onChallenge"/> and sends its answer in base64 (or <c>*</c>, cancelling the exchange, when it
    /// returns <see langword="null"/>); returns the first reply that is not 334.
    /// </summary>
    /// <param name="mechanism">The SASL mechanism name, such as <c>PLAIN</c> (RFC 4422 §3.1: 1-20 of A-Z 0-9 - _; lower case is upper-cased).</param>
    /// <param name="initialResponse">The initial response, raw bytes (base64 is applied here); <see langword="null"/> for none; empty is sent as <c>=</c>. One longer than the AUTH line allows (12,288 octets) is sent after an empty 334 instead.</param>
    /// <param name="onChallenge">Gets each decoded challenge (empty for an empty 334) and the operation's token; returns the raw answer (empty for an empty line), or <see langword="null"/> to send <c>*</c>. Note that a <see langword="null"/> <c>byte[]</c> converts to an <i>empty</i> answer, not to <see langword="null"/>: return <c>(ReadOnlyMemory&lt;byte&gt;?)null</c>.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>The final reply: 235 on success, 535 for rejected credentials, 501 after <c>*</c>, 504 for an unknown mechanism, 530/538 when TLS is needed first, or any other reply.</returns>
    /// <exception cref="ArgumentException"><paramref name="mechanism"/> is not a valid SASL name.</exception>
    /// <exception cref="InvalidOperationException">Not connected, replies pending, another operation is running, or the mechanism is PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER on a connection without TLS and <see cref="SmtpSessionOptions.AllowCleartextAuthentication"/> is off (nothing was sent).</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/> for a challenge that is not base64 or more than 16 challenges: the exchange was cancelled with <c>*</c> and the server's answer is in <see cref="SmtpException.Reply"/> (<see cref="SmtpException.IsTransient"/> when it is 4yz); after a negative answer (501) other than 421 the session stays connected. Transport failures and timeouts: the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the connection is closed.</exception>
    /// <remarks>An exception thrown by <paramref name="onChallenge"/> closes the connection (the exchange is half done) and reaches the caller unchanged.</remarks>
    public Task<SmtpReply> AuthenticateAsync(
        string mechanism,
        ReadOnlyMemory<byte>? initialResponse,
        Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask<ReadOnlyMemory<byte>?>> onChallenge,
        CancellationToken cancellationToken = default)
    {
        var name = SmtpAuthenticationMechanisms.Normalize(mechanism, nameof(mechanism));
        ArgumentNullException.ThrowIfNull(onChallenge);
        return RunMechanismAsync(new SaslCallbackMechanism(name, initialResponse, onChallenge), cancellationToken);
    }

    /// <summary>
    /// Authenticates with a password using the strongest mechanism both sides support (RFC 4954), or the one pinned in
    /// <see cref="SmtpAuthenticationOptions.Mechanism"/>. Order: <see cref="SmtpAuthenticationMechanisms.PasswordPreferenceOrder"/>
    /// (SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, NTLM, PLAIN, LOGIN), skipping PLAIN and LOGIN without TLS (unless
    /// <see cref="SmtpSessionOptions.AllowCleartextAuthentication"/>) and NTLM when the platform cannot do it. The
    /// server's list comes from <see cref="Capabilities"/> (send EHLO first, and again after STARTTLS).
    /// </summary>
    /// <param name="credential">User name and password; <see cref="NetworkCredential.Domain"/> is used by NTLM only.</param>
    /// <param name="options">The pinned mechanism, authorization identity, NTLM target name; <see langword="null"/> for the defaults.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>The final reply: 235 on success, 535 when the server rejects the credentials, or another negative reply.</returns>
    /// <exception cref="ArgumentException">The credential has no user name, a value holds characters the mechanism cannot carry, or the pinned mechanism is not a password mechanism MailPipe implements.</exception>
    /// <exception cref="InvalidOperationException">Not connected, another operation is running, the pinned mechanism is not in the server's AUTH list (nothing was sent), or the pinned mechanism reveals the password on a connection without TLS (nothing was sent).</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/>: no mechanism both sides support may run here (nothing was sent), the pinned NTLM is not available on this platform, or the server failed SCRAM's mutual authentication (the connection is closed); a challenge the mechanism cannot answer (not base64, an empty CRAM-MD5 challenge, a malformed SCRAM message, one the platform's NTLM refuses) is cancelled with <c>*</c> and the server's answer is in <see cref="SmtpException.Reply"/>, the session still connected after a negative answer other than 421. A transport failure: the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the connection is closed.</exception>
    public Task<SmtpReply> AuthenticateAsync(NetworkCredential credential, SmtpAuthenticationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(credential);
        ArgumentException.ThrowIfNullOrEmpty(credential.UserName, nameof(credential));
        ThrowIfDisconnected();
        options ??= new SmtpAuthenticationOptions();
        var sasl = Sasl();
        var first = sasl.ChoosePassword(credential, options, out var pinned) ?? throw NoCommonMechanism(sasl, SmtpAuthenticationMechanisms.PasswordPreferenceOrder);
        return pinned ? RunMechanismAsync(first, cancellationToken)
            : SaslFallback.RunAsync(first, sasl.Offered, IsEncrypted, n => sasl.UsablePassword(n, credential, options), RunMechanismAsync, cancellationToken);
    }

    /// <summary>
    /// Authenticates with an OAuth 2.0 access token using OAUTHBEARER (RFC 7628) when the server offers it, else
    /// XOAUTH2, or the mechanism pinned in <see cref="SmtpAuthenticationOptions.Mechanism"/>.
    /// </summary>
    /// <param name="userName">The mailbox the token is for, such as <c>user@example.org</c>.</param>
    /// <param name="accessTokenProvider">Returns a current access token; called once per attempt, so a refreshed token is used each time. Its exceptions reach the caller (nothing has been sent then).</param>
    /// <param name="options">The pinned mechanism; <see langword="null"/> for the automatic choice.</param>
    /// <param name="cancellationToken">Cancels (also passed to the provider); the connection is then closed.</param>
    /// <returns>The final reply: 235 on success; after a refused token (the server's 334 error JSON is acknowledged as the mechanism requires) the server's 5yz, such as 535 or 334-then-535.</returns>
    /// <exception cref="ArgumentException"><paramref name="userName"/> is empty or holds control characters, or the pinned mechanism is not XOAUTH2 or OAUTHBEARER.</exception>
    /// <exception cref="InvalidOperationException">Not connected, another operation is running, the pinned mechanism is not in the server's AUTH list, no TLS and <see cref="SmtpSessionOptions.AllowCleartextAuthentication"/> is off, or the provider returned an empty token (nothing was sent).</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/>: the server offers neither mechanism (nothing was sent); or a transport failure. The connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the connection is closed.</exception>
    public Task<SmtpReply> AuthenticateAsync(
        string userName,
        Func<CancellationToken, ValueTask<string>> accessTokenProvider,
        SmtpAuthenticationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userName);
        ArgumentNullException.ThrowIfNull(accessTokenProvider);
        ThrowIfDisconnected();
        var sasl = Sasl();
        var name = sasl.ChooseToken(options?.Mechanism, nameof(options)) ?? throw NoCommonMechanism(sasl, SmtpAuthenticationMechanisms.TokenPreferenceOrder);
        return RunMechanismAsync(sasl.CreateOAuth(name, userName, accessTokenProvider), cancellationToken);
    }

    /// <summary>AUTH PLAIN (RFC 4616) with the credentials as initial response. The seed's <c>AuthPlain()</c>.</summary>
    /// <param name="userName">The authentication identity.</param>
    /// <param name="password">The password.</param>
    /// <param name="authorizationId">The identity to act as (RFC 4616 §2), or <see langword="null"/> for the same as <paramref name="userName"/>.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>235 on success, 535 for a rejected password, 530/538 when TLS is needed first, or another reply.</returns>
    /// <exception cref="ArgumentException"><paramref name="userName"/> is empty, or a value holds NUL.</exception>
    /// <exception cref="InvalidOperationException">Not connected, another operation is running, the mechanism is not in the server's AUTH list, or no TLS and <see cref="SmtpSessionOptions.AllowCleartextAuthentication"/> is off (nothing was sent).</exception>
    /// <exception cref="SmtpException">Transport failure or timeout; the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the connection is closed.</exception>
    public Task<SmtpReply> AuthPlainAsync(string userName, string password, string? authorizationId = null, CancellationToken cancellationToken = default) =>
        RunMechanismAsync(new SaslPlain(userName, password, authorizationId), cancellationToken);

    /// <summary>AUTH LOGIN: the user name, then the password, each answering a 334 prompt. The seed's <c>AuthLogin()</c>.</summary>
    /// <param name="userName">The user name.</param>
    /// <param name="password">The password.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>235 on success, 535 for a rejected password, or another reply.</returns>
    /// <exception cref="ArgumentException"><paramref name="userName"/> is empty.</exception>
    /// <exception cref="InvalidOperationException">Not connected, another operation is running, the mechanism is not in the server's AUTH list, or no TLS and <see cref="SmtpSessionOptions.AllowCleartextAuthentication"/> is off (nothing was sent).</exception>
    /// <exception cref="SmtpException">Transport failure or timeout; the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the connection is closed.</exception>
    public Task<SmtpReply> AuthLoginAsync(string userName, string password, CancellationToken cancellationToken = default) =>
        RunMechanismAsync(new SaslLogin(userName, password), cancellationToken);

    /// <summary>AUTH CRAM-MD5 (RFC 2195): answers the server's challenge with the HMAC-MD5 digest; the password never crosses the wire. The seed's <c>AuthCramMd5()</c>.</summary>
    /// <param name="userName">The user name (no spaces).</param>
    /// <param name="password">The password (the HMAC key, UTF-8).</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>235 on success, 535 for a rejected password, or another reply.</returns>
    /// <exception cref="ArgumentException"><paramref name="userName"/> is empty or holds spaces or control characters.</exception>
    /// <exception cref="InvalidOperationException">Not connected, another operation is running, or the mechanism is not in the server's AUTH list (nothing was sent).</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/> for an empty challenge or a non-base64 one: cancelled with <c>*</c>, the server's answer in <see cref="SmtpException.Reply"/> (<see cref="SmtpException.IsTransient"/> when it is 4yz); after a negative answer other than 421 the session stays connected. Transport failure or timeout: the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the connection is closed.</exception>
    public Task<SmtpReply> AuthCramMd5Async(string userName, string password, CancellationToken cancellationToken = default) =>
        RunMechanismAsync(new SaslCramMd5(userName, password), cancellationToken);

    /// <summary>
    /// AUTH NTLM through the platform's <see cref="System.Net.Security.NegotiateAuthentication"/> (MS-NLMP). The seed's
    /// <c>AuthNtlm()</c>. On Linux it needs GSSAPI's NTLM mechanism: Debian's <c>gss-ntlmssp</c> package.
    /// </summary>
    /// <param name="credential">User name, password and domain (empty for Cyrus SASL servers such as Postfix's).</param>
    /// <param name="targetName">The service principal name; <see langword="null"/> for <c>SMTPSVC/</c> + the connected host.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>235 on success, 535 for a rejected password, or another reply.</returns>
    /// <exception cref="ArgumentException">The credential has no user name, or <paramref name="targetName"/> is white space.</exception>
    /// <exception cref="InvalidOperationException">Not connected, another operation is running, or the mechanism is not in the server's AUTH list (nothing was sent).</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/>: NTLM is not available on this platform (the message says to install gss-ntlmssp on Linux; nothing was sent; the connection is closed), or the platform rejected the server's challenge (cancelled with <c>*</c>, the server's answer in <see cref="SmtpException.Reply"/>; after a negative answer other than 421 the session stays connected). Transport failure or timeout: the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the connection is closed.</exception>
    public Task<SmtpReply> AuthNtlmAsync(NetworkCredential credential, string? targetName = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(credential);
        return RunMechanismAsync(new SaslNtlm(credential, Sasl().NtlmTargetName(targetName)), cancellationToken);
    }

    /// <summary>AUTH SCRAM-SHA-256 (RFC 7677) or SCRAM-SHA-1 (RFC 5802), without channel binding; the server's signature is verified.</summary>
    /// <param name="userName">The user name (SASLprep'd, RFC 4013).</param>
    /// <param name="password">The password (SASLprep'd).</param>
    /// <param name="hashAlgorithm"><see cref="HashAlgorithmName.SHA256"/> for SCRAM-SHA-256 or <see cref="HashAlgorithmName.SHA1"/> for SCRAM-SHA-1.</param>
    /// <param name="authorizationId">The identity to act as, or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>235 on success (only after the server proved it knows the password), 535 for a rejected password, or another reply.</returns>
    /// <exception cref="ArgumentException">Another hash algorithm, an empty user name, or a character SASLprep prohibits.</exception>
    /// <exception cref="InvalidOperationException">Not connected, another operation is running, or the mechanism is not in the server's AUTH list (nothing was sent).</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/>: a malformed server-first message (nonce, salt, iteration count 1 to 100,000) or a server error (<c>e=</c>) is cancelled with <c>*</c>, the server's answer in <see cref="SmtpException.Reply"/>, and after a negative answer other than 421 the session stays connected; a wrong or missing server signature, or success without one, closes the connection (the server proved nothing, so no further line goes to it). Transport failure or timeout: the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the connection is closed.</exception>
    public Task<SmtpReply> AuthScramAsync(string userName, string password, HashAlgorithmName hashAlgorithm, string? authorizationId = null, CancellationToken cancellationToken = default) =>
        RunMechanismAsync(new SaslScram(hashAlgorithm, userName, password, authorizationId), cancellationToken);

    /// <summary>AUTH XOAUTH2 (Google, Microsoft): <c>user=…^Aauth=Bearer …^A^A</c> as the initial response.</summary>
    /// <param name="userName">The mailbox the token is for.</param>
    /// <param name="accessTokenProvider">Returns a current access token; called once per call.</param>
    /// <param name="cancellationToken">Cancels (also passed to the provider); the connection is then closed.</param>
    /// <returns>235 on success; for a refused token the server's error JSON (334) is answered with an empty line and its final reply (such as 535) is returned.</returns>
    /// <exception cref="ArgumentException"><paramref name="userName"/> is empty or holds control characters.</exception>
    /// <exception cref="InvalidOperationException">Not connected, another operation is running, the mechanism is not in the server's AUTH list, no TLS and <see cref="SmtpSessionOptions.AllowCleartextAuthentication"/> is off, or the provider returned an empty token (nothing was sent).</exception>
    /// <exception cref="SmtpException">Transport failure or timeout; the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the connection is closed.</exception>
    public Task<SmtpReply> AuthXOAuth2Async(string userName, Func<CancellationToken, ValueTask<string>> accessTokenProvider, CancellationToken cancellationToken = default) =>
        RunMechanismAsync(Sasl().CreateOAuth(SmtpAuthenticationMechanisms.XOAuth2, userName, accessTokenProvider), cancellationToken);

    /// <summary>AUTH OAUTHBEARER (RFC 7628 §3.1): <c>n,a=user,^Ahost=…^Aport=…^Aauth=Bearer …^A^A</c> as the initial response.</summary>
    /// <param name="userName">The mailbox the token is for (the GS2 authorization identity).</param>
    /// <param name="accessTokenProvider">Returns a current access token; called once per call.</param>
    /// <param name="cancellationToken">Cancels (also passed to the provider); the connection is then closed.</param>
    /// <returns>235 on success; for a refused token the server's error JSON (334) is answered with %x01 (RFC 7628 §3.2.3) and its final reply (such as 535) is returned.</returns>
    /// <exception cref="ArgumentException"><paramref name="userName"/> is empty or holds control characters.</exception>
    /// <exception cref="InvalidOperationException">Not connected, another operation is running, the mechanism is not in the server's AUTH list, no TLS and <see cref="SmtpSessionOptions.AllowCleartextAuthentication"/> is off, or the provider returned an empty token (nothing was sent).</exception>
    /// <exception cref="SmtpException">Transport failure or timeout; the connection is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the connection is closed.</exception>
    public Task<SmtpReply> AuthOAuthBearerAsync(string userName, Func<CancellationToken, ValueTask<string>> accessTokenProvider, CancellationToken cancellationToken = default) =>
        RunMechanismAsync(Sasl().CreateOAuth(SmtpAuthenticationMechanisms.OAuthBearer, userName, accessTokenProvider), cancellationToken);

    private SaslPolicy Sasl() => new(Capabilities, IsEncrypted, _options.AllowCleartextAuthentication, _options.Tls.TargetHost ?? Host, (_channel.Connection?.RemoteEndPoint as IPEndPoint)?.Port);

    private void ThrowIfDisconnected()
    {
        ObjectDisposedException.ThrowIf(_channel.IsDisposed, this);
        if (State == SmtpSessionState.Disconnected)
        {
            throw new InvalidOperationException("The SMTP session is not connected; call ConnectAsync first.");
        }
    }

    /// <summary>No usable mechanism: nothing was sent; the connection is closed as after any <see cref="SmtpException"/>.</summary>
    private SmtpException NoCommonMechanism(SaslPolicy sasl, IReadOnlyList<string> supported) =>
        FailBetweenOperations(new SmtpException(SmtpErrorCode.AuthenticationError, sasl.NoCommonMechanism(supported)), "choosing an AUTH mechanism");

    /// <summary>One AUTH exchange (RFC 4954 §4), after RSET when a transaction may be open; disposes the mechanism.</summary>
    private async Task<SmtpReply> RunMechanismAsync(SaslMechanism mechanism, CancellationToken cancellationToken)
    {
        using var owned = mechanism;
        if (State != SmtpSessionState.Disconnected && Sasl().Refusal(mechanism) is { } refusal)
        {
            throw new InvalidOperationException(refusal);
        }

        using var operation = BeginOperation(cancellationToken);
        if (await ResetOpenTransactionAsync("AUTH").ConfigureAwait(false) is { } closing)
        {
            return closing;
        }

        LastAttemptedMechanism = mechanism.Name;
        using var telemetry = SessionTelemetry.StartAuth(this, mechanism.Name);
        var reply = await SaslExchange.RunAsync(_channel, mechanism, _options.ReceiveTimeout).ConfigureAwait(false);
        // Only 235 is success (RFC 4954 §4, §6); another 2yz (smtp-sink's 250 to every AUTH) authenticated nobody.
        AuthenticatedMechanism = reply.Code == 235 ? mechanism.Name : AuthenticatedMechanism;
        return CloseIfSessionRefused(telemetry?.Reply(reply) ?? reply);
    }

    private void ResetAuthState() => AuthenticatedMechanism = null;
}
