using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// <c>AddStandardResilience()</c> hands the container's <see cref="ILoggerFactory"/> to Polly, which logs every attempt
/// and every retry with the result as text. That text holds the server's reply, and servers name the mailbox in it
/// (<c>554 5.7.1 &lt;eod-reject@example.test&gt;: Sender address rejected</c>): it must be masked as MailPipe's own
/// transcript masks it (<c>&lt;***@example.test&gt;</c>) unless <see cref="SmtpSessionOptions.LogAddresses"/> is set.
/// Before the fix the address went whole into category <c>Polly</c> at Information (each send) and Warning (each retry).
/// </summary>
public sealed class ResilienceLogAddressTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Pollys_log_entries_mask_the_addresses_of_the_result_unless_the_sender_logs_addresses(bool logAddresses)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var logs = new LogCapture();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        services.AddMailPipe(o => { o.Host = TestServers.Host; o.Port = TestServers.PostfixPort; o.TlsMode = SmtpTlsMode.None; })
            .ConfigureSender((_, o) => o.Session = new SmtpSessionOptions { LogAddresses = logAddresses })
            .AddStandardResilience(o =>
            {
                o.Retry.MaxRetryAttempts = 1;
                o.Retry.Delay = TimeSpan.FromMilliseconds(1);
                o.Retry.UseJitter = false;
            });
        var recipient = TestServers.UniqueRecipient("reslog");
        SmtpSendResult result;
        await using (var provider = services.BuildServiceProvider())
        {
            // Postfix answers the end of data of this sender with 451 4.3.0 <eod-tempfail@example.test>: ... (retried once).
            var message = SmtpMessage.FromBytes(new SmtpEnvelope("eod-tempfail@example.test", recipient), "Subject: masked\r\n\r\nBody\r\n"u8.ToArray());
            result = await provider.GetRequiredService<ISmtpSender>().SendAsync(message);
        }

        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.FinalReply!.Text.Should().Contain("eod-tempfail@example.test", "the reply names the sender: what the log must not show whole");
        var polly = logs.Entries.Where(e => e.Category.StartsWith("Polly", StringComparison.Ordinal)).ToList();
        var dump = string.Join("\n", polly.Select(e => $"{e.Level} {e.Message}"));
        polly.Should().Contain(e => e.Level == LogLevel.Warning && e.Message.Contains("451 4.3.0", StringComparison.Ordinal), "Polly logs the retried result\n" + dump);
        if (logAddresses)
        {
            polly.Should().Contain(e => e.Message.Contains("<eod-tempfail@example.test>", StringComparison.Ordinal), dump);
        }
        else
        {
            polly.Should().NotContain(e => e.Message.Contains("eod-tempfail@", StringComparison.OrdinalIgnoreCase) || e.Message.Contains(recipient, StringComparison.OrdinalIgnoreCase), dump);
            polly.Should().Contain(e => e.Message.Contains("<***@example.test>", StringComparison.Ordinal), dump);
        }
    }
}
