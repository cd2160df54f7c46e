using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>
/// Pipelining issue, acceptance 1, counted by the session itself (<see cref="AsyncSmtpSession.RoundTrips"/>: each time
/// it waited for Postfix with nothing more to send). The elapsed-time measurement over a delaying proxy is in
/// benchmarks/MailPipe.EndToEnd (--rtt-ms), as timing has no place in tests.
/// </summary>
public sealed class RoundTripTests
{
    public RoundTripTests() => TestServers.RequireListening(TestServers.PostfixPort);

    [Theory]
    [InlineData(true, true, 1)]
    [InlineData(false, true, 2)]
    [InlineData(false, false, 4)]
    public async Task One_transaction_costs_the_protocol_floor(bool chunking, bool pipelining, int expected)
    {
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking, UsePipelining = pipelining });
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");
        var before = session.RoundTrips;

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), "Subject: rt\r\n\r\nx\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(expected);
    }

    [Theory]
    [InlineData(true, 10)]
    [InlineData(false, 101)]
    public async Task A_batch_of_100_small_messages_overlaps_its_transactions(bool chunking, int atMost)
    {
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");
        var before = session.RoundTrips;
        var messages = Enumerable.Range(0, 100).Select(i => SmtpMessage.FromBytes(
            new SmtpEnvelope("sender@example.test", $"batch-{i}-{Guid.NewGuid():N}@example.test"),
            Encoding.ASCII.GetBytes($"Subject: {i}\r\n\r\n{i}\r\n")));

        var results = await session.SendBatchAsync(messages);

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().BeLessThanOrEqualTo(atMost);
    }
}
