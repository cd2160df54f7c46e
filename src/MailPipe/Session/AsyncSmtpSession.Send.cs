using System.Buffers;
using System.IO.Pipelines;
using MailPipe.Protocol;
using MailPipe.Sending;

namespace MailPipe;

/// <summary>
/// The envelope API: whole mail transactions, pipelined (RFC 2920) and chunked (RFC 3030) when the server allows,
/// with a result that says which recipients were accepted and whether the message was accepted, refused, not sent or
/// of unknown outcome.
/// </summary>
public sealed partial class AsyncSmtpSession
{
    /// <summary>The transaction sender (one per session), made at the first send.</summary>
    private TransactionSender? _sender;

    private TransactionSender Sender => _sender ??= new TransactionSender(this, _options);

    /// <summary>Whether the next transaction starts with RSET (the sender's; MAIL and RSET commands set it too).</summary>
#pragma warning disable IDE1006, SA1300 // The name the other partials use until the channel's move.
    private bool _resetBeforeNextMail
#pragma warning restore IDE1006, SA1300
    {
        get => _sender?.NeedsReset ?? false;
        set
        {
            if (value || _sender is not null)
            {
                Sender.NeedsReset = value; // a session that never sends makes no sender
            }
        }
    }

    /// <summary>Sends EHLO and, when the server refuses it as unknown (500, 502; RFC 5321 §4.1.4, §3.2), HELO.</summary>
    /// <param name="domain">The client's fully qualified domain name or address literal.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>The reply to EHLO, or to HELO when it was needed.</returns>
    /// <exception cref="ArgumentException"><paramref name="domain"/> is empty or holds CR, LF, NUL or white space.</exception>
    /// <exception cref="InvalidOperationException">Not connected, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> HelloAsync(string domain, CancellationToken cancellationToken = default)
    {
        var ehlo = await EhloAsync(domain, cancellationToken).ConfigureAwait(false);
        return ehlo.Code is 500 or 502 && IsConnected ? await HeloAsync(domain, cancellationToken).ConfigureAwait(false) : ehlo;
    }

    /// <summary>Sends one message held in memory. See <see cref="SendAsync(SmtpMessage, CancellationToken)"/>.</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The message (headers, blank line, body).</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>The result.</returns>
    public Task<SmtpSendResult> SendAsync(SmtpEnvelope envelope, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default) =>
        SendAsync(SmtpMessage.FromBytes(envelope, content), cancellationToken);

    /// <summary>Sends one message read from a stream to its end. See <see cref="SendAsync(SmtpMessage, CancellationToken)"/>.</summary>
    /// <remarks>
    /// To be able to retry, make the message once with <see cref="SmtpMessage.FromStream"/> and send that same
    /// <see cref="SmtpMessage"/> again: it seeks the stream back to where the message starts (or, for a non-seekable
    /// stream already read, returns <see cref="SmtpErrorCode.ContentNotReplayable"/>). Calling this overload again with
    /// the same stream sends whatever is left of it from its current position.
    /// </remarks>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">A readable stream; not disposed.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>The result.</returns>
    public Task<SmtpSendResult> SendAsync(SmtpEnvelope envelope, Stream content, CancellationToken cancellationToken = default) =>
        SendAsync(SmtpMessage.FromStream(envelope, content), cancellationToken);

    /// <summary>Sends one message held in a sequence. See <see cref="SendAsync(SmtpMessage, CancellationToken)"/>.</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The message bytes.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>The result.</returns>
    public Task<SmtpSendResult> SendAsync(SmtpEnvelope envelope, ReadOnlySequence<byte> content, CancellationToken cancellationToken = default) =>
        SendAsync(SmtpMessage.FromSequence(envelope, content), cancellationToken);

    /// <summary>Sends one message read from a pipe until it completes. See <see cref="SendAsync(SmtpMessage, CancellationToken)"/>.</summary>
    /// <remarks>
    /// A pipe is read once and cannot be replayed: to retry, make the message once with
    /// <see cref="SmtpMessage.FromPipeReader"/> and send that same <see cref="SmtpMessage"/> again, which returns
    /// <see cref="SmtpErrorCode.ContentNotReplayable"/> (nothing sent) once the pipe was read; for content that must
    /// survive a retry use <see cref="SmtpMessage.FromWriter"/>.
    /// </remarks>
    /// <param name="envelope">The envelope.</param>
    /// <param name="content">The reader; advanced, not completed.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>The result.</returns>
    public Task<SmtpSendResult> SendAsync(SmtpEnvelope envelope, PipeReader content, CancellationToken cancellationToken = default) =>
        SendAsync(SmtpMessage.FromPipeReader(envelope, content), cancellationToken);

    /// <summary>
    /// Sends one message as a whole mail transaction (RFC 5321 §3.3): MAIL, every RCPT, then DATA with dot-stuffing or,
    /// when the server offers CHUNKING, BDAT (RFC 3030). With PIPELINING (RFC 2920) MAIL, the RCPTs and DATA (or the
    /// first BDAT) go out in one flush: one round trip with BDAT, two with DATA. Send EHLO first.
    /// </summary>
    /// <remarks>
    /// Nothing the server says and no lost connection makes this throw: they are outcomes in the result. MAIL
    /// parameters follow from the envelope and the capabilities: SIZE (the envelope's, else the content's size when known), BODY,
    /// SMTPUTF8 (when an address is not ASCII), DSN RET/ENVID/NOTIFY/ORCPT (only when the server offers DSN),
    /// REQUIRETLS. A message over the server's SIZE limit, or needing an extension the server lacks, is not sent
    /// (<see cref="SmtpSendOutcome.NotSent"/> with <see cref="SmtpErrorCode.MessageTooLarge"/> or
    /// <see cref="SmtpErrorCode.ExtensionNotSupported"/>).
    /// </remarks>
    /// <param name="message">The envelope and content.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed and an unfinished message is never ended.</param>
    /// <returns>The result: replies to MAIL and each RCPT, the final reply, and the outcome.</returns>
    /// <exception cref="ArgumentException">A parameter string holds CR, LF or NUL, or a typed parameter is out of range (a negative <see cref="SmtpEnvelope.Size"/>, an undefined enum value); nothing was sent.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpOutcomeUnknownException"><paramref name="cancellationToken"/> was cancelled after the end of data was written: the message may have been delivered (the exception's result is <see cref="SmtpSendOutcome.Unknown"/>). When the replies already read rule delivery out (MAIL or every recipient refused), the cancelled call returns that <see cref="SmtpSendOutcome.Refused"/> result instead (the connection is closed either way).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the end of data was written: nothing was delivered.</exception>
    public Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        MailParameters.Validate(message.Envelope);
        return Sender.SendAsync(message, cancellationToken);
    }

    /// <summary>Sends many messages on this session. See <see cref="SendBatchAsync(IAsyncEnumerable{SmtpMessage}, CancellationToken)"/>.</summary>
    /// <param name="messages">The messages, sent in order; every envelope is checked before anything is sent.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>One result per message, in order.</returns>
    /// <exception cref="ArgumentException">A message is null, or its parameters hold CR, LF or NUL or are out of range; nothing was sent.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpBatchCanceledException"><paramref name="cancellationToken"/> was cancelled; the exception holds the results so far.</exception>
    public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
        Sender.SendBatchAsync(TransactionSender.Checked(messages), null, cancellationToken);

    /// <summary>
    /// Sends many messages on this session with overlapping mail transactions. With PIPELINING and DATA, each message's
    /// final dot goes in the same flush as the next message's MAIL, RCPTs and DATA, so each message costs one wait
    /// (for 354). With PIPELINING and CHUNKING, up to <see cref="SmtpSessionOptions.MaxTransactionsInFlight"/>
    /// transactions are written before the first final reply is read. Without PIPELINING, one command at a time.
    /// </summary>
    /// <param name="messages">The messages, sent in order; enumerated once.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>One result per message taken from the sequence, in order. Once the connection is lost or closing (a 421), no more messages are taken from the sequence: the results may be fewer than its messages, and the ones not taken were not sent (an endless sequence, such as a channel reader, does not keep the call going).</returns>
    /// <exception cref="SmtpBatchArgumentException">
    /// A message is null or its parameters hold CR, LF or NUL. An async sequence is checked message by message: the
    /// messages before the bad one are finished first (never left half-sent) and their results are in
    /// <see cref="SmtpBatchArgumentException.Results"/> (an <see cref="ArgumentException"/>); a list passed to
    /// <see cref="SendBatchAsync(IEnumerable{SmtpMessage}, CancellationToken)"/> is checked whole before anything is sent.
    /// </exception>
    /// <exception cref="SmtpBatchSequenceException">The sequence itself threw (anything but a cancellation): the messages taken before were finished first and their results are in <see cref="SmtpBatchSequenceException.Results"/>; <see cref="Exception.InnerException"/> is the sequence's exception.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpBatchCanceledException"><paramref name="cancellationToken"/> was cancelled; the exception holds the results so far (decided outcomes kept, Unknown where the end of data was written).</exception>
    public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IAsyncEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
        Sender.SendBatchAsync(null, messages, cancellationToken);

    /// <summary>
    /// Sends many messages like <see cref="SendBatchAsync(IEnumerable{SmtpMessage}, CancellationToken)"/> (the list is
    /// checked whole first, the pipelining of the whole batch is kept) and yields each message's result, in message
    /// order, as soon as it is known: the final reply has arrived, or the transaction was refused or not attempted.
    /// </summary>
    /// <param name="messages">The messages, sent in order.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>One result per message, in order. Nothing is sent until the enumeration starts; leaving it early takes no more messages: the ones taken are finished first (never half-sent), their remaining results are dropped, and the rest are not sent.</returns>
    /// <exception cref="ArgumentException">A message is null, or its parameters hold CR, LF or NUL or are out of range; nothing was sent.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running (thrown by the enumeration).</exception>
    /// <exception cref="SmtpBatchCanceledException">The enumeration was cancelled: the results of the messages taken so far that were not yielded yet are yielded first (Unknown where the end of data was written, else NotSent), then this is thrown with every result.</exception>
#pragma warning disable RS0026 // The agreed shape, as SendBatchAsync's pair: the two overloads differ in the sequence type, never ambiguous.
    public IAsyncEnumerable<SmtpSendResult> SendBatchStreamingAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
        Sender.StreamAsync(TransactionSender.Checked(messages), null, cancellationToken);

    /// <summary>
    /// Sends many messages like <see cref="SendBatchAsync(IAsyncEnumerable{SmtpMessage}, CancellationToken)"/> and
    /// yields each message's result, in message order, as soon as it is known. When the sequence has no next message
    /// ready (its <c>MoveNextAsync</c> does not complete at once), what was written is flushed and the replies due are
    /// read first, so that the results of the messages already written are yielded while the sequence waits: a
    /// producer that waits for those results cannot deadlock the batch.
    /// </summary>
    /// <param name="messages">The messages, sent in order; enumerated once.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>One result per message, in order. Nothing is sent until the enumeration starts; leaving it early takes no more messages from the sequence (an endless one, such as a channel reader, ends too): the ones taken are finished first (never half-sent) and their remaining results are dropped. Once the connection is lost or closing (a 421), no more messages are taken from the sequence.</returns>
    /// <exception cref="ArgumentException">A message's parameters hold CR, LF or NUL or are out of range, or (<see cref="ArgumentNullException"/>) a message is null: the results before it are yielded first, and a bad message's own result (<see cref="SmtpSendOutcome.NotSent"/>) too.</exception>
    /// <exception cref="Exception">Whatever the sequence itself throws (anything but a cancellation) is thrown as it is, after the results of every message taken before it were yielded (those transactions are finished first, never left half-sent); not when the caller left the enumeration early.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running (thrown by the enumeration).</exception>
    /// <exception cref="SmtpBatchCanceledException">The enumeration was cancelled: the results of the messages taken so far that were not yielded yet are yielded first (Unknown where the end of data was written, else NotSent), then this is thrown with every result.</exception>
    public IAsyncEnumerable<SmtpSendResult> SendBatchStreamingAsync(IAsyncEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return Sender.StreamAsync(null, messages, cancellationToken);
    }
#pragma warning restore RS0026

    /// <summary>Whether the content of the message carrying <paramref name="token"/> (<see cref="SmtpMessage.WithCancellation"/>) is being written (see <see cref="TransactionSender.IsWritingContentOf"/>); safe from any thread.</summary>
    internal bool IsWritingContentOf(CancellationToken token) => _sender?.IsWritingContentOf(token) ?? false;

    /// <summary>The one check of an envelope's parameter strings (<see cref="MailParameters.Validate"/>).</summary>
    private static void Validate(SmtpEnvelope envelope) => MailParameters.Validate(envelope);
}
