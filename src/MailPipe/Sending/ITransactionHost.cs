using MailPipe.Transmission;

namespace MailPipe.Sending;

/// <summary>
/// What the transaction sender needs of the session above it: the channel it writes to and reads from, the
/// capabilities and TLS state that decide MAIL parameters, the operation guard (the session's state checks), and the
/// telemetry hook of a starting transaction. The sender holds no reply queue, token source or timer of its own.
/// </summary>
internal interface ITransactionHost
{
    /// <summary>The transmission channel (THE queue of expected replies, deadlines, the one break).</summary>
    SmtpChannel Channel { get; }

    /// <summary>The server's capabilities (from EHLO).</summary>
    SmtpCapabilities Capabilities { get; }

    /// <summary>Whether the connection is encrypted (REQUIRETLS may only be asked for then).</summary>
    bool IsTls { get; }

    /// <summary>Starts one send operation (guard, state checks, the caller's token, deadlines); disposing the scope ends it.</summary>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    OperationScope BeginSend(CancellationToken cancellationToken);

    /// <summary>A transaction starts (its MAIL is about to be prepared): telemetry.</summary>
    void TransactionStarting(MailTransaction tx, bool chunking);
}
