namespace MailPipe;

/// <summary>
/// Sends mail through a shared, thread-safe pool of SMTP connections: the abstraction of <see cref="SmtpSender"/>,
/// for applications' tests and decorators (retry, telemetry). Meant to be a singleton, like <c>HttpClient</c>.
/// </summary>
/// <remarks>
/// <para><b>Failure model.</b> A server's refusal, a lost connection, a failed connect, TLS handshake or AUTH, and an
/// acquire timeout are never thrown: they are the returned <see cref="SmtpSendResult"/> (<see cref="SmtpSendOutcome.NotSent"/>
/// with an <see cref="SmtpException"/> carrying <see cref="SmtpException.ErrorCode"/> and <see cref="SmtpException.IsTransient"/>,
/// or <see cref="SmtpSendOutcome.Unknown"/> when the end of data was written and no reply came). Only bad arguments
/// (<see cref="ArgumentException"/>), disposal (<see cref="ObjectDisposedException"/>) and the caller's cancellation
/// (<see cref="OperationCanceledException"/>) throw.</para>
/// <para>The content overloads (<c>SendAsync(envelope, bytes)</c> and others) are extension methods of
/// <see cref="SmtpSenderExtensions"/>, so that a fake implements two methods.</para>
/// <para><b>Disposal.</b> The interface is <see cref="IAsyncDisposable"/> only, so that a fake or a decorator needs no
/// synchronous <c>Dispose</c>; the senders MailPipe makes (<see cref="SmtpSender"/>, MailPipe.Resilience's
/// <c>ResilientSmtpSender</c>) are also <see cref="IDisposable"/>, for <c>using var</c> and for a dependency injection
/// container disposed synchronously (which throws for a service that is only <see cref="IAsyncDisposable"/>). Their
/// <c>Dispose</c> starts the disposal without waiting for it (no blocking on asynchronous work); <c>DisposeAsync</c>,
/// also after <c>Dispose</c>, completes when it is over. A decorator registered in such a container should be
/// <see cref="IDisposable"/> too, by the same model.</para>
/// </remarks>
public interface ISmtpSender : IAsyncDisposable
{
    /// <summary>Sends one message as one mail transaction (RFC 5321 §3.3) on a pooled connection.</summary>
    /// <param name="message">The envelope and content.</param>
    /// <param name="cancellationToken">
    /// Cancels this message only. Before its first byte is written the message is dropped and
    /// <see cref="OperationCanceledException"/> is thrown. While its content is being written it is never ended and
    /// <see cref="OperationCanceledException"/> is thrown: with BDAT its transaction is reset with RSET between chunks
    /// and the connection kept; with DATA the connection is closed (never the final dot), the other messages on it whose
    /// end of data was written are <see cref="SmtpSendOutcome.Unknown"/> and those not yet written are sent on another
    /// connection. After its end of data was written the outcome is unknown and an
    /// <see cref="SmtpOutcomeUnknownException"/> (an <see cref="OperationCanceledException"/>) whose <c>Result</c> has <see cref="SmtpSendOutcome.Unknown"/> is thrown.
    /// </param>
    /// <returns>The result: which recipients were accepted, and whether the message was accepted, refused, not sent or of unknown outcome.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="message"/> is null.</exception>
    /// <exception cref="ArgumentException">The envelope cannot be written (nothing was sent).</exception>
    /// <exception cref="ObjectDisposedException">The sender is disposed, or was disposed while the message waited.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends many messages, pipelined on pooled connections; each message is its own mail transaction with its own
    /// result. A message that could not be sent does not stop the others.
    /// </summary>
    /// <param name="messages">The messages; each is checked before anything is sent.</param>
    /// <param name="cancellationToken">Cancels the messages not yet written (see <see cref="SendAsync(SmtpMessage, CancellationToken)"/>).</param>
    /// <returns>One result per message, in order.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="messages"/> or one of them is null.</exception>
    /// <exception cref="ArgumentException">An envelope cannot be written (nothing was sent).</exception>
    /// <exception cref="ObjectDisposedException">The sender was disposed before the call (disposed while the batch is
    /// under way, nothing is thrown: the results are returned, the messages it dropped <see cref="SmtpSendOutcome.NotSent"/>
    /// with this exception in their results).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled: an
    /// <see cref="SmtpBatchCanceledException"/> whose <c>Results</c> has one result per message (decided, Unknown, or NotSent).</exception>
    Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default);
}
