namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probe of what a caller of the shared sender learns about attempts: a message sent once more on a fresh
/// connection (its first connection dropped before its MAIL reached the server) says so in
/// <see cref="SmtpSendResult.Attempts"/>, as the sender's retry counter does.
/// </summary>
public sealed class SmtpSenderAttemptsBreakTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_message_retried_on_a_fresh_connection_says_it_took_two_attempts()
    {
        await using var server = new LoopbackSmtpServer(chunking: false); // DATA: the end of data is not written before the 354, so the drop leaves the message NotSent
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1));
        var warm = await sender.SendAsync(PoolTestMessages.Create("attempts-warm", 0).Message).WaitAsync(Limit);
        warm.Attempts.Should().Be(1);
        proxy.DropNext(DropPoint.BeforeNthMail, 1);

        var message = PoolTestMessages.Create("attempts", 0);
        var result = await sender.SendAsync(message.Message).WaitAsync(Limit);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        sender.GetStatistics().Retries.Should().Be(1);
        result.Attempts.Should().Be(2, "the sender sent it twice (the first connection broke under it)");
        server.CountOf(message.MessageId).Should().Be(1);
    }

    /// <summary>
    /// A content writer (<see cref="SmtpMessage.FromWriter"/>) and a message made per connection
    /// (<see cref="SmtpMessage.ForConnection"/>, what MailPipe.MimeKit sends) are replayed whole, and here not a byte of
    /// the content was read: <c>RetryOnFreshConnection</c> says "always". They were NotSent (Attempts 1, no retry): the
    /// pool's replay check knew only bytes and streams.
    /// </summary>
    [Theory]
    [InlineData("writer")]
    [InlineData("per-connection")]
    public async Task A_writer_or_per_connection_message_is_retried_on_a_fresh_connection(string kind)
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1));
        (await sender.SendAsync(PoolTestMessages.Create("replay-warm-" + kind, 0).Message).WaitAsync(Limit)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        proxy.DropNext(DropPoint.BeforeNthMail, 1);

        var inner = PoolTestMessages.Create("replay-" + kind, 0);
        var bytes = System.Buffers.BuffersExtensions.ToArray(inner.Message.Bytes!.Value);
        var writer = SmtpMessage.FromWriter(inner.Message.Envelope, (stream, ct) => stream.WriteAsync(bytes, ct).AsTask());
        var message = kind == "writer" ? writer : SmtpMessage.ForConnection(inner.Message.Envelope, _ => writer);
        var result = await sender.SendAsync(message).WaitAsync(Limit);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(2);
        server.CountOf(inner.MessageId).Should().Be(1);
    }

    /// <summary>The other side of the rule: a selector that chose a one-pass source could hand it on half read, so that message is not sent again.</summary>
    [Fact]
    public async Task A_per_connection_message_that_chose_a_one_pass_stream_is_not_retried()
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1));
        (await sender.SendAsync(PoolTestMessages.Create("one-pass-warm", 0).Message).WaitAsync(Limit)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        proxy.DropNext(DropPoint.BeforeNthMail, 1);

        var inner = PoolTestMessages.Create("one-pass", 0);
        using var content = new NonSeekableStream(System.Buffers.BuffersExtensions.ToArray(inner.Message.Bytes!.Value));
        var result = await sender.SendAsync(SmtpMessage.ForConnection(inner.Message.Envelope, _ => SmtpMessage.FromStream(inner.Message.Envelope, content))).WaitAsync(Limit);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Attempts.Should().Be(1);
        sender.GetStatistics().Retries.Should().Be(0);
    }

    /// <summary>And a content writer that ran (it may have read one-pass sources of the caller's, such as a network stream it copies) is not run again by the pool.</summary>
    [Fact]
    public async Task A_writer_that_ran_before_its_connection_was_lost_is_not_retried()
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1));
        var inner = PoolTestMessages.Create("writer-ran", 0);
        var bytes = System.Buffers.BuffersExtensions.ToArray(inner.Message.Bytes!.Value);
        var calls = 0;
        var message = SmtpMessage.FromWriter(inner.Message.Envelope, async (stream, ct) =>
        {
            Interlocked.Increment(ref calls);
            await stream.WriteAsync(bytes.AsMemory(0, 100), ct);
            await stream.FlushAsync(ct);
            await proxy.CloseAllAsync();
            for (var i = 0; i < 64; i++)
            {
                await stream.WriteAsync(bytes, ct);
                await stream.FlushAsync(ct);
            }
        });

        var result = await sender.SendAsync(message).WaitAsync(Limit);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Attempts.Should().Be(1);
        calls.Should().Be(1);
        server.CountOf(inner.MessageId).Should().Be(0);
    }

    private sealed class NonSeekableStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
