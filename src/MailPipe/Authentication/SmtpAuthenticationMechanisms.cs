namespace MailPipe;

/// <summary>
/// The SASL mechanism names MailPipe implements (RFC 4954 §4, IANA "SASL Mechanisms" registry) and the order in which
/// <see cref="AsyncSmtpSession.AuthenticateAsync(System.Net.NetworkCredential, SmtpAuthenticationOptions?, CancellationToken)"/>
/// prefers them.
/// </summary>
public static class SmtpAuthenticationMechanisms
{
    private static readonly System.Buffers.SearchValues<char> MechanismCharacters =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");

    /// <summary>PLAIN (RFC 4616): authorization identity, user name and password in one message. Sends the password itself: TLS required unless allowed.</summary>
    public const string Plain = "PLAIN";

    /// <summary>LOGIN (draft-murchison-sasl-login): user name and password in two base64 steps. Sends the password itself: TLS required unless allowed.</summary>
    public const string Login = "LOGIN";

    /// <summary>CRAM-MD5 (RFC 2195): HMAC-MD5 of the server's challenge keyed with the password.</summary>
    public const string CramMd5 = "CRAM-MD5";

    /// <summary>NTLM (MS-NLMP) through the platform's <see cref="System.Net.Security.NegotiateAuthentication"/>; on Linux it needs GSSAPI's gss-ntlmssp.</summary>
    public const string Ntlm = "NTLM";

    /// <summary>SCRAM-SHA-1 (RFC 5802): salted challenge-response with mutual authentication (the server's signature is checked).</summary>
    public const string ScramSha1 = "SCRAM-SHA-1";

    /// <summary>SCRAM-SHA-256 (RFC 7677): as SCRAM-SHA-1 with SHA-256.</summary>
    public const string ScramSha256 = "SCRAM-SHA-256";

    /// <summary>XOAUTH2 (Google/Microsoft): user name and OAuth 2.0 bearer token. Sends the token itself: TLS required unless allowed.</summary>
    public const string XOAuth2 = "XOAUTH2";

    /// <summary>OAUTHBEARER (RFC 7628): user name and OAuth 2.0 bearer token in a GS2 message. Sends the token itself: TLS required unless allowed.</summary>
    public const string OAuthBearer = "OAUTHBEARER";

    /// <summary>
    /// The automatic choice for a password, strongest first: SCRAM-SHA-256, SCRAM-SHA-1 (salted, mutual
    /// authentication), CRAM-MD5 (the password never crosses the wire), NTLM (idem, but needs platform support, and
    /// is skipped when the platform lacks it), PLAIN, LOGIN (the password itself; only over TLS unless
    /// <see cref="SmtpSessionOptions.AllowCleartextAuthentication"/>). The first one the server also advertises wins.
    /// </summary>
    public static IReadOnlyList<string> PasswordPreferenceOrder { get; } = [ScramSha256, ScramSha1, CramMd5, Ntlm, Plain, Login];

    /// <summary>The automatic choice for an OAuth 2.0 token: OAUTHBEARER (the standard, RFC 7628), then XOAUTH2.</summary>
    public static IReadOnlyList<string> TokenPreferenceOrder { get; } = [OAuthBearer, XOAuth2];

    /// <summary>Whether the mechanism hands the password or token itself to the server (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER).</summary>
    /// <param name="mechanism">A mechanism name, any case.</param>
    /// <returns><see langword="true"/> for PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER.</returns>
    public static bool RevealsSecret(string mechanism) =>
        mechanism.ToUpperInvariant() is Plain or Login or XOAuth2 or OAuthBearer;

    /// <summary>Checks a mechanism name against RFC 4422 §3.1 (1 to 20 of A-Z, 0-9, '-', '_'; lower case is upper-cased) and returns it upper case.</summary>
    /// <exception cref="ArgumentException">The name is empty, too long or holds another character.</exception>
    internal static string Normalize(string mechanism, string parameterName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(mechanism, parameterName);
        var upper = mechanism.ToUpperInvariant();
        if (upper.Length > 20 || upper.AsSpan().ContainsAnyExcept(MechanismCharacters))
        {
            throw new ArgumentException("A SASL mechanism name is 1 to 20 characters of A-Z, 0-9, '-' and '_' (RFC 4422 §3.1).", parameterName);
        }

        return upper;
    }
}
