using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.ExceptionServices;

namespace MailPipe;

/// <summary>DATA and message content (RFC 5321 §4.1.1.4, §4.5.2): the seed's <c>Data()</c> and <c>SendLines(CONVERT_EOL)</c>.</summary>
public sealed partial class AsyncSmtpSession
{
    private static readonly byte[] DataVerb = "DATA"u8.ToArray();

    /// <summary>
    /// Sends DATA (RFC 5321 §4.1.1.4). On 354 the session enters <see cref="SmtpSessionState.SendingData"/>: send the
    /// content with <see cref="WriteMessageDataAsync"/> then <see cref="EndMessageDataAsync"/>, or in one call with a
    /// <c>SendMessageDataAsync</c> overload. The seed's <c>Data()</c>.
    /// </summary>
    /// <param name="cancellationToken">Cancels the command; the connection is then closed.</param>
    /// <returns>The reply: 354 to go ahead, or a negative reply (such as 554 when no recipient was accepted).</returns>
    /// <exception cref="InvalidOperationException">Not connected, already sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> DataAsync(CancellationToken cancellationToken = default)
    {
        using var operation = BeginOperation(cancellationToken);
        _channel.WriteCommand(DataVerb, "DATA");
        var reply = await _channel.FlushAndReadAsync(_options.ReceiveTimeout, "sending DATA").ConfigureAwait(false);
        if (reply.Code == 354)
        {
            EnterDataMode();
        }

        return _channel.CloseIfServiceClosing(reply);
    }

    /// <summary>
    /// Sends a piece of message content as text lines: line ends normalised to CRLF (LF → CRLF, bare CR → CRLF), a
    /// leading <c>.</c> doubled (dot-stuffing, RFC 5321 §4.5.2). Pieces may be split anywhere, even between CR and LF.
    /// The seed's <c>SendLines(…, CONVERT_EOL)</c> without LAST. Data is flushed to the network every
    /// <see cref="SmtpSessionOptions.DataFlushThreshold"/> bytes.
    /// </summary>
    /// <param name="data">The next bytes of the message (headers, blank line, body), in any line-ending convention.</param>
    /// <param name="cancellationToken">Cancels the write; the connection is then closed and the end of data is never sent.</param>
    /// <returns>A task that completes when the bytes are buffered or sent.</returns>
    /// <exception cref="InvalidOperationException">DATA has not returned 354, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure or send timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task WriteMessageDataAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        using var operation = BeginOperation(cancellationToken, SmtpSessionState.SendingData);
        await Sender.Data.WriteContentAsync(new ReadOnlySequence<byte>(data), null, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Ends the message: adds a CRLF if the content did not end with a line end, sends <c>.</c> CRLF and reads the
    /// reply within <see cref="SmtpSessionOptions.DataTerminationTimeout"/> (RFC 5321 §4.1.1.4). The seed's
    /// <c>SendLines(…, LAST)</c>.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait; the connection is then closed and the outcome of the message is unknown.</param>
    /// <returns>The reply: 250 when the message is accepted, or a negative reply.</returns>
    /// <exception cref="InvalidOperationException">DATA has not returned 354, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout: the message may or may not have been delivered.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> EndMessageDataAsync(CancellationToken cancellationToken = default)
    {
        using var operation = BeginOperation(cancellationToken, SmtpSessionState.SendingData);
        return await EndDataCoreAsync().ConfigureAwait(false);
    }

    /// <summary>Sends a whole message held in memory as text lines (see <see cref="WriteMessageDataAsync"/>), then ends the data and returns the reply.</summary>
    /// <param name="content">The whole message.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed and the end of data is never sent.</param>
    /// <returns>The reply to the end of data (250 when accepted).</returns>
    /// <exception cref="InvalidOperationException">DATA has not returned 354, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<SmtpReply> SendMessageDataAsync(ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default) =>
        SendMessageDataAsync(new ReadOnlySequence<byte>(content), cancellationToken);

    /// <summary>Sends a whole message held in a (possibly multi-segment) sequence as text lines, then ends the data and returns the reply.</summary>
    /// <param name="content">The whole message.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed and the end of data is never sent.</param>
    /// <returns>The reply to the end of data (250 when accepted).</returns>
    /// <exception cref="InvalidOperationException">DATA has not returned 354, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<SmtpReply> SendMessageDataAsync(ReadOnlySequence<byte> content, CancellationToken cancellationToken = default) =>
        SendContentAsync(content, null, null, cancellationToken);

    /// <summary>Streams a message from <paramref name="content"/> (read to its end, never buffered whole) as text lines, then ends the data and returns the reply.</summary>
    /// <param name="content">A readable stream positioned at the start of the message; not disposed.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed and the end of data is never sent.</param>
    /// <returns>The reply to the end of data (250 when accepted).</returns>
    /// <exception cref="ArgumentException">The stream cannot be read.</exception>
    /// <exception cref="InvalidOperationException">DATA has not returned 354, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="IOException">Reading <paramref name="content"/> failed; the connection is closed and the end of data was not sent.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<SmtpReply> SendMessageDataAsync(Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        return content.CanRead ? SendContentAsync(null, content, null, cancellationToken) : throw new ArgumentException("The content stream must be readable.", nameof(content));
    }

    /// <summary>Streams a message from <paramref name="content"/> until it completes, as text lines, then ends the data and returns the reply. The reader is advanced but not completed.</summary>
    /// <param name="content">The message source.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed and the end of data is never sent.</param>
    /// <returns>The reply to the end of data (250 when accepted).</returns>
    /// <exception cref="InvalidOperationException">DATA has not returned 354, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="IOException">Reading <paramref name="content"/> failed; the connection is closed and the end of data was not sent.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled, or a read of <paramref name="content"/> was cancelled (<see cref="PipeReader.CancelPendingRead"/>); the connection is closed and the end of data was not sent.</exception>
    public Task<SmtpReply> SendMessageDataAsync(PipeReader content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        return SendContentAsync(null, null, content, cancellationToken);
    }

    /// <summary>
    /// Sends bytes exactly as given: no line-end conversion, no dot-stuffing (the seed's <c>SendBytes</c>); for content the
    /// caller already prepared, or for extensions. Read a reply afterwards with <see cref="ReceiveReplyAsync"/> where one is due
    /// (the seed's LAST option).
    /// </summary>
    /// <remarks>
    /// Inside message data, the bytes mix with <see cref="WriteMessageDataAsync"/> and <see cref="EndMessageDataAsync"/>, and a
    /// CR and LF split between calls make one CRLF; bytes ending with a CR are a line end for the data or the end of data that
    /// follows (which sends the LF that completes it). One exception to "exactly as given": when the previous
    /// <see cref="WriteMessageDataAsync"/> ended with a CR (sent as CRLF, as every line end of data), an LF at the start of
    /// these bytes completes that line end and is not sent again, so that no bare LF reaches the wire.
    /// </remarks>
    /// <param name="bytes">The bytes.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>A task that completes when the bytes are sent.</returns>
    /// <exception cref="InvalidOperationException">Not connected, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure or send timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task SendBytesAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        using var operation = BeginOperation(cancellationToken, allowData: true, allowPendingReplies: true);
        // Buffer only; the flush does the I/O under the send timeout, and any failure or cancellation closes the connection.
        // Inside message data the encoder learns whether the bytes end a line (so that the end of data is right), and drops
        // an LF first that completes a CR the previous WriteMessageDataAsync ended with (already sent as CRLF).
        var wire = State == SmtpSessionState.SendingData ? Sender.Data.Encoder.TakeRawBytes(bytes.Span) : bytes.Span;
        if (State != SmtpSessionState.SendingData)
        {
            _mailDeclaredSmtpUtf8 = null; // raw bytes may hold a MAIL of the caller's own, as SendCommandAsync may
        }

        _channel.Output.Write(wire);
        Log.MessageData(_channel.ProtocolLog, wire.Length);
        await _channel.FlushAsync("sending bytes").ConfigureAwait(false);
    }

    private void EnterDataMode()
    {
        State = SmtpSessionState.SendingData;
        Sender.Data.Begin();
    }

    /// <summary>The content through the DATA body, then the end of data; a failed or cancelled read closes the connection so that the incomplete message is never ended.</summary>
    private async Task<SmtpReply> SendContentAsync(ReadOnlySequence<byte>? bytes, Stream? stream, PipeReader? reader, CancellationToken cancellationToken)
    {
        using var operation = BeginOperation(cancellationToken, SmtpSessionState.SendingData);
        try
        {
            await Sender.Data.WriteContentAsync(bytes, stream, reader, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ContentSourceException or OperationCanceledException)
        {
            _channel.Break("reading the message content failed");
            ExceptionDispatchInfo.Throw(ex is ContentSourceException marked ? marked.SourceException : ex);
        }

        return await EndDataCoreAsync().ConfigureAwait(false);
    }

    private async Task<SmtpReply> EndDataCoreAsync()
    {
        Sender.Data.WriteEnd(null);
        State = SmtpSessionState.Connected;
        var reply = await _channel.FlushAndReadAsync(_options.DataTerminationTimeout, "sending the end of message data").ConfigureAwait(false);
        return _channel.CloseIfServiceClosing(reply);
    }
}
