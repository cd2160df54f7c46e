using System.Buffers;
using System.IO.Pipelines;

namespace MailPipe;

/// <summary>
/// A message to send: an envelope and content (the RFC 5322 message: headers, blank line, body). The content is
/// read once, streamed, never copied whole; a stream or reader is not disposed.
/// </summary>
public sealed class SmtpMessage
{
    private SmtpMessage(SmtpEnvelope envelope, ReadOnlySequence<byte>? bytes, Stream? stream, PipeReader? reader)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        Envelope = envelope;
        Bytes = bytes;
        Stream = stream;
        Reader = reader;
    }

    /// <summary>The envelope.</summary>
    public SmtpEnvelope Envelope { get; }

    /// <summary>The content length in bytes when known (in-memory content, or a seekable stream from its position), else <see langword="null"/>.</summary>
    public long? ContentLength => Bytes?.Length ?? (Stream is { CanSeek: true } s ? s.Length - s.Position : null);

    internal ReadOnlySequence<byte>? Bytes { get; }

    internal Stream? Stream { get; }

    internal PipeReader? Reader { get; }

    /// <summary>The token of <see cref="WithCancellation"/>, checked before this message's transaction writes its first byte.</summary>
    internal CancellationToken CancellationToken { get; private set; }

    /// <summary>
    /// A copy of this message whose transaction is skipped when <paramref name="cancellationToken"/> is cancelled
    /// before its first byte (MAIL, or the RSET before it) is written: its result is then
    /// <see cref="SmtpSendOutcome.NotSent"/> with an <see cref="OperationCanceledException"/> in
    /// <see cref="SmtpSendResult.Exception"/>, and the other transactions of the call go on untouched. Once the
    /// transaction has started the token is not looked at again (cancel the call's own token to stop it).
    /// </summary>
    /// <param name="cancellationToken">Cancels this message only.</param>
    /// <returns>The copy; the content source is shared, not copied.</returns>
    public SmtpMessage WithCancellation(CancellationToken cancellationToken)
    {
        // A member-wise copy, so that every content source (present and future) is carried over as it is.
        var copy = (SmtpMessage)MemberwiseClone();
        copy.CancellationToken = cancellationToken;
        return copy;
    }

    /// <summary>A message whose content is in memory.</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The message bytes.</param>
    /// <returns>The message.</returns>
    public static SmtpMessage FromBytes(SmtpEnvelope envelope, ReadOnlyMemory<byte> content) => new(envelope, new ReadOnlySequence<byte>(content), null, null);

    /// <summary>A message whose content is in a (possibly multi-segment) sequence.</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The message bytes.</param>
    /// <returns>The message.</returns>
    public static SmtpMessage FromSequence(SmtpEnvelope envelope, ReadOnlySequence<byte> content) => new(envelope, content, null, null);

    /// <summary>A message read from a stream, from its current position to its end.</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">A readable stream; not disposed.</param>
    /// <returns>The message.</returns>
    /// <exception cref="ArgumentException">The stream cannot be read.</exception>
    public static SmtpMessage FromStream(SmtpEnvelope envelope, Stream content)
    {
        ArgumentNullException.ThrowIfNull(content);
        return content.CanRead ? new(envelope, null, content, null) : throw new ArgumentException("The content stream must be readable.", nameof(content));
    }

    /// <summary>A message read from a pipe until it completes.</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The reader; advanced, not completed.</param>
    /// <returns>The message.</returns>
    public static SmtpMessage FromPipeReader(SmtpEnvelope envelope, PipeReader content)
    {
        ArgumentNullException.ThrowIfNull(content);
        return new(envelope, null, null, content);
    }

    /// <summary>Whether in-memory content holds a byte outside 7-bit ASCII (null when not in memory).</summary>
    internal bool? HasEightBitContent
    {
        get
        {
            if (Bytes is not { } bytes)
            {
                return null;
            }

            foreach (var segment in bytes)
            {
                if (segment.Span.IndexOfAnyExceptInRange((byte)0, (byte)0x7F) >= 0)
                {
                    return true;
                }
            }

            return false;
        }
    }
}
