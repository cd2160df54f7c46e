using MailPipe.Protocol;
using MailPipe.Transmission;

namespace MailPipe.Authentication;

/// <summary>
/// The AUTH exchange of RFC 4954 §4 for one SASL mechanism over the channel: <c>AUTH mechanism [initial-response]</c>
/// (an initial response too long for the 12,288-octet line waits for an empty 334), then for each 334 reply the
/// decoded challenge goes to the mechanism and its answer goes back in base64, or <c>*</c> to cancel; the first reply
/// that is not 334 ends it. A refused password is a returned reply (535), never an exception.
/// </summary>
internal static class SaslExchange
{
    /// <summary>Upper bound on 334 rounds in one exchange, against a server that never ends it.</summary>
    public const int MaxRounds = 16;

    /// <summary>Runs the exchange; the caller has started the operation and owns (disposes) the mechanism. The transcript shows 334 challenges as <c>334 &lt;redacted&gt;</c> while it runs.</summary>
    /// <param name="channel">The channel, inside the caller's operation.</param>
    /// <param name="mechanism">The mechanism to run.</param>
    /// <param name="replyTimeout">The time each reply may take (<see cref="SmtpSessionOptions.ReceiveTimeout"/>).</param>
    /// <returns>The final reply: 235 on success, 535, 501 after <c>*</c>, 504, 530/538, or any other reply.</returns>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/> for a challenge that is not base64, too many rounds, or a challenge the mechanism cannot answer (<see cref="SaslMechanism.CancelReason"/>): the exchange is cancelled with <c>*</c> first and after the server's 501 the connection stays open. For a server that failed verification (a wrong SCRAM server signature, or a success without one): the connection is broken. Transport failures and timeouts: the connection is broken.</exception>
    /// <exception cref="OperationCanceledException">The caller's token fired; the connection is broken.</exception>
    /// <remarks>An exception of the mechanism before anything was written (a token provider's) leaves the connection as it was; one thrown while answering a challenge breaks it (the exchange is half done) and reaches the caller unchanged.</remarks>
    public static async Task<SmtpReply> RunAsync(SmtpChannel channel, SaslMechanism mechanism, TimeSpan replyTimeout)
    {
        try
        {
            return await ExchangeAsync(channel, mechanism, replyTimeout).ConfigureAwait(false);
        }
        finally
        {
            channel.RedactServerText = false;
        }
    }

    private static async Task<SmtpReply> ExchangeAsync(SmtpChannel channel, SaslMechanism mechanism, TimeSpan replyTimeout)
    {
        // The caller's code (a token provider, a challenge handler) also stops when the connection is closed meanwhile (DisconnectAsync, Dispose).
        var closed = channel.ConnectionClosed;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(channel.SendToken, closed);
        var token = linked.Token;
        ReadOnlyMemory<byte>? initial;
        try
        {
            initial = await CallerCodeAsync(mechanism.GetInitialResponseAsync(token), token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SmtpException || (ex is OperationCanceledException && (channel.CallerToken.IsCancellationRequested || closed.IsCancellationRequested)))
        {
            throw channel.Fail(ClosedMeanwhile(ex, channel, closed), $"preparing AUTH {mechanism.Name}");
        }

        ReadOnlyMemory<byte>? deferred = null;
        if (initial is { } ir && !SmtpAuthLines.FitsOnCommandLine(mechanism.Name, ir.Length))
        {
            deferred = ir;
            initial = null;
        }

        channel.CheckUnsolicited();
        Expect(channel, SmtpAuthLines.WriteCommand(channel.Output, mechanism.Name, initial));
        await channel.FlushAsync("sending AUTH").ConfigureAwait(false);
        for (var round = 0; ; round++)
        {
            var reply = await channel.ReadReplyAsync(replyTimeout).ConfigureAwait(false);
            if (reply.Code != 334)
            {
                if (reply.IsPositiveCompletion && mechanism.CheckSuccess() is { } refusal)
                {
                    throw channel.Fail(new SmtpException(SmtpErrorCode.AuthenticationError, refusal), $"authenticating with {mechanism.Name}");
                }

                return reply;
            }

            if (round >= MaxRounds)
            {
                throw await CancelAsync(channel, $"AUTH {mechanism.Name}: the server sent more than {MaxRounds} challenges", replyTimeout).ConfigureAwait(false);
            }

            if (!SmtpAuthLines.TryDecodeChallenge(reply, out var challenge))
            {
                throw await CancelAsync(channel, $"AUTH {mechanism.Name}: the server's 334 challenge is not base64 (RFC 4954 §4)", replyTimeout).ConfigureAwait(false);
            }

            ReadOnlyMemory<byte>? response;
            if (deferred is not null && challenge.Length == 0)
            {
                (response, deferred) = (deferred, null);
            }
            else
            {
                response = await RespondAsync(channel, mechanism, challenge, token, closed).ConfigureAwait(false);
                if (response is null && mechanism.CancelReason is { } problem)
                {
                    // A built-in mechanism that cannot answer (an empty CRAM-MD5 challenge, a malformed SCRAM message, NTLM refused by the platform).
                    throw await CancelAsync(channel, problem, replyTimeout).ConfigureAwait(false);
                }
            }

            channel.CheckUnsolicited();
            Expect(channel, SmtpAuthLines.WriteResponse(channel.Output, response));
            await channel.FlushAsync("sending an AUTH response").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Cancels the exchange (RFC 4954 §4: a line <c>*</c>, which the server answers with 501) because the client cannot
    /// answer the last challenge (not base64, or malformed for the mechanism) or will not answer more (more than
    /// <see cref="MaxRounds"/> challenges). A
    /// negative answer ends the exchange and the connection stays open (unless it is 421), transient when it is 4yz;
    /// another 334 or a 2yz leaves the exchange in an unknown state and closes the connection.
    /// </summary>
    /// <returns>The <see cref="SmtpErrorCode.AuthenticationError"/> to throw, with the server's answer as its <see cref="SmtpException.Reply"/>.</returns>
    private static async Task<Exception> CancelAsync(SmtpChannel channel, string problem, TimeSpan replyTimeout)
    {
        channel.CheckUnsolicited();
        Expect(channel, SmtpAuthLines.WriteResponse(channel.Output, null));
        await channel.FlushAsync("cancelling AUTH").ConfigureAwait(false);
        var answer = await channel.ReadReplyAsync(replyTimeout).ConfigureAwait(false);
        if (answer.Code == 334 || answer.IsPositiveCompletion)
        {
            var unknown = new SmtpException(SmtpErrorCode.AuthenticationError, $"{problem}; the exchange was cancelled with '*' but the server answered {answer.Code}, so the connection was closed.") { Reply = answer };
            return channel.Fail(unknown, "cancelling AUTH");
        }

        channel.CloseIfServiceClosing(answer);
        var after = answer.IsServiceClosing ? "the connection was closed" : "the connection stays open";
        // A 4yz answer (454 temporary authentication failure, RFC 4954 §6) says a later attempt may succeed.
        var failure = new SmtpException(SmtpErrorCode.AuthenticationError, $"{problem}; the exchange was cancelled with '*' and the server answered {answer.Code}; {after}.") { Reply = answer, IsTransient = answer.IsTransientNegative };
        channel.TelemetryError = MailPipeTelemetry.ErrorType(failure);
        return failure;
    }

    /// <summary>A cancellation that came from the connection being closed meanwhile, not from the caller: <see cref="SmtpErrorCode.ConnectionClosed"/>, as for any operation the caller's close ends.</summary>
    private static Exception ClosedMeanwhile(Exception exception, SmtpChannel channel, CancellationToken closed) =>
        exception is OperationCanceledException && !channel.CallerToken.IsCancellationRequested && closed.IsCancellationRequested
            ? new SmtpException(SmtpErrorCode.ConnectionClosed, "The connection was closed while the AUTH exchange waited for the caller's code.", exception)
            : exception;

    /// <summary>A line was written: its reply is expected as AUTH's, the server's 334 lines are redacted from now on, and the line is logged in its transcript form.</summary>
    private static void Expect(SmtpChannel channel, string transcript)
    {
        channel.ExpectReply(SmtpAuthLines.Command);
        channel.RedactServerText = true;
        Log.ClientLine(channel.ProtocolLog, transcript);
    }

    private static async ValueTask<ReadOnlyMemory<byte>?> RespondAsync(SmtpChannel channel, SaslMechanism mechanism, ReadOnlyMemory<byte> challenge, CancellationToken token, CancellationToken closed)
    {
        try
        {
            return await CallerCodeAsync(mechanism.RespondAsync(challenge, token), token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SmtpException || (ex is OperationCanceledException && (channel.CallerToken.IsCancellationRequested || closed.IsCancellationRequested)))
        {
            throw channel.Fail(ClosedMeanwhile(ex, channel, closed), $"authenticating with {mechanism.Name}");
        }
        catch (Exception)
        {
            channel.Break($"the AUTH {mechanism.Name} challenge handler failed");
            throw;
        }
    }

    /// <summary>
    /// Waits for the caller's code (a token provider, a challenge handler) until <paramref name="token"/> is cancelled
    /// (the caller's token, the connection's close), whether or not that code honours it: one that ignores it (a token
    /// service called without it) would otherwise hold DisconnectAsync's and the caller's cancellation for ever. Given
    /// up, its task is observed.
    /// </summary>
    private static async ValueTask<T> CallerCodeAsync<T>(ValueTask<T> call, CancellationToken token)
    {
        if (call.IsCompleted || !token.CanBeCanceled)
        {
            return await call.ConfigureAwait(false);
        }

        var task = call.AsTask();
        try
        {
            return await task.WaitAsync(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
    }
}
