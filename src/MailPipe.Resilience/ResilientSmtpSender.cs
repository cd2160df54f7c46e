using MailPipe.Sending;
using Polly;

namespace MailPipe.Resilience;

/// <summary>
/// An <see cref="ISmtpSender"/> that sends every message through a Polly pipeline, each retry only to the recipients
/// still to do (<see cref="SmtpResilienceExtensions.SendWithRetryAsync(ResiliencePipeline{SmtpSendResult}, SmtpMessage, Func{SmtpMessage, CancellationToken, Task{SmtpSendResult}}, CancellationToken)"/>).
/// Results carry <see cref="SmtpSendResult.Attempts"/>. Made by <see cref="SmtpResilienceExtensions.WithResilience"/>
/// and <see cref="SmtpResilienceExtensions.WithStandardResilience"/>, or by the DI registration. Disposable both ways,
/// as <see cref="SmtpSender"/> is: <see cref="DisposeAsync"/>, or <see cref="Dispose"/> for <c>using var</c> and
/// containers disposed synchronously.
/// </summary>
public sealed class ResilientSmtpSender : ISmtpSender, IDisposable
{
    private readonly ISmtpSender _inner;

    /// <summary>Cancelled when the disposal starts: ends the retry delays of the messages still waiting (never an attempt in flight: <see cref="AttemptShield"/>).</summary>
    private readonly CancellationTokenSource _disposed = new();

    /// <summary>Completed when the one disposal is over: every DisposeAsync call awaits it.</summary>
    private readonly TaskCompletionSource _disposalDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposeStarted;

    /// <summary>Wraps a sender.</summary>
    /// <param name="inner">The sender (one server); disposed with this one (by <see cref="Dispose"/> with its own <see cref="IDisposable.Dispose"/> when it has one, then its <see cref="IAsyncDisposable.DisposeAsync"/> in the background).</param>
    /// <param name="pipeline">The pipeline.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public ResilientSmtpSender(ISmtpSender inner, ResiliencePipeline<SmtpSendResult> pipeline)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(pipeline);
        _inner = inner;
        Pipeline = pipeline;
    }

    /// <summary>The pipeline every send runs through.</summary>
    public ResiliencePipeline<SmtpSendResult> Pipeline { get; }

    /// <summary>The wrapped sender.</summary>
    public ISmtpSender InnerSender => _inner;

    /// <inheritdoc/>
    /// <remarks>The result merges the attempts (see <see cref="SmtpSendResult.Attempts"/>); a message whose outcome is unknown is not sent again unless the retry opts in.
    /// A message waiting for a retry when this sender is disposed ends then: with the merged result when an attempt wrote its end of data, else with <see cref="ObjectDisposedException"/>.</remarks>
    public async Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        using var shield = new AttemptShield(cancellationToken, _disposed.Token);
        try
        {
            return await Pipeline.SendWithRetryAsync(message, (m, ct) => shield.AttemptAsync(_inner, m, ct), shield.Token).ConfigureAwait(false);
        }
        catch (SmtpOutcomeUnknownException unknown) when (_disposed.IsCancellationRequested && !cancellationToken.IsCancellationRequested && unknown is { Result: var delivered })
        {
            // Disposed during a retry's delay after an attempt wrote its end of data: what it delivered, not a resend.
            return delivered;
        }
        catch (OperationCanceledException canceled) when (_disposed.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new ObjectDisposedException("The sender was disposed while the message waited for a retry; the message was not sent.", canceled);
        }
    }

    /// <inheritdoc/>
    /// <remarks>Each message is sent as by <see cref="SendAsync"/>, all at once, so that the inner sender still batches them on its connections.
    /// When <paramref name="cancellationToken"/> is cancelled, <see cref="SmtpBatchCanceledException"/> is thrown once every message is done,
    /// with one result per message: the decided ones as they are, <see cref="SmtpSendOutcome.Unknown"/> (merged) for those whose end of
    /// data was written, <see cref="SmtpSendOutcome.NotSent"/> for the others. When the inner sender is disposed while the batch is
    /// under way, the messages it dropped are <see cref="SmtpSendOutcome.NotSent"/> with the <see cref="ObjectDisposedException"/>
    /// and the results are returned; on a sender already disposed the call throws <see cref="ObjectDisposedException"/>, as
    /// <see cref="SendAsync"/> does.</remarks>
    public async Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages as IReadOnlyList<SmtpMessage> ?? [.. messages];
        for (var i = 0; i < list.Count; i++)
        {
            // As SmtpSender.SendBatchAsync: an envelope that cannot be written throws before any message is sent (the
            // messages start at once below, so a later one's ArgumentException would hide an earlier one delivered).
            AsyncSmtpSession.ValidateEnvelope((list[i] ?? throw new ArgumentNullException(nameof(messages), TransactionSender.NullMessageText(i))).Envelope);
        }

        // Disposed before the call: thrown, as ISmtpSender says (the results-with-ObjectDisposedException below are for
        // a disposal while the batch is under way, not a batch started on a disposed sender).
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);

        var tasks = list.Select(m => SendAsync(m, cancellationToken)).ToArray();
        try
        {
            return await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (Exception stop) when (stop is ObjectDisposedException || (stop is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            // One message's cancellation, or the inner sender's disposal under way, alone would lose the others'
            // outcomes (an accepted or unknown one sent again).
            var results = new SmtpSendResult[tasks.Length];
            OperationCanceledException? first = null;
            for (var i = 0; i < tasks.Length; i++)
            {
                try
                {
                    results[i] = await tasks[i].ConfigureAwait(false);
                }
                catch (SmtpOutcomeUnknownException ex) when (ex is { Result: var unknown })
                {
                    (first, results[i]) = (first ?? ex, unknown);
                }
                catch (OperationCanceledException ex)
                {
                    (first, results[i]) = (first ?? ex, SmtpSendResult.Create(list[i].Envelope, SmtpSendOutcome.NotSent));
                }
                catch (ObjectDisposedException disposed)
                {
                    results[i] = new SmtpSendResult(list[i].Envelope, SmtpSendOutcome.NotSent, null, [.. list[i].Envelope.Recipients.Select(static r => new SmtpRecipientResult(r, null))], null, null, disposed);
                }
            }

            return cancellationToken.IsCancellationRequested ? throw new SmtpBatchCanceledException(results, first, cancellationToken) : results;
        }
    }

    /// <inheritdoc/>
    /// <remarks>The messages waiting for a retry end at once (see <see cref="SendAsync"/>); an attempt in flight is left to
    /// the inner sender, which is disposed next (its batches in flight finish or are cancelled as it says; the attempt's
    /// caller gets that result, never a retry). Completes when the inner sender's <see cref="IAsyncDisposable.DisposeAsync"/>
    /// does (for <see cref="SmtpSender"/>: every connection closed). Idempotent: a call after <see cref="Dispose"/> or
    /// while the disposal is under way completes when that disposal is over.</remarks>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposeStarted, 1) == 0)
        {
            // The token at once, its callbacks (the ends of the retry delays) on the thread pool.
            var retryWaitsEnded = _disposed.CancelAsync();
            _ = FinishDisposalAsync(retryWaitsEnded);
        }

        return new(_disposalDone.Task);
    }

    /// <summary>
    /// Starts the disposal without waiting for it, as <see cref="SmtpSender.Dispose"/> does: before it returns, the
    /// messages waiting for a retry are told to end (their delays end on the thread pool, with the merged result when
    /// an attempt wrote its end of data, else <see cref="ObjectDisposedException"/>), and the inner sender is disposed
    /// with its own <see cref="IDisposable.Dispose"/> when it has one (<see cref="SmtpSender.Dispose"/>: new sends throw,
    /// messages waiting for a connection fail, the rest in the background). An attempt in flight is never cancelled by
    /// this: the inner sender's disposal lets it finish (up to <see cref="SmtpSenderOptions.DisposeTimeout"/>) and its
    /// caller gets that result. Then, in the background, the inner sender's <see cref="IAsyncDisposable.DisposeAsync"/>
    /// (for <see cref="SmtpSender"/> after its Dispose: the end of that same disposal; the only disposal of an inner
    /// sender that is not <see cref="IDisposable"/>), whose failure is kept for a later <see cref="DisposeAsync"/>, never
    /// left unobserved. Dispose waits for none of it, nor for a connection to close: prefer <c>await using</c>
    /// (<see cref="DisposeAsync"/>), which does. Never blocks on asynchronous work nor needs the caller's
    /// <see cref="SynchronizationContext"/>. Idempotent and thread-safe, as <see cref="DisposeAsync"/>; a Dispose that
    /// finds the disposal started returns at once.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposeStarted, 1) != 0)
        {
            return;
        }

        var retryWaitsEnded = _disposed.CancelAsync();
        try
        {
            (_inner as IDisposable)?.Dispose();
        }
        finally
        {
            // On the thread pool: nothing of the inner sender's DisposeAsync runs on (or posts to) the caller's thread.
            _ = Task.Run(() => FinishDisposalAsync(retryWaitsEnded));
        }
    }

    /// <summary>The inner sender's DisposeAsync and the ends of the retry waits; completes the one disposal. Never throws.</summary>
    private async Task FinishDisposalAsync(Task retryWaitsEnded)
    {
        try
        {
            await _inner.DisposeAsync().ConfigureAwait(false);
            await retryWaitsEnded.ConfigureAwait(false);
            _disposalDone.TrySetResult();
        }
        catch (Exception ex)
        {
            // For whoever awaits DisposeAsync; marked observed here (reading Task.Exception does), since after Dispose
            // nobody may await it and the failure must not surface as an unobserved task exception.
            _disposalDone.TrySetException(ex);
            _ = _disposalDone.Task.Exception;
        }
    }
}
