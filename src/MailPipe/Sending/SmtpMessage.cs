using System.Buffers;
using System.IO.Pipelines;
using MailPipe.Sending;

namespace MailPipe;

/// <summary>
/// A message to send: an envelope and content (the RFC 5322 message: headers, blank line, body). The content is
/// read once per send, streamed, never copied whole; a stream or reader is not disposed.
/// </summary>
/// <remarks>
/// To retry a send, send the same <see cref="SmtpMessage"/> again: in-memory content and a content writer
/// (<see cref="FromWriter"/>) are replayed whole, a seekable stream is read again from the position it had when the
/// message was made; a non-seekable stream or a pipe reader that an earlier send read from (or that another send
/// of it is sending at that moment) cannot be replayed, and
/// the send returns <see cref="SmtpSendOutcome.NotSent"/> with <see cref="SmtpErrorCode.ContentNotReplayable"/>
/// before anything is written (never part of a message).
/// </remarks>
public sealed partial class SmtpMessage
{
    private SmtpMessage(SmtpEnvelope envelope, ReadOnlySequence<byte>? bytes, Stream? stream, PipeReader? reader, Func<Stream, CancellationToken, Task>? writer = null)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        Envelope = envelope;
        Bytes = bytes;
        if (stream is not null)
        {
            // A seekable stream is replayed from here; any other is watched for its first read (see BeginSend).
            if (stream.CanSeek)
            {
                _source = stream;
                _extras = Extras.None with { StartPosition = stream.Position };
            }
            else
            {
                _source = new ReadTrackingStream(stream);
            }
        }
        else
        {
            _source = reader is null ? writer : new ReadTrackingPipeReader(reader);
        }
    }

    /// <summary>The envelope.</summary>
    public SmtpEnvelope Envelope { get; private set; }

    /// <summary>The content length in bytes when known (in-memory content, or a seekable stream from its position when the message was made: 0 when that was past its end), else <see langword="null"/>.</summary>
    public long? ContentLength => Bytes?.Length ?? (_source is Stream { CanSeek: true } s ? Math.Max(0, s.Length - StartPosition) : null);

    internal ReadOnlySequence<byte>? Bytes { get; }

    /// <summary>
    /// The size SIZE declares for text content at hand (RFC 1870 §3, <see cref="SmtpContentRules.DeclaredSize"/>): in-memory
    /// content, or a <see cref="MemoryStream"/> (measured on the bytes it holds, through the send's own view of it, <see cref="SeekableContent"/>, without its gate); else
    /// <see cref="ContentLength"/> (another stream's length as given: a bare CR or LF in it goes out one octet longer).
    /// </summary>
    internal long? TextSize()
    {
        if (Bytes is { } bytes)
        {
            return SmtpContentRules.DeclaredSize(bytes);
        }

        // A send reads a seekable stream through its own view (BeginSend); a memory stream's text is measured through it.
        return _source is SeekableContent { IsMemory: true } view ? view.WireSize() : ContentLength;
    }

    /// <summary>The stream to read (a non-seekable one behind its read-tracking wrapper).</summary>
    internal Stream? Stream => _source as Stream;

    /// <summary>The reader to read: the caller's (behind its read-tracking wrapper), or the current send's end of a content writer's pipe.</summary>
    internal PipeReader? Reader => _source as PipeReader;

    /// <summary>In the copy that one send of a <see cref="FromWriter"/> message reads: that send's run of the writer (released with the send's result).</summary>
    internal WriterContent? WriterRun => _source as WriterContent;

    /// <summary>The token of <see cref="WithCancellation"/>, checked before this message's transaction writes its first byte and while its content is written.</summary>
    internal CancellationToken CancellationToken => _extras.CancellationToken;

    /// <summary>
    /// A copy of this message whose transaction is skipped when <paramref name="cancellationToken"/> is cancelled
    /// before its first byte (MAIL, or the RSET before it) is written: its result is then
    /// <see cref="SmtpSendOutcome.NotSent"/> with an <see cref="OperationCanceledException"/> in
    /// <see cref="SmtpSendResult.Exception"/>, and the other transactions of the call go on untouched. While its
    /// content is being written (the token also cancels reading a content stream or pipe; in-memory content is checked
    /// between chunks and before its end), the message is never ended and its result is the same: with BDAT
    /// (RFC 3030) the transaction is reset with RSET between chunks and the connection kept, the other transactions
    /// untouched; with DATA the connection is closed (the only way to abandon a message without its final dot) and
    /// the transactions after it are <see cref="SmtpSendOutcome.NotSent"/> with a transient
    /// <see cref="SmtpErrorCode.ConnectionClosed"/>. Once its end of data is written the token is not looked at again
    /// (cancel the call's own token to stop waiting).
    /// </summary>
    /// <param name="cancellationToken">Cancels this message only.</param>
    /// <returns>The copy; the content source is shared, not copied.</returns>
    public SmtpMessage WithCancellation(CancellationToken cancellationToken)
    {
        // A member-wise copy, so that every content source (present and future) is carried over as it is.
        var copy = (SmtpMessage)MemberwiseClone();
        copy._extras = _extras with { CancellationToken = cancellationToken };
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
    /// <remarks>
    /// The position is recorded now: every send of this message, a retry included, reads from it, each with a position
    /// of its own (sends of the same stream at the same time each read the whole message, one read at a time). A
    /// non-seekable stream is read once: a later send of this message after one that read from it, or one that begins
    /// while another send of it is under way, returns
    /// <see cref="SmtpSendOutcome.NotSent"/> with <see cref="SmtpErrorCode.ContentNotReplayable"/> before MAIL.
    /// </remarks>
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
    /// <remarks>
    /// A pipe is read once: a later send of this message after one that read from it, or one that begins while another
    /// send of it is under way, returns
    /// <see cref="SmtpSendOutcome.NotSent"/> with <see cref="SmtpErrorCode.ContentNotReplayable"/> before MAIL. For
    /// content that can be produced again, use <see cref="FromWriter"/>.
    /// </remarks>
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
