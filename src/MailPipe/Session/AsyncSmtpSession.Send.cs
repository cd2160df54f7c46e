using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;

namespace MailPipe;

/// <summary>
/// The envelope API: whole mail transactions, pipelined (RFC 2920) and chunked (RFC 3030) when the server allows,
/// with a result that says which recipients were accepted and whether the message was accepted, refused, not sent or
/// of unknown outcome.
/// </summary>
public sealed partial class AsyncSmtpSession
{
    private static readonly byte[] MailVerb = "MAIL FROM:"u8.ToArray();
    private static readonly byte[] RcptVerb = "RCPT TO:"u8.ToArray();
    private ArrayBufferWriter<byte>? _chunkBuffer;

    /// <summary>
    /// Whether the server may still hold a mail transaction (the last one did not end with a positive final reply):
    /// the next transaction starts with RSET. Postfix, for one, keeps the transaction open after a refusal at the end
    /// of data, answering the next MAIL with 503 (and its 3.7 smtpd crashes on MAIL after a refused BDAT LAST).
    /// </summary>
    private bool _resetBeforeNextMail;

    /// <summary>Set when a 421 closed the session during a one-command-at-a-time send.</summary>
    private SmtpException? _serviceClosing;

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
    /// parameters follow from the envelope and the capabilities: SIZE (the envelope's or the content's length), BODY,
    /// SMTPUTF8 (when an address is not ASCII), DSN RET/ENVID/NOTIFY/ORCPT (only when the server offers DSN),
    /// REQUIRETLS. A message over the server's SIZE limit, or needing an extension the server lacks, is not sent
    /// (<see cref="SmtpSendOutcome.NotSent"/> with <see cref="SmtpErrorCode.MessageTooLarge"/> or
    /// <see cref="SmtpErrorCode.ExtensionNotSupported"/>).
    /// </remarks>
    /// <param name="message">The envelope and content.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed and an unfinished message is never ended.</param>
    /// <returns>The result: replies to MAIL and each RCPT, the final reply, and the outcome.</returns>
    /// <exception cref="ArgumentException">A parameter string holds CR, LF or NUL; nothing was sent.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        var results = await SendBatchAsync([message], cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <summary>Sends many messages on this session. See <see cref="SendBatchAsync(IAsyncEnumerable{SmtpMessage}, CancellationToken)"/>.</summary>
    /// <param name="messages">The messages, sent in order; every envelope is checked before anything is sent.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>One result per message, in order.</returns>
    /// <exception cref="ArgumentException">A message is null, or its parameters hold CR, LF or NUL; nothing was sent.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);

        // A list can be checked whole before anything is sent (an async sequence is checked message by message).
        var list = messages as IReadOnlyList<SmtpMessage> ?? [.. messages];
        foreach (var message in list)
        {
            ArgumentNullException.ThrowIfNull(message, nameof(messages));
            Validate(message.Envelope);
        }

        return SendBatchAsync(ToAsync(list), cancellationToken);
    }

    /// <summary>
    /// Sends many messages on this session with overlapping mail transactions. With PIPELINING and DATA, each message's
    /// final dot goes in the same flush as the next message's MAIL, RCPTs and DATA, so each message costs one wait
    /// (for 354). With PIPELINING and CHUNKING, up to <see cref="SmtpSessionOptions.MaxTransactionsInFlight"/>
    /// transactions are written before the first final reply is read. Without PIPELINING, one command at a time.
    /// </summary>
    /// <param name="messages">The messages, sent in order; enumerated once.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>One result per message, in order; after a lost connection the rest are <see cref="SmtpSendOutcome.NotSent"/>.</returns>
    /// <exception cref="ArgumentException">
    /// A message's parameters hold CR, LF or NUL. An async sequence is checked message by message: the messages before
    /// the bad one are finished first (never left half-sent), but their results are not returned; check the envelopes
    /// first, or pass a list to <see cref="SendBatchAsync(IEnumerable{SmtpMessage}, CancellationToken)"/>, which is
    /// checked whole before anything is sent.
    /// </exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IAsyncEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        BeginOperation(cancellationToken);
        var transactions = new List<MailTransaction>();
        SmtpException? failure = null;
        try
        {
            var capabilities = Capabilities;
            var chunking = _options.UseChunking && capabilities.SupportsChunking;
            if (_options.UsePipelining && capabilities.SupportsPipelining)
            {
                failure = await SendPipelinedAsync(messages, transactions, chunking, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                failure = await SendSequentiallyAsync(messages, transactions, chunking, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Whatever was cancelled (our I/O, the caller's content source), a transaction may be half-sent: close
            // the connection so that it can never be completed, as for every cancellation.
            Break("cancelled while sending");
            throw;
        }
        finally
        {
            EndOperation();
        }

        var results = new SmtpSendResult[transactions.Count];
        for (var i = 0; i < results.Length; i++)
        {
            results[i] = transactions[i].ToResult(failure);
        }

        return results;
    }

    private static async IAsyncEnumerable<SmtpMessage> ToAsync(IEnumerable<SmtpMessage> messages)
    {
        foreach (var message in messages)
        {
            yield return message;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    // ---- One command at a time (no PIPELINING) ----

    private async Task<SmtpException?> SendSequentiallyAsync(IAsyncEnumerable<SmtpMessage> messages, List<MailTransaction> transactions, bool chunking, CancellationToken cancellationToken)
    {
        SmtpException? failure = null;
        _serviceClosing = null;
        try
        {
            await foreach (var message in messages.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                var tx = new MailTransaction(message);
                transactions.Add(tx);
                try
                {
                    if (failure is not null || !IsConnected)
                    {
                        continue;
                    }

                    var (mailParameters, rcptParameters) = Prepare(tx, chunking);
                    if (tx.NotAttempted is not null)
                    {
                        continue;
                    }

                    if (_resetBeforeNextMail)
                    {
                        await ResetTransactionAsync().ConfigureAwait(false);
                    }

                    _resetBeforeNextMail = true;
                    WriteMail(tx, mailParameters);
                    tx.MailReply = await FlushAndReadAsync(_options.ReceiveTimeout, "sending MAIL").ConfigureAwait(false);
                    if (!tx.MailReply.IsPositiveCompletion)
                    {
                        BreakIfServiceClosing(tx.MailReply);
                        continue;
                    }

                    for (var i = 0; i < tx.RecipientReplies.Length && IsConnected; i++)
                    {
                        WriteRcpt(tx, i, rcptParameters);
                        tx.RecipientReplies[i] = BreakIfServiceClosing(await FlushAndReadAsync(_options.ReceiveTimeout, "sending RCPT").ConfigureAwait(false));
                    }

                    if (!IsConnected)
                    {
                        continue;
                    }

                    if (tx.AcceptedRecipientCount == 0)
                    {
                        continue;
                    }

                    if (chunking)
                    {
                        await WriteChunksAsync(tx, pump: null, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        WriteCommand(DataVerb, "DATA");
                        tx.DataReply = BreakIfServiceClosing(await FlushAndReadAsync(_options.ReceiveTimeout, "sending DATA").ConfigureAwait(false));
                        if (tx.DataReply.Code != 354)
                        {
                            continue;
                        }

                        await WriteDataContentAsync(tx, cancellationToken).ConfigureAwait(false);
                        tx.FinalReply = BreakIfServiceClosing(await FlushAndReadAsync(_options.DataTerminationTimeout, "sending the end of message data").ConfigureAwait(false));
                    }

                    _resetBeforeNextMail = tx.FinalReply is not { IsPositiveCompletion: true };
                }
                catch (SmtpException ex)
                {
                    failure ??= ex;
                }
                catch (Exception ex) when (IsContentFailure(ex))
                {
                    failure ??= ContentFailure(ex);
                }
            }

            return failure ?? _serviceClosing;
        }
        catch (SmtpException ex)
        {
            return failure ?? ex;
        }
    }

    /// <summary>An exception from the caller's content source (not ours, not a cancellation, not bad arguments).</summary>
    private static bool IsContentFailure(Exception exception) =>
        exception is not (OperationCanceledException or ArgumentException or InvalidOperationException or SmtpException);

    /// <summary>The content could not be read: the message was never ended (the connection is closed so that it cannot be), and the batch's results are kept.</summary>
    private SmtpException ContentFailure(Exception exception)
    {
        Break("reading the message content failed");
        return new SmtpException(SmtpErrorCode.ContentReadFailed, $"Reading the message content failed: {exception.Message}; the message was not ended and the connection was closed.", exception);
    }

    private async Task ResetTransactionAsync()
    {
        WriteCommand(RsetVerb, "RSET");
        BreakIfServiceClosing(await FlushAndReadAsync(_options.ReceiveTimeout, "sending RSET").ConfigureAwait(false));
    }

    private SmtpReply BreakIfServiceClosing(SmtpReply reply)
    {
        if (reply.IsServiceClosing)
        {
            Break("the server sent 421 (service closing transmission channel)");
            _serviceClosing ??= ServiceClosingException(reply);
        }

        return reply;
    }

    /// <summary>What stands for "the server sent 421 and closed": commands after it were never processed, so what they carried was not sent.</summary>
    private static SmtpException ServiceClosingException(SmtpReply reply)
    {
        var closing = new SmtpException(SmtpErrorCode.ConnectionClosed, $"The server closed the transmission channel: {reply}") { IsTransient = true };
        closing.Data[MailTransaction.ServiceClosingKey] = true;
        return closing;
    }

    // ---- PIPELINING (RFC 2920) ----

    private enum ReplyKind : byte
    {
        Mail,
        Recipient,
        Data,
        Chunk,
        LastChunk,
        EndOfData,
        Reset,
    }

    private readonly record struct ExpectedReply(MailTransaction? Transaction, ReplyKind Kind, int Index);

    /// <summary>
    /// The replies a pipelined batch waits for, in wire order. Small groups are read by the writer itself at its wait
    /// points (no extra thread, no hand-off). When more than <see cref="ConcurrentReadThreshold"/> replies pile up
    /// before a wait (thousands of RCPTs, many BDAT chunks), a reader starts that reads while the writer goes on
    /// writing, so that a server blocked on unread replies can never deadlock the connection (RFC 2920 §3.1).
    /// </summary>
    private sealed class ReplyPump
    {
        /// <summary>Unread replies that the writer will read itself at its next wait (until <see cref="Expected"/> exists).</summary>
        public Queue<ExpectedReply> Direct { get; } = new();

        /// <summary>The concurrent reader's queue, once it runs.</summary>
        public Channel<ExpectedReply>? Expected { get; set; }

        public Task Completion { get; set; } = Task.CompletedTask;

        /// <summary>Why replies stopped: a transport failure, a timeout, or a 421.</summary>
        public SmtpException? Failure { get; set; }

        public OperationCanceledException? Cancellation { get; set; }

        public bool Stopped => Failure is not null || Cancellation is not null;

        /// <summary>Replies expected since the writer last waited: when the batch ends with some, that last wait is a round trip too.</summary>
        public int ExpectedSinceWait { get; set; }
    }

    /// <summary>Pending replies beyond which they are read concurrently with writing.</summary>
    private const int ConcurrentReadThreshold = 64;

    private async Task<SmtpException?> SendPipelinedAsync(IAsyncEnumerable<SmtpMessage> messages, List<MailTransaction> transactions, bool chunking, CancellationToken cancellationToken)
    {
        var pump = new ReplyPump();
        var inFlight = new Queue<MailTransaction>();
        SmtpException? writerFailure = null;
        OperationCanceledException? writerCancellation = null;
        ArgumentException? argumentError = null;
        var needsReset = _resetBeforeNextMail;
        try
        {
            await foreach (var message in messages.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                var tx = new MailTransaction(message);
                transactions.Add(tx);
                try
                {
                    if (writerFailure is not null || pump.Stopped || !IsConnected)
                    {
                        continue;
                    }

                    var (mailParameters, rcptParameters) = Prepare(tx, chunking);
                    if (tx.NotAttempted is not null)
                    {
                        continue;
                    }

                    tx.Ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    if (needsReset)
                    {
                        WriteCommand(RsetVerb, "RSET");
                        Expect(pump, new ExpectedReply(null, ReplyKind.Reset, 0));
                    }

                    // The next pipelined transaction is written before this one's final reply is known: start it clean.
                    needsReset = true;

                    WriteMail(tx, mailParameters);
                    Expect(pump, new ExpectedReply(tx, ReplyKind.Mail, 0));
                    for (var i = 0; i < tx.RecipientReplies.Length; i++)
                    {
                        WriteRcpt(tx, i, rcptParameters);
                        Expect(pump, new ExpectedReply(tx, ReplyKind.Recipient, i));
                    }

                    if (chunking)
                    {
                        // MAIL, the RCPTs and the first BDAT share a flush; the next transaction follows without waiting,
                        // up to the window.
                        await WriteChunksAsync(tx, pump, cancellationToken).ConfigureAwait(false);
                        inFlight.Enqueue(tx);
                        if (inFlight.Count >= _options.MaxTransactionsInFlight)
                        {
                            // The window is full: one wait for all of it, so a batch costs one round trip per window.
                            await FlushAsync("sending pipelined commands").ConfigureAwait(false);
                            RoundTrips++;
                            pump.ExpectedSinceWait = 0;
                            await DrainDirectAsync(pump).ConfigureAwait(false);
                            while (inFlight.TryDequeue(out var written))
                            {
                                await written.Ready!.Task.ConfigureAwait(false);
                            }
                        }

                        continue;
                    }

                    // DATA ends the group (RFC 2920 §3.1); the previous message's content and dot went in the same flush.
                    WriteCommand(DataVerb, "DATA");
                    Expect(pump, new ExpectedReply(tx, ReplyKind.Data, 0));
                    await FlushAsync("sending pipelined commands").ConfigureAwait(false);
                    RoundTrips++;
                    pump.ExpectedSinceWait = 0;
                    await DrainDirectAsync(pump).ConfigureAwait(false);
                    await tx.Ready.Task.ConfigureAwait(false);
                    if (pump.Stopped)
                    {
                        continue;
                    }

                    if (tx.DataReply!.Code != 354)
                    {
                        continue;
                    }

                    if (tx.MailReply is not { IsPositiveCompletion: true })
                    {
                        // DATA was accepted although our MAIL was not: the server is in some other transaction. Any byte
                        // more, even a lone dot, could deliver mail that is not this envelope's: close the connection.
                        writerFailure = new SmtpProtocolException("The server accepted DATA (354) although it refused MAIL; the connection was closed so that nothing is delivered in another transaction (RFC 2920 §3.1).");
                        Break(writerFailure.Message);
                        continue;
                    }

                    if (tx.AcceptedRecipientCount == 0)
                    {
                        // 354 although no recipient was accepted: end the data at once, then RSET (RFC 2920 §3.1).
                        _dataEncoder.Reset();
                        _dataEncoder.Complete(Connection.Output);
                        ExpectReply("end of data");
                        Expect(pump, new ExpectedReply(tx, ReplyKind.EndOfData, 0));
                        continue;
                    }

                    await WriteDataContentAsync(tx, cancellationToken, pump).ConfigureAwait(false);
                }
                catch (SmtpException ex)
                {
                    writerFailure ??= ex;
                }
                catch (Exception ex) when (IsContentFailure(ex))
                {
                    writerFailure ??= ContentFailure(ex);
                }
            }

            if (IsConnected && !pump.Stopped)
            {
                var last = transactions.Count > 0 ? transactions[^1] : null;
                if (last is { DataReply.Code: 354 } && last.AcceptedRecipientCount == 0)
                {
                    WriteCommand(RsetVerb, "RSET");
                    Expect(pump, new ExpectedReply(null, ReplyKind.Reset, 0));
                    needsReset = false;
                }

                await FlushAsync("sending pipelined commands").ConfigureAwait(false);
            }
        }
        catch (SmtpException ex)
        {
            writerFailure ??= ex;
        }
        catch (Exception ex) when (IsContentFailure(ex))
        {
            writerFailure ??= ContentFailure(ex);
        }
        catch (OperationCanceledException ex)
        {
            // The caller's cancellation (or a cancelled content read) in the middle of a transaction: close the
            // connection, as for every cancellation, so that a half-sent message can never be completed.
            writerCancellation = ex;
            Break("cancelled while sending");
        }
        catch (ArgumentException ex)
        {
            // A later message is invalid: finish the earlier ones (their end of data may still sit in the buffer),
            // then report the bad input.
            argumentError = ex;
            if (IsConnected && !pump.Stopped)
            {
                try
                {
                    await FlushAsync("sending pipelined commands").ConfigureAwait(false);
                }
                catch (SmtpException flushFailure)
                {
                    writerFailure ??= flushFailure;
                }
            }
        }
        finally
        {
            if (pump.ExpectedSinceWait > 0)
            {
                RoundTrips++;
            }

            if (writerCancellation is null)
            {
                await DrainDirectAsync(pump).ConfigureAwait(false);
            }

            pump.Expected?.Writer.TryComplete();
            await pump.Completion.ConfigureAwait(false);
        }

        if (writerCancellation is not null || pump.Cancellation is not null)
        {
            throw writerCancellation ?? pump.Cancellation!;
        }

        if (argumentError is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(argumentError);
        }

        var lastTransaction = transactions.FindLast(static t => t.NotAttempted is null);
        if (lastTransaction is not null)
        {
            _resetBeforeNextMail = needsReset && lastTransaction.FinalReply is not { IsPositiveCompletion: true };
        }

        return writerFailure ?? pump.Failure;
    }

    private void Expect(ReplyPump pump, ExpectedReply expected)
    {
        pump.ExpectedSinceWait++;
        if (pump.Expected is { } channel)
        {
            if (!channel.Writer.TryWrite(expected))
            {
                throw new InvalidOperationException("The reply reader has stopped.");
            }

            return;
        }

        pump.Direct.Enqueue(expected);
        if (pump.Direct.Count > ConcurrentReadThreshold)
        {
            // A long group: from now on read while writing (the replies could otherwise fill both TCP windows).
            var concurrent = Channel.CreateUnbounded<ExpectedReply>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
            while (pump.Direct.TryDequeue(out var queued))
            {
                concurrent.Writer.TryWrite(queued);
            }

            pump.Expected = concurrent;
            StartConcurrentReader(pump);
        }
    }

    /// <summary>In its own method so that the lambda's closure is allocated only when a concurrent reader starts.</summary>
    private void StartConcurrentReader(ReplyPump pump) => pump.Completion = Task.Run(() => PumpRepliesAsync(pump));

    /// <summary>Reads, on the writer's own flow, the replies queued while no concurrent reader runs.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask DrainDirectAsync(ReplyPump pump)
    {
        while (pump.Direct.TryDequeue(out var expected))
        {
            await ReadExpectedReplyAsync(pump, expected).ConfigureAwait(false);
        }
    }

    private async Task PumpRepliesAsync(ReplyPump pump)
    {
        var reader = pump.Expected!.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var expected))
            {
                await ReadExpectedReplyAsync(pump, expected).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reads one expected reply and files it; a failure, a timeout, a cancellation or a 421 stops the reading (the rest stay unanswered).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadExpectedReplyAsync(ReplyPump pump, ExpectedReply expected)
    {
        if (pump.Stopped)
        {
            expected.Transaction?.Ready?.TrySetResult();
            return;
        }

        try
        {
            var timeout = expected.Kind is ReplyKind.EndOfData or ReplyKind.LastChunk ? _options.DataTerminationTimeout : _options.ReceiveTimeout;
            var reply = await ReadReplyAsync(timeout).ConfigureAwait(false);
            File(expected, reply);
            if (reply.IsServiceClosing)
            {
                Break("the server sent 421 (service closing transmission channel)");
                pump.Failure = ServiceClosingException(reply);
            }
        }
        catch (SmtpException ex)
        {
            pump.Failure = ex;
        }
        catch (OperationCanceledException ex)
        {
            pump.Cancellation = ex;
        }
        finally
        {
            if (pump.Stopped || expected.Kind is ReplyKind.Data or ReplyKind.LastChunk)
            {
                expected.Transaction?.Ready?.TrySetResult();
            }
        }
    }

    private static void File(ExpectedReply expected, SmtpReply reply)
    {
        var tx = expected.Transaction;
        if (tx is null)
        {
            return;
        }

        switch (expected.Kind)
        {
            case ReplyKind.Mail:
                tx.MailReply = reply;
                break;
            case ReplyKind.Recipient:
                tx.RecipientReplies[expected.Index] = reply;
                break;
            case ReplyKind.Data:
                tx.DataReply = reply;
                break;
            case ReplyKind.Chunk:
                if (reply.IsNegative)
                {
                    tx.DataReply ??= reply;
                }

                break;
            case ReplyKind.LastChunk:
            case ReplyKind.EndOfData:
                tx.FinalReply = reply;
                break;
        }
    }

    // ---- Writing a transaction ----

    /// <summary>Checks a message against the server's capabilities and builds its MAIL and RCPT parameters; sets <see cref="MailTransaction.NotAttempted"/> instead of sending what cannot succeed.</summary>
    /// <exception cref="ArgumentException">Raw parameters hold CR, LF or NUL.</exception>
    private (string? Mail, string?[] Recipients) Prepare(MailTransaction tx, bool chunking)
    {
        var envelope = tx.Envelope;
        var capabilities = Capabilities;
        Validate(envelope);

        var mail = new StringBuilder();
        var size = envelope.Size ?? tx.Message.ContentLength;
        if (size is { } declared && capabilities.MaxMessageSize is { } limit)
        {
            if (limit > 0 && declared > limit)
            {
                tx.NotAttempted = new SmtpException(SmtpErrorCode.MessageTooLarge, $"The message ({declared} bytes) is larger than the server's SIZE limit ({limit} bytes, RFC 1870); it was not sent.");
                return default;
            }

            mail.Append(CultureInfo.InvariantCulture, $" SIZE={declared}");
        }

        var body = envelope.Body;
        if (body == SmtpBodyType.Auto)
        {
            body = tx.Message.HasEightBitContent == true && capabilities.Supports8BitMime ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit;
        }

        switch (body)
        {
            case SmtpBodyType.EightBitMime when !capabilities.Supports8BitMime:
                return NotSupported(tx, "8BITMIME (RFC 6152)");
            case SmtpBodyType.EightBitMime:
                mail.Append(" BODY=8BITMIME");
                break;
            case SmtpBodyType.BinaryMime when !(capabilities.SupportsBinaryMime && chunking):
                return NotSupported(tx, "BINARYMIME with CHUNKING (RFC 3030)");
            case SmtpBodyType.BinaryMime:
                mail.Append(" BODY=BINARYMIME");
                break;
        }

        if (envelope.SmtpUtf8 || envelope.HasNonAsciiAddress)
        {
            if (!capabilities.SupportsSmtpUtf8)
            {
                return NotSupported(tx, "SMTPUTF8 (RFC 6531), needed for a non-ASCII address");
            }

            mail.Append(" SMTPUTF8");
        }

        if (envelope.RequireTls)
        {
            if (_connection?.TlsStream is null || !capabilities.SupportsRequireTls)
            {
                return NotSupported(tx, "REQUIRETLS (RFC 8689) over TLS");
            }

            mail.Append(" REQUIRETLS");
        }

        var dsn = capabilities.SupportsDsn;
        if (dsn && envelope.Return is { } ret)
        {
            mail.Append(ret == DsnReturn.Full ? " RET=FULL" : " RET=HDRS");
        }

        if (dsn && envelope.EnvelopeId is { Length: > 0 } envelopeId)
        {
            mail.Append(" ENVID=").Append(Xtext.Encode(envelopeId));
        }

        if (!string.IsNullOrWhiteSpace(envelope.MailParameters))
        {
            mail.Append(' ').Append(envelope.MailParameters.Trim());
        }

        var recipients = new string?[envelope.Recipients.Count];
        for (var i = 0; i < recipients.Length; i++)
        {
            recipients[i] = RecipientParameters(envelope.Recipients[i], dsn);
        }

        return (mail.Length == 0 ? null : mail.ToString(1, mail.Length - 1), recipients);
    }

    /// <summary>The checks on raw parameter strings (the typed parts were checked when the envelope was made).</summary>
    /// <exception cref="ArgumentException">CR, LF or NUL in a parameter string.</exception>
    private static void Validate(SmtpEnvelope envelope)
    {
        SmtpCommandWriter.ValidateArgument(envelope.MailParameters, nameof(SmtpEnvelope.MailParameters));
        SmtpCommandWriter.ValidateArgument(envelope.EnvelopeId, nameof(SmtpEnvelope.EnvelopeId));
        var recipients = envelope.Recipients;
        for (var i = 0; i < recipients.Count; i++)
        {
            var recipient = recipients[i];
            SmtpCommandWriter.ValidateArgument(recipient.Parameters, nameof(SmtpRecipient.Parameters));
            SmtpCommandWriter.ValidateArgument(recipient.OriginalRecipient, nameof(SmtpRecipient.OriginalRecipient));
        }
    }

    private static (string?, string?[]) NotSupported(MailTransaction tx, string what)
    {
        tx.NotAttempted = new SmtpException(SmtpErrorCode.ExtensionNotSupported, $"The message needs {what}, which the server does not offer (or the session lacks); it was not sent.");
        return default;
    }

    private static string? RecipientParameters(SmtpRecipient recipient, bool dsn)
    {
        if ((!dsn || (recipient.Notify == DsnNotify.Default && string.IsNullOrEmpty(recipient.OriginalRecipient)))
            && string.IsNullOrWhiteSpace(recipient.Parameters))
        {
            return null;
        }

        var parameters = new StringBuilder();
        if (dsn && recipient.Notify != DsnNotify.Default)
        {
            parameters.Append(" NOTIFY=");
            if (recipient.Notify.HasFlag(DsnNotify.Never))
            {
                parameters.Append("NEVER");
            }
            else
            {
                var first = true;
                foreach (var (flag, word) in new[] { (DsnNotify.Success, "SUCCESS"), (DsnNotify.Failure, "FAILURE"), (DsnNotify.Delay, "DELAY") })
                {
                    if (recipient.Notify.HasFlag(flag))
                    {
                        parameters.Append(first ? string.Empty : ",").Append(word);
                        first = false;
                    }
                }
            }
        }

        if (dsn && recipient.OriginalRecipient is { Length: > 0 } original)
        {
            parameters.Append(" ORCPT=rfc822;").Append(Xtext.Encode(original));
        }

        if (!string.IsNullOrWhiteSpace(recipient.Parameters))
        {
            parameters.Append(' ').Append(recipient.Parameters.Trim());
        }

        return parameters.Length == 0 ? null : parameters.ToString(1, parameters.Length - 1);
    }

    private void WriteMail(MailTransaction tx, string? parameters) => WritePathCommand(MailVerb, "MAIL FROM", tx.Envelope.ReversePath, parameters);

    private void WriteRcpt(MailTransaction tx, int index, string?[] parameters) =>
        WritePathCommand(RcptVerb, "RCPT TO", tx.Envelope.Recipients[index].Address, parameters[index]);

    /// <summary>Writes the content with dot-stuffing and the end-of-data line (DATA). Sets <see cref="MailTransaction.EndOfDataWritten"/> before the end goes out.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteDataContentAsync(MailTransaction tx, CancellationToken cancellationToken, ReplyPump? pump = null)
    {
        _dataEncoder.Reset();
        _dataEncoder.DotStuffing = true;
        _dataBytes = 0;
        var message = tx.Message;
        if (message.Bytes is { } bytes)
        {
            await WriteEncodedAsync(bytes).ConfigureAwait(false);
        }
        else
        {
            var reader = message.Reader ?? PipeReader.Create(message.Stream!, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
            try
            {
                await CopyContentAsync(reader, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                if (message.Reader is null)
                {
                    await reader.CompleteAsync().ConfigureAwait(false);
                }
            }
        }

        tx.EndOfDataWritten = true;
        _dataEncoder.Complete(Connection.Output);
        Log.MessageData(_protocolLog, _dataBytes);
        Log.ClientLine(_protocolLog, ".");
        ExpectReply("end of data");
        if (pump is not null)
        {
            Expect(pump, new ExpectedReply(tx, ReplyKind.EndOfData, 0));
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteEncodedAsync(ReadOnlySequence<byte> content)
    {
        foreach (var segment in content)
        {
            var memory = segment;
            while (!memory.IsEmpty)
            {
                var piece = memory.Length > _options.DataFlushThreshold ? memory[.._options.DataFlushThreshold] : memory;
                _dataEncoder.Write(piece.Span, Connection.Output);
                _dataBytes += piece.Length;
                memory = memory[piece.Length..];
                await FlushIfNeededAsync("sending message data").ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Writes the content as BDAT chunks (RFC 3030 §2): line ends normalised to CRLF and a final CRLF added (no
    /// dot-stuffing), or bytes unchanged for BINARYMIME. Chunks are formed as the content streams in; the last one
    /// carries LAST (possibly <c>BDAT 0 LAST</c>). With a pump the replies are read concurrently; without one each
    /// chunk's reply is awaited and a negative one stops the chunks.
    /// </summary>
    private async Task WriteChunksAsync(MailTransaction tx, ReplyPump? pump, CancellationToken cancellationToken)
    {
        var buffer = _chunkBuffer ??= new ArrayBufferWriter<byte>(_options.ChunkSize + 1024);
        buffer.ResetWrittenCount();
        var binary = tx.Envelope.Body == SmtpBodyType.BinaryMime;
        _dataEncoder.Reset();
        _dataEncoder.DotStuffing = false;
        var message = tx.Message;
        var stopped = false;

        async ValueTask AppendAsync(ReadOnlyMemory<byte> input)
        {
            while (!input.IsEmpty && !stopped)
            {
                var room = Math.Max(1, _options.ChunkSize - buffer.WrittenCount);
                var piece = input.Length > room ? input[..room] : input;
                if (binary)
                {
                    buffer.Write(piece.Span);
                }
                else
                {
                    _dataEncoder.Write(piece.Span, buffer);
                }

                input = input[piece.Length..];
                if (buffer.WrittenCount >= _options.ChunkSize)
                {
                    stopped = !await EmitChunkAsync(tx, buffer, last: false, pump).ConfigureAwait(false);
                }
            }
        }

        if (message.Bytes is { } bytes)
        {
            foreach (var segment in bytes)
            {
                await AppendAsync(segment).ConfigureAwait(false);
            }
        }
        else
        {
            try
            {
                if (message.Stream is { } stream)
                {
                    var rented = ArrayPool<byte>.Shared.Rent(64 * 1024);
                    try
                    {
                        int read;
                        while (!stopped && (read = await stream.ReadAsync(rented.AsMemory(), cancellationToken).ConfigureAwait(false)) > 0)
                        {
                            await AppendAsync(rented.AsMemory(0, read)).ConfigureAwait(false);
                        }
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(rented);
                    }
                }
                else
                {
                    var reader = message.Reader!;
                    while (!stopped)
                    {
                        var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                        if (result.IsCanceled)
                        {
                            // CancelPendingRead is not the end of the content: never send BDAT LAST for an incomplete message.
                            reader.AdvanceTo(result.Buffer.Start);
                            throw new OperationCanceledException("Reading the message content was cancelled (PipeReader.CancelPendingRead).");
                        }

                        foreach (var segment in result.Buffer)
                        {
                            await AppendAsync(segment).ConfigureAwait(false);
                        }

                        reader.AdvanceTo(result.Buffer.End);
                        if (result.IsCompleted)
                        {
                            break;
                        }
                    }
                }
            }
            catch (Exception ex) when (IsContentFailure(ex))
            {
                // Between chunks the wire is at a command boundary: abort this transaction with RSET (RFC 3030 §2
                // chunks already sent are discarded) and carry on with the rest of the batch.
                tx.ContentFailure = new SmtpException(SmtpErrorCode.ContentReadFailed, $"Reading the message content failed: {ex.Message}; the transaction was reset and nothing was delivered.", ex);
                buffer.ResetWrittenCount();
                if (pump is not null)
                {
                    WriteCommand(RsetVerb, "RSET");
                    Expect(pump, new ExpectedReply(null, ReplyKind.Reset, 0));
                }
                else
                {
                    await ResetTransactionAsync().ConfigureAwait(false);
                }

                return;
            }
        }

        if (stopped)
        {
            return;
        }

        if (!binary)
        {
            _dataEncoder.CompleteLine(buffer);
        }

        tx.EndOfDataWritten = true;
        await EmitChunkAsync(tx, buffer, last: true, pump).ConfigureAwait(false);
    }

    /// <summary>Writes one BDAT chunk; without a pump, reads its reply and returns false when it is negative.</summary>
    private async ValueTask<bool> EmitChunkAsync(MailTransaction tx, ArrayBufferWriter<byte> buffer, bool last, ReplyPump? pump)
    {
        var output = Connection.Output;
        var length = buffer.WrittenCount;
        var header = last ? $"BDAT {length} LAST" : $"BDAT {length}";
        SmtpCommandWriter.WriteLine(output, header);
        output.Write(buffer.WrittenSpan);
        buffer.ResetWrittenCount();
        ExpectReply("BDAT");
        Log.ClientLine(_protocolLog, header);
        Log.MessageData(_protocolLog, length);
        if (pump is not null)
        {
            Expect(pump, new ExpectedReply(tx, last ? ReplyKind.LastChunk : ReplyKind.Chunk, 0));
            await FlushIfNeededAsync("sending BDAT chunks").ConfigureAwait(false);
            return !pump.Stopped;
        }

        var reply = BreakIfServiceClosing(await FlushAndReadAsync(last ? _options.DataTerminationTimeout : _options.ReceiveTimeout, "sending BDAT").ConfigureAwait(false));
        if (last)
        {
            tx.FinalReply = reply;
            return true;
        }

        if (reply.IsNegative)
        {
            // RFC 3030 §2: after a negative reply to BDAT, no further chunk of this transaction may be sent.
            tx.DataReply ??= reply;
            return false;
        }

        return true;
    }
}
