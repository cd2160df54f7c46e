using MailPipe.Protocol;

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

    /// <summary>Runs the exchange; the caller has started the operation and owns (disposes) the mechanism.</summary>
    /// <param name="channel">The channel, inside the caller's operation.</param>
    /// <param name="mechanism">The mechanism to run.</param>
    /// <returns>The final reply: 235 on success, 535, 501 after <c>*</c>, 504, 530/538, or any other reply.</returns>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/> for a challenge that is not base64, too many rounds, or a success the mechanism cannot accept (SCRAM without a verified server signature); transport failures and timeouts. The connection is broken.</exception>
    /// <exception cref="OperationCanceledException">The caller's token fired; the connection is broken.</exception>
    /// <remarks>An exception of the mechanism before anything was written (a token provider's) leaves the connection as it was; one thrown while answering a challenge breaks it (the exchange is half done) and reaches the caller unchanged.</remarks>
    public static async Task<SmtpReply> RunAsync(ISaslChannel channel, SaslMechanism mechanism)
    {
        var token = channel.Token;
        ReadOnlyMemory<byte>? initial;
        try
        {
            initial = await mechanism.GetInitialResponseAsync(token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SmtpException || (ex is OperationCanceledException && channel.CallerCancelled))
        {
            throw channel.Fail(ex, $"preparing AUTH {mechanism.Name}");
        }

        ReadOnlyMemory<byte>? deferred = null;
        if (initial is { } ir && !SmtpAuthLines.FitsOnCommandLine(mechanism.Name, ir.Length))
        {
            deferred = ir;
            initial = null;
        }

        channel.EndAuthLine(SmtpAuthLines.WriteCommand(channel.BeginAuthLine(), mechanism.Name, initial));
        await channel.FlushAsync("sending AUTH").ConfigureAwait(false);
        for (var round = 0; ; round++)
        {
            var reply = await channel.ReadReplyAsync().ConfigureAwait(false);
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
                throw channel.Fail(new SmtpException(SmtpErrorCode.AuthenticationError, $"AUTH {mechanism.Name}: the server sent more than {MaxRounds} challenges."), "authenticating");
            }

            if (!SmtpAuthLines.TryDecodeChallenge(reply, out var challenge))
            {
                throw channel.Fail(new SmtpException(SmtpErrorCode.AuthenticationError, $"AUTH {mechanism.Name}: the server's 334 challenge is not base64 (RFC 4954 §4)."), "authenticating");
            }

            ReadOnlyMemory<byte>? response;
            if (deferred is not null && challenge.Length == 0)
            {
                (response, deferred) = (deferred, null);
            }
            else
            {
                response = await RespondAsync(channel, mechanism, challenge, token).ConfigureAwait(false);
            }

            channel.EndAuthLine(SmtpAuthLines.WriteResponse(channel.BeginAuthLine(), response));
            await channel.FlushAsync("sending an AUTH response").ConfigureAwait(false);
        }
    }

    private static async ValueTask<ReadOnlyMemory<byte>?> RespondAsync(ISaslChannel channel, SaslMechanism mechanism, ReadOnlyMemory<byte> challenge, CancellationToken token)
    {
        try
        {
            return await mechanism.RespondAsync(challenge, token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SmtpException || (ex is OperationCanceledException && channel.CallerCancelled))
        {
            throw channel.Fail(ex, $"authenticating with {mechanism.Name}");
        }
        catch (Exception)
        {
            channel.Break($"the AUTH {mechanism.Name} challenge handler failed");
            throw;
        }
    }
}

/// <summary>What the AUTH exchange needs of the channel inside the caller's operation.</summary>
internal interface ISaslChannel
{
    /// <summary>The operation's token (the caller's token and the deadlines).</summary>
    CancellationToken Token { get; }

    /// <summary>Whether the caller's own token fired (as opposed to a deadline).</summary>
    bool CallerCancelled { get; }

    /// <summary>Checks for unsolicited replies and returns where the next AUTH line goes.</summary>
    /// <returns>The output.</returns>
    System.Buffers.IBufferWriter<byte> BeginAuthLine();

    /// <summary>Expects the line's reply (as AUTH) and logs its transcript form.</summary>
    /// <param name="transcript">The line as the transcript shows it.</param>
    void EndAuthLine(string transcript);

    /// <summary>Sends what was written.</summary>
    /// <param name="activity">For messages.</param>
    /// <returns>A task.</returns>
    ValueTask FlushAsync(string activity);

    /// <summary>Reads the next reply within the receive timeout.</summary>
    /// <returns>The reply.</returns>
    ValueTask<SmtpReply> ReadReplyAsync();

    /// <summary>Breaks the connection and returns the exception to throw (the one failure funnel).</summary>
    /// <param name="exception">What happened.</param>
    /// <param name="activity">For messages.</param>
    /// <returns>The exception to throw.</returns>
    Exception Fail(Exception exception, string activity);

    /// <summary>Breaks the connection.</summary>
    /// <param name="reason">For the log.</param>
    void Break(string reason);
}
