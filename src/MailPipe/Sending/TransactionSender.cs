using System.Runtime.CompilerServices;
using MailPipe.Protocol;
using MailPipe.Transmission;

namespace MailPipe.Sending;

/// <summary>
/// THE transaction sender: one loop for pipelined (RFC 2920) and one-command-at-a-time sending (a window of one), over
/// the channel (<see cref="SmtpChannel"/>). It owns the window, "the next transaction starts with RSET", the reusable
/// buffers and bodies, and why a call stopped; it reports each transaction's result as soon as it is decided and checks
/// each message's own cancellation before that transaction's first byte. The session's <c>SendAsync</c>,
/// <c>SendBatchAsync</c> and <c>SendBatchStreamingAsync</c> are calls into it. One per session, one call at a time.
/// </summary>
internal sealed partial class TransactionSender
{
    private readonly ITransactionHost _host;
    private readonly SmtpChannel _channel;
    private readonly SmtpSessionOptions _options;
    private readonly ChunkedBody _chunks;

    public TransactionSender(ITransactionHost host, SmtpSessionOptions options)
    {
        _host = host;
        _channel = host.Channel;
        _options = options;
        Data = new DataBody(_channel, options);
        _chunks = new ChunkedBody(this, _channel, options);
    }

    /// <summary>The DATA body, also used by the session's own DATA commands.</summary>
    public DataBody Data { get; }

    /// <summary>
    /// Whether the server may still hold a mail transaction (the last one did not end with a positive final reply): the
    /// next transaction starts with RSET. Postfix, for one, keeps the transaction open after a refusal at the end of
    /// data, answering the next MAIL with 503 (and its 3.7 smtpd crashes on MAIL after a refused BDAT LAST). The
    /// session's own MAIL and RSET commands set it too.
    /// </summary>
    public bool NeedsReset { get; set; }

    /// <summary>
    /// Whether, with DATA, a transaction waits for the previous one's final reply instead of following its end of data
    /// in the same flush: set when the server answered such commands with 503 (Haraka 3.3.4's defence against SMTP
    /// smuggling), or from the start when the EHLO reply is Courier-MTA's (it discards such commands unanswered). Kept
    /// for the session's life.
    /// </summary>
    public bool WaitsAfterEndOfData { get; set; }

    /// <summary>
    /// Whether the last MAIL on this connection was the caller's own (the session's <c>MailFromAsync</c>): a transaction
    /// the caller opened is the caller's to end; one a send left open is ended with RSET before the caller's next MAIL.
    /// </summary>
    public bool CallerOpenedTransaction { get; set; }

    /// <summary>Sends one message (checked by the caller); a cancellation after its end of data is <see cref="SmtpOutcomeUnknownException"/> unless the replies read decided the outcome.</summary>
    public async Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken)
    {
        // The batch path for one message, without the one-element list, the async iterator and the results array.
        var tx = new MailTransaction(message);
        SmtpException? failure;
        try
        {
            failure = await RunAsync(tx, messages: null, batch: null, validated: true, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (tx.EndOfDataWritten && tx.FinalReply is null)
        {
            // The replies read may already rule delivery out (MAIL or every recipient refused): that refusal is the
            // answer, as the shared sender gives it; only an outcome still open is unknown.
            var result = tx.ToResult(ex);
            return result.Outcome == SmtpSendOutcome.Unknown ? throw new SmtpOutcomeUnknownException(result, ex, ex.CancellationToken) : result;
        }
        catch (Exception ex) when (tx.Telemetry is not null || tx.Message.WriterRun is not null)
        {
            // Cancelled before its end of data, or bad input found before MAIL: the transaction still ends (its span
            // and measurements as NotSent, a content writer's run released); the exception is the caller's answer.
            tx.ToResult(ex);
            throw;
        }

        return tx.ToResult(failure);
    }

    /// <summary>
    /// Checks every message of a batch before anything is sent: the one place the raw parameter strings of a list are
    /// checked (an async sequence's are checked as each message is prepared).
    /// </summary>
    /// <exception cref="ArgumentException">A message is null, or its parameters hold CR, LF or NUL.</exception>
    public static IReadOnlyList<SmtpMessage> Checked(IEnumerable<SmtpMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages as IReadOnlyList<SmtpMessage> ?? [.. messages];
        for (var i = 0; i < list.Count; i++)
        {
            var message = list[i] ?? throw new ArgumentNullException(nameof(messages), NullMessageText(i));
            MailParameters.Validate(message.Envelope);
        }

        return list;
    }

    /// <summary>The message of the error for a null message in a batch's list: its position, and that nothing was sent (the list itself is not null).</summary>
    /// <param name="index">The position of the null message in the list.</param>
    /// <returns>The text of the <see cref="ArgumentNullException"/>.</returns>
    internal static string NullMessageText(int index) =>
        $"messages[{index}] is null: every message of a batch must be an SmtpMessage; nothing was sent.";

    /// <summary>Sends a batch: a list from <see cref="Checked"/>, or an async sequence; the results when the call ends.</summary>
    public async Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IReadOnlyList<SmtpMessage>? list, IAsyncEnumerable<SmtpMessage>? messages, CancellationToken cancellationToken)
    {
        var source = messages ?? ToAsync(list ?? throw new ArgumentNullException(nameof(messages)));
        return await RunBatchAsync(source, new BatchResults(list?.Count ?? 0, streaming: false), validated: list is not null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends a batch and yields each result, in message order, as soon as it is known.</summary>
    public async IAsyncEnumerable<SmtpSendResult> StreamAsync(IReadOnlyList<SmtpMessage>? list, IAsyncEnumerable<SmtpMessage>? messages, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var batch = new BatchResults(list?.Count ?? 0, streaming: true);
        var run = RunBatchAsync(messages ?? ToAsync(list!), batch, validated: list is not null, cancellationToken);
        var reader = batch.Stream;
        var finished = false;
        try
        {
            while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                while (reader.TryRead(out var result))
                {
                    yield return result;
                }
            }

            finished = true;
        }
        finally
        {
            if (!finished)
            {
                // The caller left early: no more messages are taken, and the ones taken end properly (never half-sent);
                // their outcome is no longer asked for.
                batch.Abandoned = true;
                try
                {
                    await run.ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SmtpException or ArgumentException or InvalidOperationException || ex == batch.SequenceError)
                {
                    // Nobody reads the rest of this enumeration.
                }
            }
        }

        // The results are all out; what ended the call (a cancellation, bad input, misuse) is thrown now.
        await run.ConfigureAwait(false);
    }

    /// <summary>Sends a batch into <paramref name="batch"/>; a cancellation comes out as <see cref="SmtpBatchCanceledException"/> with every result so far.</summary>
    private async Task<IReadOnlyList<SmtpSendResult>> RunBatchAsync(IAsyncEnumerable<SmtpMessage> messages, BatchResults batch, bool validated, CancellationToken cancellationToken)
    {
        try
        {
            var failure = await RunAsync(single: null, messages, batch, validated, cancellationToken).ConfigureAwait(false);
            return batch.Complete(failure);
        }
        catch (OperationCanceledException ex)
        {
            throw new SmtpBatchCanceledException(batch.Complete(ex), ex, ex.CancellationToken);
        }
        catch (ArgumentException ex) when (!batch.IsStreaming)
        {
            // A message of an async sequence was invalid after earlier ones were sent: their results go with the error
            // (a streaming call has yielded them already).
            throw new SmtpBatchArgumentException(batch.Complete(null), ex);
        }
        catch (Exception ex) when (IsUnexpected(ex))
        {
            // A defect or an exhausted resource (OutOfMemoryException); the connection was closed. The results not
            // decided yet say why (a pool completes its callers with them) before the exception goes to the caller.
            batch.Complete(_writerFailure ?? UnexpectedFailure(ex));
            throw;
        }
        finally
        {
            // Bad input or misuse: the results decided so far are out; the rest end with the call.
            batch.Complete(null);
        }
    }

    /// <summary>One send call as one operation of the channel, pipelined when the server and the options allow.</summary>
    /// <returns>Why the call stopped early (transport failure, 421, content read failure), if it did.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<SmtpException?> RunAsync(MailTransaction? single, IAsyncEnumerable<SmtpMessage>? messages, BatchResults? batch, bool validated, CancellationToken cancellationToken)
    {
        using var operation = _host.BeginSend(cancellationToken);
        try
        {
            var capabilities = _host.Capabilities;
            _chunking = _options.UseChunking && capabilities.SupportsChunking;
            _pipelining = _options.UsePipelining && capabilities.SupportsPipelining;
            WaitsAfterEndOfData |= capabilities.IsCourier; // it discards the commands that arrive with an end of data
            _validated = validated;
            return await SendCallAsync(single, messages, batch, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Whatever was cancelled (our I/O, the caller's content source), a transaction may be half-sent: close
            // the connection so that it can never be completed, as for every cancellation.
            _channel.Break("cancelled while sending");
            throw;
        }
    }

    private static ListSource ToAsync(IReadOnlyList<SmtpMessage> messages) => new(messages);

    /// <summary>
    /// A list as the call loop's sequence: each <c>MoveNextAsync</c> completes at once, without the state machine of an
    /// async iterator (a per-message cost of <c>SendBatchAsync</c>).
    /// </summary>
    private sealed class ListSource(IReadOnlyList<SmtpMessage> messages) : IAsyncEnumerable<SmtpMessage>, IAsyncEnumerator<SmtpMessage>
    {
        private int _index = -1;

        public SmtpMessage Current => messages[_index];

        public IAsyncEnumerator<SmtpMessage> GetAsyncEnumerator(CancellationToken cancellationToken = default) => this;

        public ValueTask<bool> MoveNextAsync() => new(++_index < messages.Count);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
