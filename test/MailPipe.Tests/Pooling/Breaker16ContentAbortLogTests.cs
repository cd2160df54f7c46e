using System.Text;
using MailPipe.Tests.Shared;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probe (session 16): with DATA, a message whose streamed content fails midway (the source throws, an 8-bit
/// octet for a 7-bit transaction, more than the server's SIZE) can only be stopped by closing the connection (never
/// the final dot). MailPipe closed it itself, for that message's sake: the pool logged it as a lost connection
/// (warning PoolConnectionLost, "lost (broken)"), as it does not for a caller's cancellation, which closes it the same way.
/// </summary>
public sealed class Breaker16ContentAbortLogTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("throws")]
    [InlineData("8bit")]
    [InlineData("oversize")]
    public async Task With_DATA_content_stopped_midway_is_NotSent_the_others_delivered_and_no_lost_connection_is_logged(string kind)
    {
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { GreetingGate = greeting.Task };
        using var logs = new ListLoggerProvider();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.LoggerFactory = logs;
        await using var sender = new SmtpSender(options);
        var before = PoolTestMessages.Create("abort-before", 0);
        var after = PoolTestMessages.Create("abort-after", 0);
        var head = Encoding.ASCII.GetBytes($"Subject: {kind}\r\n\r\n" + new string('x', 70) + "\r\n");
        var envelope = new SmtpEnvelope("sender@example.test", "rcpt-abort@example.test") { Body = kind == "8bit" ? SmtpBodyType.SevenBit : SmtpBodyType.Auto };
        Stream content = kind switch
        {
            "throws" => new GeneratedContentStream(head, 64 * 1024, failAtEnd: true, filler: 'z'),
            "8bit" => new GeneratedContentStream([.. head, .. Encoding.ASCII.GetBytes(new string('y', 40_000)), 0xE9, (byte)'\r', (byte)'\n'], 0, filler: 'z'),
            _ => new GeneratedContentStream(head, 11 * 1024 * 1024, filler: 'z'),
        };

        var first = sender.SendAsync(before.Message);
        var failing = sender.SendAsync(SmtpMessage.FromStream(envelope, content));
        var last = sender.SendAsync(after.Message);
        greeting.SetResult(); // one batch: before, the failing one, after
        var results = await Task.WhenAll(first, failing, last).WaitAsync(Limit);

        results[0].IsAccepted.Should().BeTrue(results[0].ToString());
        results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent, results[1].ToString());
        results[2].IsAccepted.Should().BeTrue(results[2].ToString());
        server.Received.Should().HaveCount(2);
        using (var limit = new CancellationTokenSource(Limit))
        {
            while (sender.GetStatistics() is { InUse: > 0 } or { Opening: > 0 })
            {
                await Task.Delay(10, limit.Token); // the first connection's worker logs as it closes it
            }
        }

        logs.Entries.Should().NotContain(e => e.EventId.Id == MailPipeEventId.PoolConnectionLost, "MailPipe closed the connection for that message's sake: it was not lost ({0})", results[1]);
    }
}
