using System.Buffers;
using System.IO.Pipelines;

namespace MailPipe;

/// <summary>The content overloads of <see cref="ISmtpSender.SendAsync(SmtpMessage, CancellationToken)"/>.</summary>
public static class SmtpSenderExtensions
{
    /// <summary>Sends one message held in memory (replayable: it may be retried once on a fresh connection when nothing was delivered).</summary>
    /// <param name="sender">The sender.</param>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The message (RFC 5322 headers, blank line, body).</param>
    /// <param name="cancellationToken">Cancels this message (see <see cref="ISmtpSender.SendAsync(SmtpMessage, CancellationToken)"/>).</param>
    /// <returns>The result.</returns>
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
    public static Task<SmtpSendResult> SendAsync(this ISmtpSender sender, SmtpEnvelope envelope, ReadOnlySequence<byte> content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return sender.SendAsync(SmtpMessage.FromSequence(envelope, content), cancellationToken);
    }

    /// <summary>Sends one message read from a stream to its end; retried on a fresh connection only when not a byte of it was read, or when the stream can seek back.</summary>
    /// <param name="sender">The sender.</param>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">A readable stream; not disposed.</param>
    /// <param name="cancellationToken">Cancels this message.</param>
    /// <returns>The result.</returns>
    public static Task<SmtpSendResult> SendAsync(this ISmtpSender sender, SmtpEnvelope envelope, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return sender.SendAsync(SmtpMessage.FromStream(envelope, content), cancellationToken);
    }

    /// <summary>Sends one message read from a pipe until it completes; retried on a fresh connection only when not a byte of it was read.</summary>
    /// <param name="sender">The sender.</param>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The reader; advanced, not completed.</param>
    /// <param name="cancellationToken">Cancels this message.</param>
    /// <returns>The result.</returns>
    public static Task<SmtpSendResult> SendAsync(this ISmtpSender sender, SmtpEnvelope envelope, PipeReader content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return sender.SendAsync(SmtpMessage.FromPipeReader(envelope, content), cancellationToken);
    }
}
