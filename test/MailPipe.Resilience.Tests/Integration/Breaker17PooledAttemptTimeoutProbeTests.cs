using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.Resilience.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Resilience.Tests.Integration;

/// <summary>
/// Breaker17 probe of issue #12 through the pooled sender: an attempt timeout that fires while the message's content
/// is being written (before its end of data) is a transient TimedOut, retried, and the message is delivered once
/// (the README: "An attempt timeout before the end of data is a transient TimedOut; after it, Unknown").
/// </summary>
[Trait("Category", "Integration")]
public sealed class Breaker17PooledAttemptTimeoutProbeTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_attempt_timeout_while_the_content_is_written_through_the_pooled_sender_is_retried_and_delivered_once(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort);
        var recipient = TestServers.UniqueRecipient("b17-attempt-timeout");
        var time = new FakeTimeProvider();
        var writing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var runs = 0;
        var head = Encoding.ASCII.GetBytes($"From: <sender@example.test>\r\nTo: <{recipient}>\r\nSubject: attempt timeout\r\n\r\nfirst line\r\n");
        var message = SmtpMessage.FromWriter(new SmtpEnvelope("sender@example.test", recipient), async (stream, ct) =>
        {
            await stream.WriteAsync(head, ct);
            if (Interlocked.Increment(ref runs) == 1)
            {
                await stream.FlushAsync(ct);
                writing.TrySetResult();
                await Task.Delay(Timeout.InfiniteTimeSpan, ct); // stalls until its send is stopped
            }

            await stream.WriteAsync("last line\r\n"u8.ToArray(), ct);
        });
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = proxy.Port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            Session = new SmtpSessionOptions { UseChunking = chunking },
        }).WithStandardResilience(
            o =>
            {
                o.AttemptTimeout.Timeout = TimeSpan.FromSeconds(30);
                o.Retry.MaxRetryAttempts = 1;
                o.Retry.Delay = TimeSpan.Zero;
                o.Retry.UseJitter = false;
            },
            time);

        var send = sender.SendAsync(message);
        await writing.Task.WaitAsync(TimeSpan.FromSeconds(60));
        time.Advance(TimeSpan.FromSeconds(30));
        var result = await send.WaitAsync(TimeSpan.FromSeconds(60));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "nothing of the first attempt can have been delivered: {0}", result.Exception?.Message);
        result.Attempts.Should().Be(2);
        runs.Should().Be(2);
        var stored = await Maildir.WaitForPostfixAsync(recipient);
        stored.Should().ContainSingle();
        Encoding.ASCII.GetString(stored[0]).Should().Contain("first line\r\nlast line\r\n");
    }
}
