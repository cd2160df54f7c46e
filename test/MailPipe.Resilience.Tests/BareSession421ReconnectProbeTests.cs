using MailPipe.Tests.Support;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>A peer's probe of the README's bare-session delegate: a 421 to MAIL, a reconnect in the delegate, one delivery.</summary>
public class BareSession421ReconnectProbeTests
{
    [Fact]
    public async Task After_a_421_to_MAIL_the_delegate_sees_the_session_disconnected_reconnects_and_the_message_goes_once()
    {
        await using var first = ScriptedSmtpServer.Start([.. Greeting, "C: MAIL FROM:<sender@example.test>", "S: 421 4.3.2 shutting down", "EXPECT CLOSE"]);
        await using var second = ScriptedSmtpServer.Start(
        [
            .. Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<a@example.test>", "S: 250 ok",
            "C: DATA", "S: 354 go",
            .. Data("250 2.0.0 queued"),
            "C: QUIT", "S: 221 bye",
        ]);
        await using var session = await ConnectedAsync(first);
        var connects = 0;
        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.Zero, ThrottledDelay = TimeSpan.Zero });

        var result = await pipeline.SendWithRetryAsync(Message("a@example.test"), async (attempt, token) =>
        {
            if (!session.IsConnected)
            {
                connects++;
                await session.ConnectAsync(second.ClientStream, cancellationToken: token);
                await session.EhloAsync("client.example.test", token);
            }

            return await session.SendAsync(attempt, token);
        }).Safe();
        await session.DisposeAsync();
        await second.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.ToString());
        result.Attempts.Should().Be(2);
        connects.Should().Be(1);
    }
}
