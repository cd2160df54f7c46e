using System.Buffers;
using System.IO.Pipelines;

namespace MailPipe;

/// <summary>The content overloads of <see cref="ISmtpSender.SendAsync(SmtpMessage, CancellationToken)"/>.</summary>
public static class SmtpSenderExtensions
{
    /// <summary>Sends one message held in memory (replayable: it may be sent again on a fresh connection when nothing was delivered, see <see cref="SmtpSenderOptions.RetryOnFreshConnection"/>).</summary>
    /// <param name="sender">The sender.</param>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The message (RFC 5322 headers, blank line, body).</param>
    /// <param name="cancellationToken">Cancels this message (see <see cref="ISmtpSender.SendAsync(SmtpMessage, CancellationToken)"/>).</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sender"/> or <paramref name="envelope"/> is null.</exception>
    /// <exception cref="ArgumentException">The envelope cannot be written (nothing was sent).</exception>
    /// <exception cref="ObjectDisposedException">The sender is disposed, or was disposed while the message waited.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (an <see cref="SmtpOutcomeUnknownException"/> when its end of data was written and no reply decided it).</exception>
    public static Task<SmtpSendResult> SendAsync(this ISmtpSender sender, SmtpEnvelope envelope, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return sender.SendAsync(SmtpMessage.FromBytes(envelope, content), cancellationToken);
    }

    /// <summary>Sends one message held in a sequence (replayable).</summary>
    /// <param name="sender">The sender.</param>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The message bytes.</param>
    /// <param name="cancellationToken">Cancels this message.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sender"/> or <paramref name="envelope"/> is null.</exception>
    /// <exception cref="ArgumentException">The envelope cannot be written (nothing was sent).</exception>
    /// <exception cref="ObjectDisposedException">The sender is disposed, or was disposed while the message waited.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (an <see cref="SmtpOutcomeUnknownException"/> when its end of data was written and no reply decided it).</exception>
    public static Task<SmtpSendResult> SendAsync(this ISmtpSender sender, SmtpEnvelope envelope, ReadOnlySequence<byte> content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return sender.SendAsync(SmtpMessage.FromSequence(envelope, content), cancellationToken);
    }

    /// <summary>Sends one message read from a stream to its end; retried on a fresh connection only when not a byte of it was read, or when the stream can seek back.</summary>
    /// <remarks>
    /// For a retry of your own (a policy around this call), make the message once with
    /// <see cref="SmtpMessage.FromStream"/> and send that same <see cref="SmtpMessage"/> again: it seeks the stream back
    /// to where the message starts, or returns <see cref="SmtpErrorCode.ContentNotReplayable"/> for a non-seekable stream
    /// already read. Calling this overload again with the same stream sends what is left of it.
    /// </remarks>
    /// <param name="sender">The sender.</param>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">A readable stream; not disposed.</param>
    /// <param name="cancellationToken">Cancels this message.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sender"/>, <paramref name="envelope"/> or <paramref name="content"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="content"/> cannot be read, or the envelope cannot be written (nothing was sent).</exception>
    /// <exception cref="ObjectDisposedException">The sender is disposed, or was disposed while the message waited.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (an <see cref="SmtpOutcomeUnknownException"/> when its end of data was written and no reply decided it).</exception>
    public static Task<SmtpSendResult> SendAsync(this ISmtpSender sender, SmtpEnvelope envelope, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return sender.SendAsync(SmtpMessage.FromStream(envelope, content), cancellationToken);
    }

    /// <summary>Sends one message read from a pipe until it completes; retried on a fresh connection only when not a byte of it was read.</summary>
    /// <remarks>
    /// A pipe cannot be replayed: for a retry of your own, make the message once with
    /// <see cref="SmtpMessage.FromPipeReader"/> and send that same <see cref="SmtpMessage"/> again (it returns
    /// <see cref="SmtpErrorCode.ContentNotReplayable"/> once the pipe was read), or use <see cref="SmtpMessage.FromWriter"/>.
    /// </remarks>
    /// <param name="sender">The sender.</param>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The reader; advanced, not completed.</param>
    /// <param name="cancellationToken">Cancels this message.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sender"/>, <paramref name="envelope"/> or <paramref name="content"/> is null.</exception>
    /// <exception cref="ArgumentException">The envelope cannot be written (nothing was sent).</exception>
    /// <exception cref="ObjectDisposedException">The sender is disposed, or was disposed while the message waited.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (an <see cref="SmtpOutcomeUnknownException"/> when its end of data was written and no reply decided it).</exception>
    public static Task<SmtpSendResult> SendAsync(this ISmtpSender sender, SmtpEnvelope envelope, PipeReader content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return sender.SendAsync(SmtpMessage.FromPipeReader(envelope, content), cancellationToken);
    }
}
