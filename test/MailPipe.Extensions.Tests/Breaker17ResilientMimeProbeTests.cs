using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// Breaker17 probe of issues #12 and #14 together, through DI: a MimeMessage to tempfail@ (450) and an ordinary
/// recipient (Bcc) sent with <c>AddMailPipe(...).AddStandardResilience(...)</c>; the retry waits on the container's
/// TimeProvider, Polly logs it through the container's ILoggerFactory, goes only to tempfail@, and the ordinary
/// recipient gets the message once.
/// </summary>
[Trait("Category", "Integration")]
public sealed class Breaker17ResilientMimeProbeTests
{
    [Fact]
    public async Task A_MimeMessage_through_the_resilient_DI_sender_is_retried_on_the_containers_clock_only_to_the_recipient_refused_with_450()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var ordinary = TestServers.UniqueRecipient("b17-mime-retry");
        var retryDelay = TimeSpan.FromSeconds(13); // no other timer of the sender or the pipeline has this due time
        var time = new ArmedClock(retryDelay);
        var logs = new LogCapture();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.Port = TestServers.PostfixPort; o.TlsMode = SmtpTlsMode.None; o.EhloName = "client.example.test"; })
            .AddStandardResilience(o =>
            {
                o.Retry.MaxRetryAttempts = 1;
                o.Retry.Delay = retryDelay;
                o.Retry.UseJitter = false;
                o.Retry.ThrottledDelay = TimeSpan.Zero;
            });
        await using var provider = services.BuildServiceProvider();
        var sender = provider.GetRequiredService<ISmtpSender>();
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("alice@example.test"));
        message.To.Add(MailboxAddress.Parse("tempfail@example.test"));
        message.Bcc.Add(MailboxAddress.Parse(ordinary));
        message.Subject = "retried MimeMessage";
        message.Body = new TextPart("plain") { Text = "Grüße, once." };

        var send = sender.SendAsync(message);

        // The clock moves only once the retry's delay is armed on it: Polly logs OnRetry before it starts the delay, and
        // a clock advanced in between would leave the delay waiting forever.
        await time.Armed.WaitAsync(TimeSpan.FromSeconds(60));
        logs.Entries.Should().Contain(e => e.Message.Contains("OnRetry", StringComparison.Ordinal), "Polly logs each retry through the container's ILoggerFactory");
        send.IsCompleted.Should().BeFalse("the retry waits its 13 s on the container's clock, which has not moved");
        time.Advance(retryDelay);
        var result = await send.WaitAsync(TimeSpan.FromSeconds(60));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(2);
        result.Recipients.Select(r => r.Recipient.Address).Should().Equal("tempfail@example.test", ordinary);
        result.Recipients[0].Reply!.Code.Should().Be(450);
        result.Recipients[1].Accepted.Should().BeTrue();
        (await TestServers.WaitForMaildirAsync(ordinary)).Should().HaveCount(1);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Directory.GetFiles(Path.Combine(TestServers.PostfixMaildir, ordinary, "new")).Should().HaveCount(1, "the ordinary recipient accepted on the first attempt is never sent the message again");
        logs.Entries.Should().NotContain(e => e.Message.Contains(ordinary.Split('@')[0], StringComparison.Ordinal), "addresses are not logged unless LogAddresses");
    }
}
