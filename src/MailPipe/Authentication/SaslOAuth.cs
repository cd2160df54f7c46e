using System.Text;

namespace MailPipe.Authentication;

/// <summary>
/// OAuth 2.0 bearer-token mechanisms: XOAUTH2 (Google/Microsoft) and OAUTHBEARER (RFC 7628). The token comes from the
/// caller's provider at the start of each exchange, so a refreshed token is used every time. On failure the server
/// sends a 334 with an error JSON document (RFC 7628 §3.2.2); the client answers with an empty response (XOAUTH2) or a
/// single %x01 (OAUTHBEARER, RFC 7628 §3.2.3) and the server then sends its final 5yz, which is returned.
/// </summary>
internal sealed class SaslOAuth : SaslMechanism
{
    private static readonly byte[] OAuthBearerErrorAcknowledgement = [0x01];

    private readonly string _userName;
    private readonly Func<CancellationToken, ValueTask<string>> _tokenProvider;
    private readonly string? _host;
    private readonly int? _port;
    private bool _answered;

    /// <summary>Creates the mechanism.</summary>
    /// <param name="mechanism"><see cref="SmtpAuthenticationMechanisms.XOAuth2"/> or <see cref="SmtpAuthenticationMechanisms.OAuthBearer"/>.</param>
    /// <param name="userName">The mailbox the token is for.</param>
    /// <param name="tokenProvider">Returns a current access token.</param>
    /// <param name="host">OAUTHBEARER's <c>host=</c> (RFC 7628 §3.1), or <see langword="null"/>.</param>
    /// <param name="port">OAUTHBEARER's <c>port=</c>, or <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">The user name is empty or holds control characters or ','.</exception>
    public SaslOAuth(string mechanism, string userName, Func<CancellationToken, ValueTask<string>> tokenProvider, string? host = null, int? port = null)
        : base(mechanism)
    {
        ArgumentException.ThrowIfNullOrEmpty(userName);
        ArgumentNullException.ThrowIfNull(tokenProvider);
        if (userName.Any(char.IsControl))
        {
            throw new ArgumentException("The user name must not contain control characters.", nameof(userName));
        }

        _userName = userName;
        _tokenProvider = tokenProvider;
        _host = host;
        _port = port;
    }

    public override bool RevealsSecret => true;

    /// <exception cref="InvalidOperationException">The provider returned an empty token or one with control characters.</exception>
    public override async ValueTask<ReadOnlyMemory<byte>?> GetInitialResponseAsync(CancellationToken cancellationToken)
    {
        var token = await _tokenProvider(cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(token) || token.Any(char.IsControl))
        {
            throw new InvalidOperationException($"The access-token provider for AUTH {Name} returned an empty token or one with control characters; nothing was sent.");
        }

        if (Name == SmtpAuthenticationMechanisms.XOAuth2)
        {
            return Encoding.UTF8.GetBytes($"user={_userName}\u0001auth=Bearer {token}\u0001\u0001");
        }

        // RFC 7628 §3.1: gs2-header "n,a=<saslname>," then kvpairs separated by %x01.
        var saslName = _userName.Replace("=", "=3D", StringComparison.Ordinal).Replace(",", "=2C", StringComparison.Ordinal);
        var builder = new StringBuilder().Append("n,a=").Append(saslName).Append(",\u0001");
        if (_host is not null)
        {
            builder.Append("host=").Append(_host).Append('\u0001');
        }

        if (_port is not null)
        {
            builder.Append("port=").Append(_port.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('\u0001');
        }

        builder.Append("auth=Bearer ").Append(token).Append("\u0001\u0001");
        return Encoding.UTF8.GetBytes(builder.ToString());
    }

    /// <summary>The only challenge after the initial response is the error JSON: acknowledge it so that the server sends its final reply.</summary>
    public override ValueTask<ReadOnlyMemory<byte>?> RespondAsync(ReadOnlyMemory<byte> challenge, CancellationToken cancellationToken)
    {
        if (_answered)
        {
            return Result(null);
        }

        _answered = true;
        return Result(Name == SmtpAuthenticationMechanisms.XOAuth2 ? ReadOnlyMemory<byte>.Empty : OAuthBearerErrorAcknowledgement);
    }
}
