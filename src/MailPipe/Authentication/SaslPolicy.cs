using System.Net;
using System.Security.Cryptography;

namespace MailPipe.Authentication;

/// <summary>
/// Which mechanisms may run on one connection and which one the automatic choice takes (RFC 4954): the server's AUTH
/// list, the cleartext policy (PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER hand over the secret itself: not without TLS
/// unless allowed), the preference orders of <see cref="SmtpAuthenticationMechanisms"/>, and the mechanisms' settings
/// that come from the connection (the server name for NTLM's target and OAUTHBEARER's host, the port).
/// </summary>
/// <param name="capabilities">The server's last EHLO reply; <see cref="SmtpCapabilities.None"/> when unknown (no EHLO, or HELO).</param>
/// <param name="encrypted">Whether TLS is active.</param>
/// <param name="allowCleartext"><see cref="SmtpSessionOptions.AllowCleartextAuthentication"/>.</param>
/// <param name="serverName">The server's name (<see cref="SmtpTlsOptions.TargetHost"/>, else the connected host), or <see langword="null"/>.</param>
/// <param name="port">The server's port, or <see langword="null"/> on a caller's stream.</param>
internal sealed class SaslPolicy(SmtpCapabilities capabilities, bool encrypted, bool allowCleartext, string? serverName, int? port)
{
    /// <summary>The server's AUTH list.</summary>
    public IReadOnlyList<string> Offered => capabilities.AuthenticationMechanisms;

    /// <summary>Whether a mechanism may run on this connection under the cleartext policy.</summary>
    /// <param name="mechanism">The mechanism name.</param>
    /// <returns>Whether it may run.</returns>
    public bool MayRevealSecret(string mechanism) =>
        encrypted || allowCleartext || !SmtpAuthenticationMechanisms.RevealsSecret(mechanism);

    /// <summary>Why <paramref name="mechanism"/> must not be sent on this connection (not advertised, or the secret in cleartext), or <see langword="null"/>.</summary>
    /// <param name="mechanism">The mechanism.</param>
    /// <returns>The message of the <see cref="InvalidOperationException"/> to throw before anything is written, or <see langword="null"/>.</returns>
    public string? Refusal(SaslMechanism mechanism)
    {
        if (SaslAdvertisement.Refusal(mechanism, capabilities) is { } notOffered)
        {
            return notOffered;
        }

        return mechanism.RevealsSecret && !encrypted && !allowCleartext
            ? $"AUTH {mechanism.Name} would send the secret itself over a connection without TLS; nothing was sent. Start TLS first (StartTlsAsync or implicit TLS), or set SmtpSessionOptions.AllowCleartextAuthentication for a trusted network."
            : null;
    }

    /// <summary>
    /// The password mechanism to run first: the pinned one, else the first of
    /// <see cref="SmtpAuthenticationMechanisms.PasswordPreferenceOrder"/> that the server offers and may run here.
    /// </summary>
    /// <param name="credential">The credential.</param>
    /// <param name="options">The options.</param>
    /// <param name="pinned">Whether the caller named the mechanism (no fallback then).</param>
    /// <returns>The mechanism, or <see langword="null"/> when none both sides support may run here.</returns>
    /// <exception cref="ArgumentException">The pinned mechanism is not a password mechanism MailPipe implements.</exception>
    public SaslMechanism? ChoosePassword(NetworkCredential credential, SmtpAuthenticationOptions options, out bool pinned)
    {
        pinned = options.Mechanism is not null;
        if (options.Mechanism is not null)
        {
            var name = SmtpAuthenticationMechanisms.Normalize(options.Mechanism, nameof(options));
            if (!SmtpAuthenticationMechanisms.PasswordPreferenceOrder.Contains(name))
            {
                throw new ArgumentException($"AUTH {name} is not a password mechanism MailPipe implements; use the raw AuthenticateAsync(mechanism, initialResponse, onChallenge).", nameof(options));
            }

            return CreatePassword(name, credential, options);
        }

        foreach (var name in SmtpAuthenticationMechanisms.PasswordPreferenceOrder)
        {
            if (Offered.Contains(name) && UsablePassword(name, credential, options) is { } mechanism)
            {
                return mechanism;
            }
        }

        return null;
    }

    /// <summary>A password mechanism when it may run here (cleartext policy, platform), else <see langword="null"/>: the fallback's factory.</summary>
    /// <param name="name">The mechanism name.</param>
    /// <param name="credential">The credential.</param>
    /// <param name="options">The options.</param>
    /// <returns>The mechanism, or <see langword="null"/>.</returns>
    public SaslMechanism? UsablePassword(string name, NetworkCredential credential, SmtpAuthenticationOptions options) =>
        MayRevealSecret(name) ? SaslFallback.Usable(CreatePassword(name, credential, options)) : null;

    /// <summary>The token mechanism: the pinned one (checked), else OAUTHBEARER or XOAUTH2 as offered and allowed here.</summary>
    /// <param name="pinned">The caller's <see cref="SmtpAuthenticationOptions.Mechanism"/>, or <see langword="null"/>.</param>
    /// <param name="parameterName">The caller's parameter that holds the pinned mechanism.</param>
    /// <returns>The mechanism name, or <see langword="null"/> when the server offers neither (or neither may run here).</returns>
    /// <exception cref="ArgumentException">The pinned mechanism does not take an OAuth token.</exception>
    public string? ChooseToken(string? pinned, string parameterName)
    {
        if (pinned is null)
        {
            return SmtpAuthenticationMechanisms.TokenPreferenceOrder.FirstOrDefault(m => Offered.Contains(m) && MayRevealSecret(m));
        }

        var name = SmtpAuthenticationMechanisms.Normalize(pinned, parameterName);
        return SmtpAuthenticationMechanisms.TokenPreferenceOrder.Contains(name)
            ? name
            : throw new ArgumentException($"AUTH {name} does not take an OAuth token; use XOAUTH2 or OAUTHBEARER.", parameterName);
    }

    /// <summary>A password mechanism by name (one of <see cref="SmtpAuthenticationMechanisms.PasswordPreferenceOrder"/>).</summary>
    /// <param name="name">The mechanism name.</param>
    /// <param name="credential">The credential.</param>
    /// <param name="options">The options.</param>
    /// <returns>The mechanism.</returns>
    public SaslMechanism CreatePassword(string name, NetworkCredential credential, SmtpAuthenticationOptions options) => name switch
    {
        SmtpAuthenticationMechanisms.ScramSha256 => new SaslScram(HashAlgorithmName.SHA256, credential.UserName, credential.Password, options.AuthorizationId),
        SmtpAuthenticationMechanisms.ScramSha1 => new SaslScram(HashAlgorithmName.SHA1, credential.UserName, credential.Password, options.AuthorizationId),
        SmtpAuthenticationMechanisms.CramMd5 => new SaslCramMd5(credential.UserName, credential.Password),
        SmtpAuthenticationMechanisms.Ntlm => new SaslNtlm(credential, NtlmTargetName(options.NtlmTargetName)),
        SmtpAuthenticationMechanisms.Plain => new SaslPlain(credential.UserName, credential.Password, options.AuthorizationId),
        _ => new SaslLogin(credential.UserName, credential.Password),
    };

    /// <summary>NTLM's service principal name: the caller's, else <c>SMTPSVC/</c> and the server's name.</summary>
    /// <param name="targetName">The caller's name, or <see langword="null"/>.</param>
    /// <returns>The name.</returns>
    public string NtlmTargetName(string? targetName) => targetName ?? "SMTPSVC/" + (serverName ?? "localhost");

    /// <summary>XOAUTH2 or OAUTHBEARER with this connection's host and port.</summary>
    /// <param name="name">The mechanism name.</param>
    /// <param name="userName">The mailbox the token is for.</param>
    /// <param name="accessTokenProvider">The token provider.</param>
    /// <returns>The mechanism.</returns>
    public SaslOAuth CreateOAuth(string name, string userName, Func<CancellationToken, ValueTask<string>> accessTokenProvider) =>
        new(name, userName, accessTokenProvider, serverName, port);

    /// <summary>The message when no mechanism both sides support may run here (nothing was sent).</summary>
    /// <param name="supported">What MailPipe would use (a preference order).</param>
    /// <returns>The message of the <see cref="SmtpErrorCode.AuthenticationError"/>.</returns>
    public string NoCommonMechanism(IReadOnlyList<string> supported)
    {
        var cleartextNote = encrypted || allowCleartext
            ? string.Empty
            : " PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER are not used without TLS (start TLS first, or set SmtpSessionOptions.AllowCleartextAuthentication).";
        return Offered.Count == 0
            ? "The server does not advertise AUTH (send EHLO first; some servers offer AUTH only after STARTTLS). Nothing was sent; the connection was closed."
            : $"No AUTH mechanism that both sides support may run here: the server offers {string.Join(' ', Offered)}; MailPipe would use {string.Join(' ', supported)}.{cleartextNote} Nothing was sent; the connection was closed.";
    }
}
