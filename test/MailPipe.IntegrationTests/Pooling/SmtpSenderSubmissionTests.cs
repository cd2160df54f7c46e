using System.Net;
using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Pooling;

/// <summary>The sender's connection set-up against Postfix's submission port 5870 (STARTTLS required, then AUTH required).</summary>
public sealed class SmtpSenderSubmissionTests
{
    public SmtpSenderSubmissionTests() => TestServers.RequireListening(TestServers.PostfixSubmissionPort);

    private static SmtpSenderOptions Options(NetworkCredential credentials)
    {
        var options = new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixSubmissionPort,
            TlsMode = SmtpTlsMode.StartTlsRequired,
            Credentials = credentials,
            EhloName = "pool-test.example.test",
            MaxConnections = 2,
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        return options;
    }

    [Fact]
    public async Task Pooled_connections_use_STARTTLS_and_AUTH_and_deliver()
    {
        var recipient = TestServers.UniqueRecipient("pool-sub");
        await using var sender = new SmtpSender(Options(new NetworkCredential(TestServers.User, TestServers.Password)));

        var results = await Task.WhenAll(Enumerable.Range(0, 10).Select(i =>
            sender.SendAsync(new SmtpEnvelope("sender@example.test", recipient), Encoding.ASCII.GetBytes($"Subject: submission {i}\r\nMessage-Id: <sub-{i}-{Guid.NewGuid():N}@example.test>\r\n\r\nHello.\r\n"))));

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        (await Maildir.WaitForPostfixAsync(recipient, 10)).Should().HaveCount(10);
        sender.GetStatistics().OpenFailures.Should().Be(0);
    }

    [Fact]
    public async Task A_refused_AUTH_is_NotSent_with_AuthenticationError_and_not_transient()
    {
        await using var sender = new SmtpSender(Options(new NetworkCredential(TestServers.User, "wrong-password")));

        var result = await sender.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient("pool-auth")), "Subject: x\r\n\r\nx\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        result.IsTransientFailure.Should().BeFalse();
    }
}
