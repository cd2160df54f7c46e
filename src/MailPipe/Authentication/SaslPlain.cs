using System.Security.Cryptography;
using System.Text;

namespace MailPipe.Authentication;

/// <summary>PLAIN (RFC 4616 §2): <c>[authzid] NUL authcid NUL passwd</c>, UTF-8, sent as the initial response.</summary>
internal sealed class SaslPlain : SaslMechanism
{
    private readonly byte[] _message;
    private bool _answered;

    /// <exception cref="ArgumentException">A value is empty (user name) or holds NUL (RFC 4616 §2).</exception>
    public SaslPlain(string userName, string password, string? authorizationId)
        : base(SmtpAuthenticationMechanisms.Plain)
    {
        ArgumentException.ThrowIfNullOrEmpty(userName);
        ArgumentNullException.ThrowIfNull(password);
        SaslIdentity.Validate(userName, SmtpAuthenticationMechanisms.Plain, nameof(userName));
        SaslIdentity.Validate(authorizationId, SmtpAuthenticationMechanisms.Plain, nameof(authorizationId));
        if (userName.Contains('\0', StringComparison.Ordinal) || password.Contains('\0', StringComparison.Ordinal)
            || (authorizationId?.Contains('\0', StringComparison.Ordinal) ?? false))
        {
            throw new ArgumentException("PLAIN credentials must not contain NUL (RFC 4616 §2).", nameof(userName));
        }

        _message = Encoding.UTF8.GetBytes($"{authorizationId}\0{userName}\0{password}");
    }

    public override bool RevealsSecret => true;

    public override ValueTask<ReadOnlyMemory<byte>?> GetInitialResponseAsync(CancellationToken cancellationToken)
    {
        _answered = true;
        return Result(_message);
    }

    /// <summary>A server that ignored the initial response asks with an empty challenge: answer once more; anything else is cancelled.</summary>
    public override ValueTask<ReadOnlyMemory<byte>?> RespondAsync(ReadOnlyMemory<byte> challenge, CancellationToken cancellationToken)
    {
        if (challenge.IsEmpty && _answered)
        {
            _answered = false;
            return Result(_message);
        }

        return Result(null);
    }

    protected override void Dispose(bool disposing)
    {
        CryptographicOperations.ZeroMemory(_message);
        base.Dispose(disposing);
    }
}

/// <summary>LOGIN (draft-murchison-sasl-login-00): the first challenge gets the user name, the second the password.</summary>
internal sealed class SaslLogin : SaslMechanism
{
    private readonly byte[] _userName;
    private readonly byte[] _password;
    private int _step;

    /// <exception cref="ArgumentException">The user name is empty.</exception>
    public SaslLogin(string userName, string password)
        : base(SmtpAuthenticationMechanisms.Login)
    {
        ArgumentException.ThrowIfNullOrEmpty(userName);
        ArgumentNullException.ThrowIfNull(password);
        SaslIdentity.Validate(userName, SmtpAuthenticationMechanisms.Login, nameof(userName));
        _userName = Encoding.UTF8.GetBytes(userName);
        _password = Encoding.UTF8.GetBytes(password);
    }

    public override bool RevealsSecret => true;

    public override ValueTask<ReadOnlyMemory<byte>?> GetInitialResponseAsync(CancellationToken cancellationToken) => Result(null);

    /// <summary>By step, not by prompt text: servers word the prompts differently ("Username:", "User Name\0").</summary>
    public override ValueTask<ReadOnlyMemory<byte>?> RespondAsync(ReadOnlyMemory<byte> challenge, CancellationToken cancellationToken) =>
        _step++ switch
        {
            0 => Result(_userName),
            1 => Result(_password),
            _ => Result(null),
        };

    protected override void Dispose(bool disposing)
    {
        CryptographicOperations.ZeroMemory(_password);
        base.Dispose(disposing);
    }
}

/// <summary>CRAM-MD5 (RFC 2195 §2): <c>user SP hex(HMAC-MD5(password, challenge))</c>, lower-case hex.</summary>
internal sealed class SaslCramMd5 : SaslMechanism
{
    private readonly string _userName;
    private readonly byte[] _password;
    private bool _answered;

    /// <exception cref="ArgumentException">The user name is empty or holds a space or control character.</exception>
    public SaslCramMd5(string userName, string password)
        : base(SmtpAuthenticationMechanisms.CramMd5)
    {
        ArgumentException.ThrowIfNullOrEmpty(userName);
        ArgumentNullException.ThrowIfNull(password);
        if (userName.Any(static c => c == ' ' || char.IsControl(c)))
        {
            throw new ArgumentException("A CRAM-MD5 user name must not contain spaces or control characters (RFC 2195 §2).", nameof(userName));
        }

        _userName = userName;
        _password = Encoding.UTF8.GetBytes(password);
    }

    public override ValueTask<ReadOnlyMemory<byte>?> GetInitialResponseAsync(CancellationToken cancellationToken) => Result(null);

    public override ValueTask<ReadOnlyMemory<byte>?> RespondAsync(ReadOnlyMemory<byte> challenge, CancellationToken cancellationToken)
    {
        if (_answered)
        {
            return Result(null);
        }

        if (challenge.IsEmpty)
        {
            return Cancel("the server sent an empty challenge, which has nothing to sign (RFC 2195 §2)");
        }

        _answered = true;
        return Result(Compute(_userName, _password, challenge.Span));
    }

    /// <summary>The response for one challenge (also used by the RFC 2195 test vector).</summary>
    internal static byte[] Compute(string userName, ReadOnlySpan<byte> password, ReadOnlySpan<byte> challenge)
    {
#pragma warning disable CA5351 // CRAM-MD5 is defined on HMAC-MD5 (RFC 2195); it is offered only when the server asks for it.
        var digest = HMACMD5.HashData(password, challenge);
#pragma warning restore CA5351
        return Encoding.UTF8.GetBytes(userName + " " + Convert.ToHexStringLower(digest));
    }

    protected override void Dispose(bool disposing)
    {
        CryptographicOperations.ZeroMemory(_password);
        base.Dispose(disposing);
    }
}
