using System.IO.Pipelines;
using MailPipe.Sending;

namespace MailPipe;

/// <summary>Content that can be sent again (issue #12): the start of a seekable stream, the first read of a one-pass source, a content writer run once per send.</summary>
public sealed partial class SmtpMessage
{
    /// <summary>
    /// The content source when it is not in memory, one field for all kinds (a message has one, and most messages are
    /// in memory, so that the object stays small): the caller's stream when seekable, else its read-tracking wrapper; the
    /// caller's pipe reader behind its read-tracking wrapper; the content writer of <see cref="FromWriter"/> (replaced,
    /// in a send's copy, by that send's run, a <see cref="WriterContent"/>); or the selector of <see cref="ForConnection"/>.
    /// Copies share it, and with it whether a one-pass source was read (the wrappers keep that).
    /// </summary>
    private object? _source;

    /// <summary>What few messages carry (a seekable stream's start, <see cref="WithCancellation"/>'s token, the telemetry parent): shared by copies, replaced (never changed) by one that sets a value.</summary>
    private Extras _extras = Extras.None;

    /// <summary>Where a seekable stream stood when the message was made (every send seeks back to it); -1 for any other content.</summary>
    private long StartPosition => _extras.StartPosition;

    /// <summary>The content writer of <see cref="FromWriter"/> (null in a send's copy, which has its run instead).</summary>
    private Func<Stream, CancellationToken, Task>? Writer => _source as Func<Stream, CancellationToken, Task>;

    /// <summary>The selector of <see cref="ForConnection"/>.</summary>
    private Func<SmtpCapabilities, SmtpMessage>? Selector => _source as Func<SmtpCapabilities, SmtpMessage>;

    /// <summary>Whether a send read from a one-pass source (a non-seekable stream or a pipe reader).</summary>
    private bool OneShotRead => _source is ReadTrackingStream { WasRead: true } or ReadTrackingPipeReader { WasRead: true };

    /// <summary>This message with the per-send settings <paramref name="sent"/> carries (its token, its telemetry parent), those it has otherwise.</summary>
    private SmtpMessage WithSendSettingsOf(SmtpMessage sent)
    {
        var token = sent._extras.CancellationToken.CanBeCanceled ? sent._extras.CancellationToken : _extras.CancellationToken;
        var parent = sent._extras.TelemetryParent ?? _extras.TelemetryParent;
        if (token == _extras.CancellationToken && parent == _extras.TelemetryParent)
        {
            return this;
        }

        var copy = (SmtpMessage)MemberwiseClone();
        copy._extras = _extras with { CancellationToken = token, TelemetryParent = parent };
        return copy;
    }

    /// <summary>Copies share an instance: <see cref="StartPosition"/>, a content writer's stopped runs, and the per-send settings of <see cref="WithCancellation"/> and the pooled sender's telemetry parent.</summary>
    private sealed record Extras(long StartPosition, System.Diagnostics.ActivityContext? TelemetryParent, CancellationToken CancellationToken)
    {
        public static readonly Extras None = new(-1, null, default);

        /// <summary>The runs of a <see cref="FromWriter"/> message's writer that outlived their sends (one tracker for the message and its copies).</summary>
        public WriterContent.StoppedRuns? StoppedRuns { get; init; }
    }

    /// <summary>
    /// A message whose content is written by <paramref name="writer"/> while it is sent (a push source, for content
    /// produced on the fly such as a MIME serializer): the writer is called, once per send, with a stream whose bytes
    /// go to the server as they are written. The content is never held whole: a write waits while about 256 KiB are
    /// written but not yet sent.
    /// </summary>
    /// <remarks>
    /// <para>
    /// The writer is called only once the server is ready for the content (after 354 to DATA, or with the first BDAT
    /// chunk), on the sending flow, with the send's cancellation token. The stream accepts <c>WriteAsync</c> (and
    /// <c>FlushAsync</c>); a synchronous <c>Write</c> throws <see cref="NotSupportedException"/>, because it would
    /// block a thread while the server reads. The content ends when the writer's task completes: the stream need not
    /// be disposed.
    /// </para>
    /// <para>
    /// An exception from the writer is a content failure, as for a stream that fails: the message is never ended, the
    /// send returns <see cref="SmtpSendOutcome.NotSent"/> with <see cref="SmtpErrorCode.ContentReadFailed"/> and the
    /// writer's exception, as it threw it, as the <see cref="SmtpException"/>'s <see cref="Exception.InnerException"/>
    /// (cancellation by the send's token stays a cancellation). When the send stops reading
    /// early (the connection was lost, or the server refused the message), the stream's writes throw
    /// <see cref="IOException"/>. Each send of this message, a retry included, calls the writer again, so the content
    /// is replayed whole: a call that a stopped send left running (the writer had not come to its next write) ends
    /// before the next send's call begins, so that a writer that starts each call from shared state (a stream it
    /// seeks back to its start) never runs twice at once for a retry. Send one message object on one session at a time.
    /// </para>
    /// </remarks>
    /// <param name="envelope">The envelope.</param>
    /// <param name="writer">Writes the whole message (headers, blank line, body) into the stream it is given.</param>
    /// <returns>The message.</returns>
    public static SmtpMessage FromWriter(SmtpEnvelope envelope, Func<Stream, CancellationToken, Task> writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        return new(envelope, null, null, null, writer) { _extras = Extras.None with { StoppedRuns = new() } };
    }

    /// <summary>
    /// A message made for the connection that carries it: <paramref name="select"/> is called before MAIL of every
    /// send, a retry included, with the capabilities that the server announced on that connection (its EHLO reply;
    /// without CHUNKING when the session's options do not use it, see <see cref="SmtpSessionOptions.UseChunking"/>),
    /// and returns the message to send there: for example its body type (<c>BODY=8BITMIME</c>, <c>BINARYMIME</c>, or
    /// content prepared for 7-bit), <c>SMTPUTF8</c>, or domains in A-label form. This is how an adapter that builds
    /// content (such as MailPipe.MimeKit) learns the capabilities of a pooled connection it did not choose.
    /// </summary>
    /// <remarks>
    /// The message returned must have as many recipients as <paramref name="envelope"/>, in the same order (the
    /// result reports them by position), and must not be made with <see cref="ForConnection"/> itself. If
    /// <paramref name="select"/> throws, or breaks these rules, the send returns <see cref="SmtpSendOutcome.NotSent"/>
    /// with <see cref="SmtpErrorCode.ContentReadFailed"/> and the exception inside, before anything of it is written;
    /// an <see cref="SmtpException"/> with <see cref="SmtpErrorCode.ExtensionNotSupported"/> thrown by
    /// <paramref name="select"/> (the connection lacks what the message needs) is the result's exception as it is.
    /// <paramref name="envelope"/> is what the message is known by before a connection is chosen (checks of the
    /// envelope, a pool's bookkeeping).
    /// </remarks>
    /// <param name="envelope">The envelope as known before the connection is chosen.</param>
    /// <param name="select">Makes the message for a connection from its capabilities; called on the sending flow.</param>
    /// <returns>The message.</returns>
    public static SmtpMessage ForConnection(SmtpEnvelope envelope, Func<SmtpCapabilities, SmtpMessage> select)
    {
        ArgumentNullException.ThrowIfNull(select);
        return new(envelope, null, null, null) { _source = select };
    }

    /// <summary>
    /// Makes the content ready for one send, before MAIL: lets a <see cref="ForConnection"/> message choose (and puts
    /// the chosen message on <paramref name="tx"/>), seeks a seekable stream back to its start, makes a fresh run of a
    /// content writer (on <paramref name="tx"/>: a copy of this message that reads it, and the run, released with the
    /// result), or finds that a one-pass source was already read.
    /// </summary>
    /// <returns>Why the message cannot be sent (nothing was written), or <see langword="null"/>.</returns>
    /// <param name="tx">The transaction of this send.</param>
    /// <param name="capabilities">The connection's capabilities.</param>
    /// <param name="chunking">Whether this send uses CHUNKING (the server offers it and the session's options allow it).</param>
    internal SmtpException? BeginSend(MailTransaction tx, SmtpCapabilities capabilities, bool chunking)
    {
        if (Selector is { } select)
        {
            SmtpMessage chosen;
            try
            {
                chosen = select(chunking || !capabilities.SupportsChunking ? capabilities : WithoutChunking(capabilities)) ?? throw new InvalidOperationException("The message selector of SmtpMessage.ForConnection returned null.");
                if (chosen.Selector is not null || chosen.Envelope.Recipients.Count != Envelope.Recipients.Count)
                {
                    throw new InvalidOperationException($"The message chosen for the connection must have as many recipients as the envelope ({Envelope.Recipients.Count}) and must not be made with SmtpMessage.ForConnection.");
                }
            }
            catch (SmtpException ex) when (ex.ErrorCode == SmtpErrorCode.ExtensionNotSupported)
            {
                // The selector's own finding that this connection lacks what the message needs (MailPipe.MimeKit: a raw
                // UTF-8 header field for a server without 8BITMIME), in its words: not a failure to read the content.
                return ex;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return new SmtpException(SmtpErrorCode.ContentReadFailed, $"The message could not be made for this connection: {ex.Message}; it was not sent.", ex);
            }

            // The chosen message is sent as this one: with its per-send settings (the caller's token of WithCancellation,
            // the telemetry parent). Without the token, a caller cancelled while its content was written was no longer
            // known as this message's: the pooled sender closed the connection (every message on it whose end of data
            // was written became Unknown) instead of resetting the transaction with RSET between chunks.
            chosen = chosen.WithSendSettingsOf(this);
            tx.Message = chosen;
            return chosen.BeginSend(tx, capabilities, chunking);
        }

        if (Writer is { } writer)
        {
            // Each send reads a copy that holds its own run: two sends of one message (a batch, two sessions) never
            // share a pipe, and the message itself keeps no state of a send.
            var copy = (SmtpMessage)MemberwiseClone();
            copy._source = new WriterContent(writer, _extras.StoppedRuns);
            tx.Message = copy;
            return null;
        }

        if (StartPosition >= 0)
        {
            // Each send reads through a view with a position of its own (never the stream's, which another send of the
            // same stream may be reading at the same time), from where the stream stood when the message was made.
            var stream = (Stream)_source!;
            if (!stream.CanSeek)
            {
                return new SmtpException(SmtpErrorCode.ContentReadFailed, $"The content stream can no longer seek back to the start of the message (position {StartPosition}; disposed?); the message was not sent.", new ObjectDisposedException(stream.GetType().Name));
            }

            var copy = (SmtpMessage)MemberwiseClone();
            copy._source = new SeekableContent(stream, StartPosition);
            tx.Message = copy;
            return null;
        }

        if (OneShotRead)
        {
            return new SmtpException(
                SmtpErrorCode.ContentNotReplayable,
                $"The message's content ({(_source is ReadTrackingStream ? "a non-seekable stream" : "a pipe reader")}) was already read by an earlier send and cannot be read again; the message was not sent. Retry with content that can be replayed (bytes, a seekable stream, or SmtpMessage.FromWriter).");
        }

        if (IsOnePassSource)
        {
            // One send at a time: two sends that both began before either read (one message sent by two callers of a
            // shared sender) each read part of the source, and each part was delivered as the message.
            if (!(_source is ReadTrackingStream stream ? stream.TryClaim(tx) : ((ReadTrackingPipeReader)_source!).TryClaim(tx)))
            {
                return new SmtpException(
                    SmtpErrorCode.ContentNotReplayable,
                    $"The message's content ({(_source is ReadTrackingStream ? "a non-seekable stream" : "a pipe reader")}) is being sent by another send of it at this moment and can be read only once; the message was not sent. Use content that can be replayed (bytes, a seekable stream, or SmtpMessage.FromWriter) to send it more than once.");
            }
        }

        return null;
    }

    /// <summary>
    /// Whether another send of this message would send it whole: in-memory content, a seekable stream, a content
    /// writer, a <see cref="ForConnection"/> message (its selector makes the content anew), or a one-pass source not
    /// yet read. For a pool deciding whether a retry on a fresh connection is safe.
    /// </summary>
    internal bool IsReplayable => !OneShotRead;

    /// <summary>Ends the claim of a one-pass source that <paramref name="tx"/>'s <see cref="BeginSend"/> made, if it made one (its transaction has its result).</summary>
    internal void ReleaseOnePassSource(MailTransaction tx)
    {
        if (_source is ReadTrackingStream stream)
        {
            stream.Release(tx);
        }
        else
        {
            (_source as ReadTrackingPipeReader)?.Release(tx);
        }
    }

    /// <summary>Whether the content comes from the caller's code (a content writer or a per-connection selector): what <see cref="Observing"/> watches.</summary>
    internal bool IsFromCallersCode => Writer is not null || Selector is not null;

    /// <summary>Whether the content is a one-pass source (a non-seekable stream, a pipe reader): read once, whatever copy reads it.</summary>
    internal bool IsOnePassSource => _source is ReadTrackingStream or ReadTrackingPipeReader;

    /// <summary>
    /// A copy of this message of a non-seekable stream (<see cref="Stream"/>) that reads <paramref name="reading"/>, a
    /// wrapper of that stream, instead: everything else kept (the token of <see cref="WithCancellation"/>, the
    /// telemetry parent), and read once for both (a read of either makes both <see cref="SmtpErrorCode.ContentNotReplayable"/>).
    /// </summary>
    internal SmtpMessage ReadingThrough(Stream reading)
    {
        var copy = (SmtpMessage)MemberwiseClone();
        copy._source = new ReadTrackingStream(reading, _source as ReadTrackingStream); // or a seekable stream since disposed (CanSeek false)
        return copy;
    }

    /// <summary>
    /// A copy that tells a pool what its sends read (for its replay check): <paramref name="observe"/> sees each
    /// message a <see cref="ForConnection"/> selector chooses, and each start of a content writer (with
    /// <see langword="null"/>); a writer run once may have read the caller's one-pass sources (a network stream
    /// it copies), so a run that failed is not replayed by the pool. Any other message as it is.
    /// </summary>
    /// <param name="observe">Sees each message chosen, and <see langword="null"/> when a content writer starts.</param>
    /// <returns>The copy, or this message.</returns>
    internal SmtpMessage Observing(Action<SmtpMessage?> observe)
    {
        if (Writer is { } writer)
        {
            var copy = (SmtpMessage)MemberwiseClone();
            copy._source = (Func<Stream, CancellationToken, Task>)((stream, ct) =>
            {
                observe(null);
                return writer(stream, ct);
            });
            return copy;
        }

        if (Selector is { } select)
        {
            var copy = (SmtpMessage)MemberwiseClone();
            copy._source = (Func<SmtpCapabilities, SmtpMessage>)(capabilities =>
            {
                var chosen = select(capabilities);
                if (chosen is not null)
                {
                    observe(chosen);
                    chosen = chosen.Observing(observe);
                }

                return chosen!;
            });
            return copy;
        }

        return this;
    }

    /// <summary>The capabilities without CHUNKING, for a session whose options turn it off: a message chosen for BINARYMIME would not be sendable.</summary>
    private static SmtpCapabilities WithoutChunking(SmtpCapabilities capabilities)
    {
        List<string> lines = [capabilities.Domain ?? "server"];
        foreach (var item in capabilities.Items)
        {
            if (!item.Keyword.Equals("CHUNKING", StringComparison.OrdinalIgnoreCase))
            {
                lines.Add(item.Line);
            }
        }

        return SmtpCapabilities.FromEhloReply(new SmtpReply(250, lines));
    }
}
