namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probes of the shared sender's batch under the caller's cancellation: the outcomes of the messages already
/// decided or written must come back with the cancellation (SmtpBatchCanceledException), as a session's batch does,
/// else a retry of the batch sends an accepted message twice.
/// </summary>
public sealed class SmtpSenderBatchCancelBreakTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_batch_cancelled_after_its_first_message_was_delivered_throws_SmtpBatchCanceledException_with_every_outcome()
    {
        await using var server = new LoopbackSmtpServer(chunking: true);
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        await using var sender = new SmtpSender(options);
        var first = PoolTestMessages.Create("batch-cancel-first", 0);
        var (gated, gatedId, content) = GatedContentStream.Create("batch-cancel-gated");
        var last = PoolTestMessages.Create("batch-cancel-last", 0);
        using var cts = new CancellationTokenSource();

        var batch = sender.SendBatchAsync([first.Message, gated, last.Message], cts.Token);
        await content.HeadRead.WaitAsync(Limit);
        await server.WaitUntilAsync(s => s.CountOf(first.MessageId) == 1);
        await cts.CancelAsync();

        var thrown = (await batch.Awaiting(t => t.WaitAsync(Limit)).Should().ThrowAsync<SmtpBatchCanceledException>()).Which;
        thrown.Results.Should().HaveCount(3);
        thrown.Results[0].Outcome.Should().BeOneOf(SmtpSendOutcome.Accepted, SmtpSendOutcome.Unknown);
        thrown.Results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent);
        server.CountOf(gatedId).Should().Be(0);
        var ids = new[] { first.MessageId, gatedId, last.MessageId };
        for (var i = 0; i < 3; i++)
        {
            if (thrown.Results[i].Outcome == SmtpSendOutcome.Accepted)
            {
                server.CountOf(ids[i]).Should().Be(1);
            }
            else if (thrown.Results[i].Outcome == SmtpSendOutcome.NotSent)
            {
                server.CountOf(ids[i]).Should().Be(0);
            }
        }
    }
}
