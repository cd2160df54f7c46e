namespace MailPipe.Authentication;

/// <summary>
/// The client side of one SASL mechanism (RFC 4422) for one AUTH exchange (RFC 4954): an optional initial response,
/// then one response per 334 challenge. The session does the framing (base64, <c>*</c>, redaction); a mechanism sees
/// only decoded bytes. One instance serves one exchange.
/// </summary>
internal abstract class SaslMechanism : IDisposable
{
    protected SaslMechanism(string name) => Name = name;

    /// <summary>The registered mechanism name (RFC 4422 §3.1), upper case.</summary>
    public string Name { get; }

    /// <summary>Whether the exchange hands the secret itself to the server (password or bearer token): refused without TLS unless allowed.</summary>
    public virtual bool RevealsSecret => false;

    /// <summary>The initial response sent with AUTH (RFC 4954 §4), or <see langword="null"/> to wait for the first challenge.</summary>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/>: the mechanism cannot run here.</exception>
    public abstract ValueTask<ReadOnlyMemory<byte>?> GetInitialResponseAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Why the mechanism cancelled the exchange (see <see cref="Cancel"/>), or <see langword="null"/>: the exchange then
    /// throws an <see cref="SmtpErrorCode.AuthenticationError"/> with the server's answer to <c>*</c> instead of returning it.
    /// </summary>
    public string? CancelReason { get; private set; }

    /// <summary>
    /// The answer to one decoded 334 challenge, or <see langword="null"/> to cancel the exchange with <c>*</c> (with
    /// <see cref="CancelReason"/> set when the mechanism cannot answer: a malformed challenge).
    /// </summary>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/>: the server failed verification (a wrong SCRAM server signature); the connection is closed without <c>*</c>.</exception>
    public abstract ValueTask<ReadOnlyMemory<byte>?> RespondAsync(ReadOnlyMemory<byte> challenge, CancellationToken cancellationToken);

    /// <summary>Called on a 2yz reply: a message when the client must not accept it (SCRAM without a verified server signature), else <see langword="null"/>.</summary>
    public virtual string? CheckSuccess() => null;

    /// <inheritdoc/>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases native state and clears secrets.</summary>
    /// <param name="disposing">Whether called from <see cref="Dispose()"/>.</param>
    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>An <see cref="SmtpErrorCode.AuthenticationError"/> for a server that must not get another line (it failed verification): the connection is closed.</summary>
    protected SmtpException Failure(string message) => new(SmtpErrorCode.AuthenticationError, $"AUTH {Name}: {message}");

    /// <summary>
    /// The answer for a challenge the mechanism cannot answer (malformed, or a server error): <c>*</c>, which cancels the
    /// exchange (RFC 4954 §4); the session then throws <see cref="SmtpErrorCode.AuthenticationError"/> saying
    /// <paramref name="problem"/>, with the server's answer, and the connection stays open after a negative one.
    /// </summary>
    /// <param name="problem">What is wrong with the challenge, without a final period.</param>
    protected ValueTask<ReadOnlyMemory<byte>?> Cancel(string problem)
    {
        CancelReason = $"AUTH {Name}: {problem}";
        return Result(null);
    }

    /// <summary>A completed task with <paramref name="value"/>.</summary>
    protected static ValueTask<ReadOnlyMemory<byte>?> Result(ReadOnlyMemory<byte>? value) => ValueTask.FromResult(value);
}

/// <summary>A mechanism driven by the caller's delegate: the raw <c>AuthenticateAsync(mechanism, initialResponse, onChallenge)</c>.</summary>
internal sealed class SaslCallbackMechanism(
    string name,
    ReadOnlyMemory<byte>? initialResponse,
    Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask<ReadOnlyMemory<byte>?>> onChallenge) : SaslMechanism(name)
{
    public override bool RevealsSecret => SmtpAuthenticationMechanisms.RevealsSecret(Name);

    public override ValueTask<ReadOnlyMemory<byte>?> GetInitialResponseAsync(CancellationToken cancellationToken) => Result(initialResponse);

    public override ValueTask<ReadOnlyMemory<byte>?> RespondAsync(ReadOnlyMemory<byte> challenge, CancellationToken cancellationToken) =>
        onChallenge(challenge, cancellationToken);
}
