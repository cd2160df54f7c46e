using System.Collections.Concurrent;
using System.Net;
using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.IntegrationTests.Tls;
using Microsoft.Extensions.Logging;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// Peer acceptance suite: README "Logging": the transcript at Trace under MailPipe.Protocol; bodies never logged, AUTH
/// always redacted, addresses masked unless LogAddresses.
/// </summary>
public sealed class PeerLoggingTests
{
    private const string BodyMarker = "BODY-MARKER-7f3c";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_transcript_masks_addresses_unless_asked_and_never_holds_the_body_or_the_password(bool logAddresses)
    {
        var recipient = TestServers.UniqueRecipient("peer-logsecret");
        var logs = new CapturingLoggerFactory();
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions
        {
            LoggerFactory = logs,
            LogAddresses = logAddresses,
            Tls = TlsTestSupport.TrustTestCertificate(),
        });
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired, "peer-client.example.test");
        (await session.AuthenticateAsync(new NetworkCredential(TestServers.User, TestServers.Password))).Code.Should().Be(235);

        var result = await session.SendAsync(
            new SmtpEnvelope("peer-logsender@example.test", recipient),
            Encoding.ASCII.GetBytes($"Subject: logging\r\n\r\n{BodyMarker}\r\n"));
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);

        var protocol = logs.Entries.Where(e => e.Category == "MailPipe.Protocol").Select(e => e.Message).ToList();
        protocol.Should().Contain(m => m.Contains("C: ", StringComparison.Ordinal) && m.Contains("RCPT TO:", StringComparison.Ordinal), "the transcript has C: lines");
        protocol.Should().Contain(m => m.Contains("S: ", StringComparison.Ordinal), "and S: lines");
        var everything = string.Join("\n", logs.Entries.Select(e => e.Message));
        everything.Should().NotContain(BodyMarker, "message bodies are never logged");
        everything.Should().NotContain(TestServers.Password);
        everything.Should().NotContain(Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{TestServers.User}\0{TestServers.Password}")), "AUTH exchanges are always redacted");
        var localPart = recipient.Split('@')[0];
        if (logAddresses)
        {
            everything.Should().Contain(localPart);
        }
        else
        {
            everything.Should().NotContain(localPart, "addresses are masked unless LogAddresses");
            everything.Should().NotContain("peer-logsender");
            everything.Should().Contain("***@example.test");
        }
    }

    [Fact]
    public async Task The_senders_logs_mask_addresses_too_by_default()
    {
        var recipient = TestServers.UniqueRecipient("peer-poolsecret");
        var logs = new CapturingLoggerFactory();
        await using (var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            Tls = TlsTestSupport.TrustTestCertificate(),
            Credentials = new NetworkCredential(TestServers.User, TestServers.Password),
            LoggerFactory = logs,
        }))
        {
            var result = await sender.SendAsync(new SmtpEnvelope("peer-poolsender@example.test", recipient, "tempfail@example.test"), Encoding.ASCII.GetBytes($"Subject: pool logging\r\n\r\n{BodyMarker}\r\n"));
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        }

        logs.Entries.Should().Contain(e => e.Category == "MailPipe.Protocol", "each connection's transcript goes to the sender's LoggerFactory");
        var everything = string.Join("\n", logs.Entries.Select(e => e.Message));
        everything.Should().NotContain(recipient.Split('@')[0]);
        everything.Should().NotContain("peer-poolsender");
        everything.Should().NotContain("tempfail@");
        everything.Should().NotContain(BodyMarker);
        everything.Should().NotContain(TestServers.Password);
    }

    private sealed record Entry(string Category, LogLevel Level, string Message);

    private sealed class CapturingLoggerFactory : ILoggerFactory
    {
        public ConcurrentQueue<Entry> Entries { get; } = new();

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, Entries);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<Entry> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue(new Entry(category, logLevel, formatter(state, exception) + (exception is null ? "" : " " + exception)));
        }
    }
}
