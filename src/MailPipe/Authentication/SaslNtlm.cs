using System.Net;
using System.Net.Security;

namespace MailPipe.Authentication;

/// <summary>
/// NTLM (MS-NLMP; the AUTH NTLM exchange of MS-SMTPNTLM) through the platform's <see cref="NegotiateAuthentication"/>
/// with <c>Package = "NTLM"</c>. The type-1 (negotiate) message is the initial response, the server's 334 carries the
/// type-2 (challenge), the answer is the type-3 (authenticate). On Linux .NET reaches NTLM through GSSAPI, which needs
/// Debian's <c>gss-ntlmssp</c>; without it the platform answers <see cref="NegotiateAuthenticationStatusCode.Unsupported"/>.
/// </summary>
internal sealed class SaslNtlm : SaslMechanism
{
    /// <summary>The explanation when the platform cannot do NTLM.</summary>
    internal static string Unavailable(string detail) =>
        $"NTLM is not available on this platform (NegotiateAuthentication: {detail}). On Linux, .NET does NTLM through GSSAPI, which needs the gss-ntlmssp mechanism: on Debian/Ubuntu 'apt-get install gss-ntlmssp'.";

    private readonly NegotiateAuthentication _authentication;
    private byte[]? _negotiate;
    private string? _unavailable;
    private bool _started;
    private bool _answered;

    /// <summary>Creates the platform context (nothing is computed yet).</summary>
    /// <param name="credential">User name, password and (optional) domain; an empty domain suits Cyrus SASL.</param>
    /// <param name="targetName">The service principal name, such as <c>SMTPSVC/mail.example.org</c>; must not be empty (GSSAPI refuses it).</param>
    /// <exception cref="ArgumentException">The target name is empty or the credential has no user name.</exception>
    public SaslNtlm(NetworkCredential credential, string targetName)
        : base(SmtpAuthenticationMechanisms.Ntlm)
    {
        ArgumentNullException.ThrowIfNull(credential);
        ArgumentException.ThrowIfNullOrEmpty(credential.UserName, nameof(credential));
        SaslIdentity.Validate(credential.UserName, SmtpAuthenticationMechanisms.Ntlm, nameof(credential));
        SaslIdentity.Validate(credential.Domain, SmtpAuthenticationMechanisms.Ntlm, nameof(credential));
        ArgumentException.ThrowIfNullOrWhiteSpace(targetName);
        _authentication = new NegotiateAuthentication(new NegotiateAuthenticationClientOptions
        {
            Package = "NTLM",
            Credential = credential,
            TargetName = targetName,
            RequiredProtectionLevel = ProtectionLevel.None,
        });
    }

    /// <summary>Computes the type-1 message once; <see langword="false"/> when the platform cannot do NTLM (the automatic choice then skips it).</summary>
    public bool TryStart()
    {
        if (!_started)
        {
            _started = true;
            try
            {
                _negotiate = _authentication.GetOutgoingBlob(ReadOnlySpan<byte>.Empty, out var status);
                if (_negotiate is null || status is not (NegotiateAuthenticationStatusCode.ContinueNeeded or NegotiateAuthenticationStatusCode.Completed))
                {
                    _unavailable = Unavailable(status.ToString());
                    _negotiate = null;
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // GssApiException (an internal type) or PlatformNotSupportedException: the mechanism is missing or broken.
                _unavailable = Unavailable(ex.GetType().Name + ": " + ex.Message);
            }
        }

        return _negotiate is not null;
    }

    public override ValueTask<ReadOnlyMemory<byte>?> GetInitialResponseAsync(CancellationToken cancellationToken) =>
        TryStart() ? Result(_negotiate) : throw new SmtpException(SmtpErrorCode.AuthenticationError, "AUTH NTLM: " + _unavailable);

    public override ValueTask<ReadOnlyMemory<byte>?> RespondAsync(ReadOnlyMemory<byte> challenge, CancellationToken cancellationToken)
    {
        if (_answered)
        {
            return Result(null);
        }

        if (challenge.IsEmpty)
        {
            // A server that did not take the initial response asks for the type-1 message now.
            return Result(_negotiate);
        }

        _answered = true;
        byte[]? authenticate;
        NegotiateAuthenticationStatusCode status;
        try
        {
            authenticate = _authentication.GetOutgoingBlob(challenge.Span, out status);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return Cancel($"the platform could not answer the server's challenge ({ex.GetType().Name}: {ex.Message})");
        }

        if (authenticate is null || status is not (NegotiateAuthenticationStatusCode.Completed or NegotiateAuthenticationStatusCode.ContinueNeeded))
        {
            return Cancel($"the platform could not answer the server's challenge ({status})");
        }

        return Result(authenticate);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _authentication.Dispose();
        }

        base.Dispose(disposing);
    }
}
