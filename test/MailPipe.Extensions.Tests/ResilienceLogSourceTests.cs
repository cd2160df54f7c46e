using System.Net;
using System.Net.Sockets;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// Every Polly log entry of <c>AddStandardResilience()</c> named its pipeline <c>Source: 'MailPipe/(null)/SmtpRetry'</c>:
/// the pipeline had no instance name, so a reader of the log saw "(null)" where the sender belongs, and could not tell
/// two senders' retries apart by it. The instance is now the sender's name (<c>host:port</c>, or the key).
/// </summary>
public sealed class ResilienceLogSourceTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("bulk")]
    public async Task Pollys_log_names_the_sender_as_the_pipelines_instance(string? key)
    {
        var port = ClosedPort();
        var logs = new LogCapture();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        void Configure(MailPipeOptions o)
        {
            o.Host = "127.0.0.1";
            o.Port = port;
            o.TlsMode = SmtpTlsMode.None;
        }

        var builder = key is null ? services.AddMailPipe(Configure) : services.AddKeyedMailPipe(key, Configure);
        builder.AddStandardResilience(o =>
        {
            o.Retry.MaxRetryAttempts = 1;
            o.Retry.Delay = TimeSpan.FromMilliseconds(1);
            o.Retry.UseJitter = false;
        });
        SmtpSendResult result;
        await using (var provider = services.BuildServiceProvider())
        {
            var sender = key is null ? provider.GetRequiredService<ISmtpSender>() : provider.GetRequiredKeyedService<ISmtpSender>(key);
            result = await sender.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray());
        }

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        var polly = logs.Entries.Where(e => e.Category.StartsWith("Polly", StringComparison.Ordinal)).Select(e => e.Message).ToList();
        var dump = string.Join("\n", polly);
        polly.Should().NotBeEmpty().And.NotContain(m => m.Contains("(null)", StringComparison.Ordinal), dump);
        var expected = key is null ? $"Source: 'MailPipe/127.0.0.1:{port}/" : $"Source: 'MailPipe-{key}/{key}/";
        polly.Should().Contain(m => m.Contains(expected, StringComparison.Ordinal), dump);
    }

    private static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
