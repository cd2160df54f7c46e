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

    /// <summary>Cancelled once the inner sender is disposed: ends the retry delays of the messages still waiting.</summary>
    private readonly CancellationTokenSource _disposed = new();

    /// <summary>Completed when the one disposal is over: the other Dispose and DisposeAsync calls wait for it.</summary>
    private readonly TaskCompletionSource _disposalDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposeStarted;

    /// <summary>Wraps a sender.</summary>
    /// <param name="inner">The sender (one server); disposed with this one (by <see cref="Dispose"/> with its own <see cref="IDisposable.Dispose"/> when it has one).</param>
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
        using var linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token) : null;
        try
        {
            return await Pipeline.SendWithRetryAsync(message, _inner.SendAsync, linked?.Token ?? _disposed.Token).ConfigureAwait(false);
        }
        catch (SmtpOutcomeUnknownException unknown) when (_disposed.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // Disposed during a retry's delay after an attempt wrote its end of data: what it delivered, not a resend.
            return unknown.Result;
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
    /// and the results are returned.</remarks>
    public async Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages as IReadOnlyList<SmtpMessage> ?? [.. messages];
        foreach (var message in list)
        {
            ArgumentNullException.ThrowIfNull(message, nameof(messages));

            // As SmtpSender.SendBatchAsync: an envelope that cannot be written throws before any message is sent (the
            // messages start at once below, so a later one's ArgumentException would hide an earlier one delivered).
            AsyncSmtpSession.ValidateEnvelope(message.Envelope);
        }

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
                catch (SmtpOutcomeUnknownException ex)
                {
                    (first, results[i]) = (first ?? ex, ex.Result);
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
    /// <remarks>The inner sender is disposed first (its batches in flight finish or are cancelled as it says); then the
    /// messages waiting for a retry end (see <see cref="SendAsync"/>). Idempotent: a call while the disposal is under way
    /// (this method or <see cref="Dispose"/>, on another thread) completes when that disposal is over.</remarks>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposeStarted, 1) != 0)
        {
            await _disposalDone.Task.ConfigureAwait(false);
            return;
        }

        try
        {
            await _inner.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            await _disposed.CancelAsync().ConfigureAwait(false);
            _disposalDone.TrySetResult();
        }
    }

    /// <summary>
    /// Disposes as <see cref="DisposeAsync"/> does, blocking the calling thread until it is done: the inner sender with
    /// its own <see cref="IDisposable.Dispose"/> when it has one (<see cref="SmtpSender.Dispose"/>: QUIT, then up to
    /// <see cref="SmtpSenderOptions.DisposeTimeout"/> for batches in flight), else its <see cref="IAsyncDisposable.DisposeAsync"/>
    /// run on the thread pool and waited for; then the messages waiting for a retry end (see <see cref="SendAsync"/>).
    /// Never needs the caller's <see cref="SynchronizationContext"/>. Idempotent, as <see cref="DisposeAsync"/>.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposeStarted, 1) != 0)
        {
            // Another call's disposal, completed on its own thread: waiting for it needs nothing of this one's.
            _disposalDone.Task.GetAwaiter().GetResult();
            return;
        }

        try
        {
            if (_inner is IDisposable disposable)
            {
                disposable.Dispose();
            }
            else
            {
                // Blocking is this method's contract; on the thread pool, the inner DisposeAsync needs no context of the caller's.
                Task.Run(() => _inner.DisposeAsync().AsTask()).GetAwaiter().GetResult();
            }
        }
        finally
        {
            // As DisposeAsync: the retry delays end on the thread pool, not in callbacks run inline on the caller's thread.
            _disposed.CancelAsync().GetAwaiter().GetResult();
            _disposalDone.TrySetResult();
        }
    }
}
