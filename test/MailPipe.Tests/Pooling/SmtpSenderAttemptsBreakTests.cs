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
}
