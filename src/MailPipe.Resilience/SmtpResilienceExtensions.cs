using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace MailPipe.Resilience;

/// <summary>
/// Sends a message through a Polly pipeline so that each retry goes only to the recipients still to do, and returns
/// one merged <see cref="SmtpSendResult"/>.
/// </summary>
public static class SmtpResilienceExtensions
{
    private static readonly Lazy<ResiliencePipeline<SmtpSendResult>> DefaultRetry = new(() =>
        new ResiliencePipelineBuilder<SmtpSendResult>().AddRetry(new SmtpRetryStrategyOptions()).Build());

    /// <summary>
    /// Sends <paramref name="message"/> with <paramref name="send"/> inside <paramref name="pipeline"/>: the first
    /// attempt to every recipient, each retry only to the recipients refused transiently (4yz) or not reached because
    /// of a transient failure — never again to one that accepted the message, never after an unknown outcome unless
    /// <see cref="SmtpRetryStrategyOptions.RetryUnknownOutcome"/> is set.
    /// </summary>
    /// <remarks>
    /// <para>The retry decision comes from the pipeline's retry strategy: with <see cref="SmtpRetryStrategyOptions"/>
    /// (and its default <c>ShouldHandle</c>) it asks this send what is left. <paramref name="send"/> gets a message for
    /// the recipients of the attempt (<see cref="SmtpMessage.WithRecipients"/>: same content source, replayed) and the
    /// attempt's token (an attempt timeout cancels it). Around a bare <see cref="AsyncSmtpSession"/> it is where the
    /// caller reconnects when <c>!session.IsConnected</c>; an <see cref="SmtpException"/> it throws (a failed connect,
    /// TLS handshake, EHLO or AUTH) counts as a message not sent, classified as usual — so throw it only before the
    /// message goes out.</para>
    /// <para>An attempt cancelled by a timeout strategy before its end of data is a transient
    /// <see cref="SmtpErrorCode.TimedOut"/> (not sent); after it, <see cref="SmtpSendOutcome.Unknown"/>, which is not
    /// retried by default. When the total timeout or an open circuit stops the retries, the result merges the attempts
    /// made when one of them got a reply (to MAIL, a recipient or the data) or wrote its end of data; when none did (no attempt could be made, each
    /// one threw a transient failure, or each one was not sent, such as a refused connect), the result is
    /// <see cref="SmtpSendOutcome.NotSent"/> with a transient <see cref="SmtpErrorCode.TimedOut"/> or
    /// <see cref="SmtpErrorCode.ServiceNotAvailable"/> (Polly's exception inside; the last attempt's failure in its message),
    /// whether the timeout ran out during an attempt or during a retry's delay. When an attempt throws
    /// (such as <see cref="ObjectDisposedException"/> from a sender disposed during the delay) after an earlier one wrote
    /// its end of data, the result merges the attempts made instead of the exception.</para>
    /// <para>One limit of a single merged result: when one attempt is accepted and another, before or after it, ends
    /// with an unknown outcome (its end of data written, no reply), the unknown attempt's recipients keep their 250 to
    /// RCPT and the merged outcome is <see cref="SmtpSendOutcome.Accepted"/>; they may or may not have the message, and
    /// are not retried. (An unknown attempt's recipients refused with 4yz were not in its transaction: they are retried,
    /// and their acceptance makes the merged outcome <see cref="SmtpSendOutcome.Accepted"/>.)</para>
    /// </remarks>
    /// <param name="pipeline">The pipeline (for example <see cref="SmtpResiliencePipelines.CreateStandard"/>); its retry strategy should be an <see cref="SmtpRetryStrategyOptions"/>.</param>
    /// <param name="message">The message; its content must be replayable for a retry (bytes, a seekable stream, <see cref="SmtpMessage.FromWriter"/>), else a retry returns <see cref="SmtpErrorCode.ContentNotReplayable"/>, which is not retried.</param>
    /// <param name="send">Sends one attempt's message, such as <c>sender.SendAsync</c> or a delegate around a session.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <returns>
    /// The merged result: each recipient with the reply of the attempt that decided it, <see cref="SmtpSendOutcome.Accepted"/>
    /// if any attempt was accepted (then the replies to MAIL, DATA and the end of data are that attempt's), else
    /// <see cref="SmtpSendOutcome.Unknown"/> if any attempt's outcome is unknown, else the last attempt's outcome;
    /// <see cref="SmtpSendResult.Attempts"/> says how many attempts were made. With one attempt, its result as it came.
    /// </returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="SmtpOutcomeUnknownException"><paramref name="cancellationToken"/> was cancelled after an attempt wrote its end of data; <c>Result</c> merges the attempts.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before any end of data was written.</exception>
    public static async Task<SmtpSendResult> SendWithRetryAsync(
        this ResiliencePipeline<SmtpSendResult> pipeline,
        SmtpMessage message,
        Func<SmtpMessage, CancellationToken, Task<SmtpSendResult>> send,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(send);
        var state = new RemainderSend(message, send, cancellationToken);
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(RemainderSend.Key, state);
        try
        {
            var outcome = await pipeline.ExecuteOutcomeAsync(
                static async (ctx, s) =>
                {
                    try
                    {
                        return Outcome.FromResult(await s.AttemptAsync(ctx.CancellationToken).ConfigureAwait(ctx.ContinueOnCapturedContext));
                    }
                    catch (Exception ex)
                    {
                        return Outcome.FromException<SmtpSendResult>(ex);
                    }
                },
                context,
                state).ConfigureAwait(false);

            if (outcome.Exception is null)
            {
                return state.Attempts > 0 ? state.Merged() : outcome is { Result: { } only } ? only : throw new InvalidOperationException("The pipeline ended with neither a result nor an exception.");
            }

            var exception = outcome.Exception;
            if (cancellationToken.IsCancellationRequested && exception is OperationCanceledException)
            {
                if (exception is SmtpOutcomeUnknownException)
                {
                    outcome.ThrowIfException();
                }

                if (state.MayHaveDelivered)
                {
                    throw new SmtpOutcomeUnknownException(state.Merged(), exception, cancellationToken);
                }

                outcome.ThrowIfException();
            }

            switch (exception)
            {
                case TimeoutRejectedException or BrokenCircuitException when state.HasResult && (state.MayHaveDelivered || GotReply(state.Merged())):
                    return state.Merged();
                case TimeoutRejectedException:
                    // No attempt was made, each one threw a transient failure (retried, so taken as not sent), or each
                    // one was not sent (a refused connect): the total timeout is why the retries stopped, whenever it ran out.
                    return SmtpSendResult.NotSent(message.Envelope, new SmtpException(SmtpErrorCode.TimedOut, "The total timeout ran out before an attempt got a reply; the message was not sent." + LastFailure(state), exception))
                        .WithAttempts(Math.Max(1, state.Attempts));
                case BrokenCircuitException:
                    return SmtpSendResult.NotSent(message.Envelope, new SmtpException(SmtpErrorCode.ServiceNotAvailable, "The circuit breaker for this server is open after repeated failures; the message was not sent." + LastFailure(state), exception) { IsTransient = true })
                        .WithAttempts(Math.Max(1, state.Attempts));
            }

            if (state.MayHaveDelivered)
            {
                // A later attempt threw (the sender disposed during the delay, a failing delegate): the exception alone would
                // hide what an earlier attempt delivered, and a resend would deliver it twice.
                return state.Merged();
            }

            outcome.ThrowIfException();
            throw new InvalidOperationException("Unreachable.");
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>
    /// Sends <paramref name="message"/> through <paramref name="sender"/> with retries that go only to the recipients
    /// still to do (see <see cref="SendWithRetryAsync(ResiliencePipeline{SmtpSendResult}, SmtpMessage, Func{SmtpMessage, CancellationToken, Task{SmtpSendResult}}, CancellationToken)"/>).
    /// </summary>
    /// <param name="sender">The sender.</param>
    /// <param name="message">The message (replayable content for a retry).</param>
    /// <param name="pipeline">The pipeline; <see langword="null"/> for a retry with the defaults of <see cref="SmtpRetryStrategyOptions"/>.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <returns>The merged result, with <see cref="SmtpSendResult.Attempts"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sender"/> or <paramref name="message"/> is null.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (an <see cref="SmtpOutcomeUnknownException"/> when an end of data had been written).</exception>
    public static Task<SmtpSendResult> SendWithRetryAsync(this ISmtpSender sender, SmtpMessage message, ResiliencePipeline<SmtpSendResult>? pipeline = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return (pipeline ?? DefaultRetry.Value).SendWithRetryAsync(message, sender.SendAsync, cancellationToken);
    }

    /// <summary>
    /// Wraps <paramref name="sender"/> so that every <see cref="ISmtpSender.SendAsync"/> runs through
    /// <paramref name="pipeline"/> with retries only to the recipients still to do. The non-DI way to attach resilience.
    /// </summary>
    /// <param name="sender">The sender to wrap; disposed with the wrapper.</param>
    /// <param name="pipeline">The pipeline; one per server, so that its circuit breaker is per server.</param>
    /// <returns>The wrapping sender.</returns>
    public static ISmtpSender WithResilience(this ISmtpSender sender, ResiliencePipeline<SmtpSendResult> pipeline) => new ResilientSmtpSender(sender, pipeline);

    /// <summary>
    /// Wraps <paramref name="sender"/> in the standard pipeline (total timeout, retry to the recipients still to do,
    /// circuit breaker, attempt timeout): <c>ISmtpSender sender = new SmtpSender(options).WithStandardResilience();</c>
    /// </summary>
    /// <param name="sender">The sender to wrap (one server); disposed with the wrapper.</param>
    /// <param name="configure">Changes the default options; <see langword="null"/> for the defaults.</param>
    /// <param name="timeProvider">The time of the pipeline's delays and timeouts; <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <returns>The wrapping sender.</returns>
    public static ISmtpSender WithStandardResilience(this ISmtpSender sender, Action<SmtpStandardResilienceOptions>? configure = null, TimeProvider? timeProvider = null)
    {
        var options = new SmtpStandardResilienceOptions();
        configure?.Invoke(options);
        return new ResilientSmtpSender(sender, SmtpResiliencePipelines.CreateStandard(options, timeProvider));
    }

    /// <summary>Whether a merged result holds a reply of the server (to MAIL, a recipient, or the data): then it, not the pipeline's reason to stop, is what the caller needs.</summary>
    private static bool GotReply(SmtpSendResult result) =>
        result.MailReply is not null || result.DataReply is not null || result.FinalReply is not null || result.Recipients.Any(r => r.Reply is not null);

    /// <summary>The last attempt's failure, for the message of a result that says why the retries stopped.</summary>
    private static string LastFailure(RemainderSend state) =>
        state.HasResult && state.Merged().Exception is { } last ? " The last attempt: " + last.Message : string.Empty;
}
