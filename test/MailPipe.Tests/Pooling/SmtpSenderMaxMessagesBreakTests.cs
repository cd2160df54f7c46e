namespace MailPipe.Tests.Pooling;

/// <summary>
/// <see cref="SmtpSenderOptions.MaxMessagesPerConnection"/> holds for batches too: a batch taken from the queue was up
/// to <see cref="SmtpSenderOptions.MaxBatchSize"/> messages whatever the connection had left (limit 1, batches of 4: 4
/// messages on each connection; limit 2, batches of 16: 9 on one), and a provider's per-connection cap answered the
/// extra ones with 421. Breaker10.
/// </summary>
public sealed class SmtpSenderMaxMessagesBreakTests
{
    [Theory]
    [InlineData(1, 1, 4, true)]
    [InlineData(1, 2, 4, false)]
    [InlineData(2, 1, 16, false)]
    [InlineData(3, 2, 2, true)]
    [InlineData(5, 1, 16, true)]
    public async Task No_connection_sends_more_than_MaxMessagesPerConnection(int limit, int maxConnections, int maxBatchSize, bool chunking)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        var options = PoolTestMessages.Options(server.Port, maxConnections, maxBatchSize);
        options.MaxMessagesPerConnection = limit;
        await using var sender = new SmtpSender(options);
        var messages = Enumerable.Range(0, 9).Select(i => PoolTestMessages.Create("per-connection", i)).ToList();

        var results = await sender.SendBatchAsync(messages.Select(m => m.Message));

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        results.ShouldMatchServer(messages, server);
        server.Received.GroupBy(m => m.Connection).Should().OnlyContain(g => g.Count() <= limit, "each connection is replaced after MaxMessagesPerConnection messages");
    }
}
