using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker 18b: the pool under a server that ends a session past its limit of "nonmail" commands (Exim's
/// smtp_accept_max_nonmail), with <see cref="SmtpSenderOptions.MaxNonMailCommandsPerConnection"/> set to that limit.
/// A connection that had counted none was not held to it: under a steady flow of refused messages every fresh
/// connection took a full batch, passed the limit and was dropped, and the messages dropped on one connection after
/// another ran out of their 4 attempts (NotSent with a limit of 1; one drop per connection with Exim's 10).
/// </summary>
public sealed class Breaker18bNonMailLimitTests
{
    [Theory]
    [InlineData(10, 200, true)]
    [InlineData(10, 200, false)]
    [InlineData(2, 100, true)]
    [InlineData(1, 100, true)]
    public async Task Refused_messages_in_a_steady_flow_meet_the_limit_once_and_no_caller_runs_out_of_attempts(int limit, int count, bool chunking)
    {
        await using var server = new NonMailLimitServer(limit, chunking);
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.MaxNonMailCommandsPerConnection = limit;
        options.AcquireTimeout = TimeSpan.FromMinutes(2);
        await using var sender = new SmtpSender(options);

        // Every message to an unknown recipient: each transaction refused, so every RSET after the first is counted.
        var results = await Task.WhenAll(Enumerable.Range(0, count).Select(i => Task.Run(() => sender.SendAsync(
            new SmtpEnvelope("sender@example.test", $"unknown-{i}@example.test"),
            Encoding.ASCII.GetBytes($"Subject: {i}\r\n\r\nbody\r\n")))));

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Refused, results.FirstOrDefault(r => r.Outcome != SmtpSendOutcome.Refused)?.ToString());
        results.Should().OnlyContain(r => r.Attempts <= 2);

        // The first connection's burst may pass the limit (a fresh connection is not held to it until a server ended a
        // session at one); after that drop every connection is retired before it.
        server.Drops.Should().BeLessThanOrEqualTo(1);
        server.Stored.Should().BeEmpty();
    }
}
