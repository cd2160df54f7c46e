using System.Collections.Concurrent;
using System.Security.Authentication;
using MailPipe.IntegrationTests.Support;
using Microsoft.Extensions.Logging;
using static MailPipe.IntegrationTests.Tls.TlsTestSupport;

namespace MailPipe.IntegrationTests.Core;

/// <summary>Replies nobody asked for, against the real Postfix: its idle 421, and no false alarm from TLS 1.3 records.</summary>
public sealed class UnsolicitedReplyTests
{
    [Fact]
    public async Task Postfix_idle_421_fails_the_next_send_with_ServiceNotAvailable_and_MAIL_is_never_written()
    {
        TestServers.RequireListening(TestServers.PostfixIdlePort);
        var transcript = new TranscriptLogger();
        using var loggerFactory = LoggerFactory.Create(builder => builder.AddProvider(transcript).SetMinimumLevel(LogLevel.Trace));
        await using var relay = new LoopbackRelay(TestServers.PostfixIdlePort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = loggerFactory, LogAddresses = true });
        await session.ConnectAsync(TestServers.Host, relay.Port);
        (await session.EhloAsync(EhloDomain)).Code.Should().Be(250);

        // smtpd_timeout=2s: Postfix sends 421 and closes. The client has nothing to observe the 421 with but the send
        // under test, so the relay tells when Postfix closed and the client's socket holds the 421 and the end of the
        // stream (a fixed 5 s sleep let the send go first whenever a loaded machine ran Postfix's smtpd 3 s late).
        await relay.WaitUntilServerClosedAllAsync(TimeSpan.FromSeconds(60));
        var result = await session.SendAsync(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("idle421")), "Subject: idle\r\n\r\nx\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var error = result.Exception.Should().BeOfType<SmtpException>().Subject;
        error.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        error.IsTransient.Should().BeTrue();
        error.Reply!.Code.Should().Be(421);
        result.MailReply.Should().BeNull();
        session.IsConnected.Should().BeFalse();
        transcript.Lines.Should().Contain(line => line.StartsWith("S: 421", StringComparison.Ordinal));
        transcript.Lines.Should().NotContain(line => line.StartsWith("C: MAIL", StringComparison.Ordinal), "MAIL was not written");
    }

    [Fact]
    public async Task STARTTLS_with_TLS_1_3_then_EHLO_and_MAIL_raises_no_false_alarm()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var tls = TrustTestCertificate();
        tls.ClientAuthenticationOptions = new System.Net.Security.SslClientAuthenticationOptions { EnabledSslProtocols = SslProtocols.Tls13 };
        await using var session = NewSession(tls);

        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired, EhloDomain)).Code.Should().Be(250);
        session.SslProtocol.Should().Be(SslProtocols.Tls13);

        // TLS 1.3 session tickets arrive after the handshake: records on the socket that are no reply.
        await Task.Delay(200);
        (await session.MailFromAsync(Sender)).Code.Should().Be(250);
        (await session.RsetAsync()).Code.Should().Be(250);
        var recipient = TestServers.UniqueRecipient("tls13");
        var result = await session.SendAsync(new SmtpEnvelope(Sender, recipient), "Subject: tls13\r\n\r\nx\r\n"u8.ToArray());
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        await session.QuitAsync();
    }

    private sealed class TranscriptLogger : ILoggerProvider, ILogger
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public IReadOnlyCollection<string> Lines => _lines;

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue(formatter(state, exception));

        public void Dispose()
        {
        }
    }
}
