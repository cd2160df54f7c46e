using System.Net;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.Resilience.Tests.Integration;

/// <summary>
/// A secret store that is unreachable once: the pooled sender's CredentialsProvider throws HttpRequestException on its
/// first call. Before, the message was NotSent (a permanent AuthenticationError) after one attempt; now the standard
/// pipeline retries it and Postfix's submission port (STARTTLS, AUTH required) takes it with the credentials of the
/// second call.
/// </summary>
public sealed class CredentialsProviderPostfixTests
{
    [Fact]
    public async Task A_credentials_provider_that_fails_once_on_its_own_I_O_is_retried_and_the_message_delivered_once()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var calls = 0;
        var options = new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixSubmissionPort,
            TlsMode = SmtpTlsMode.StartTlsRequired,
            EhloName = "client.example.test",
            MaxConnections = 1,
            CredentialsProvider = _ => Interlocked.Increment(ref calls) == 1
                ? ValueTask.FromException<NetworkCredential>(new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (vault.example.test:443)"))
                : ValueTask.FromResult(new NetworkCredential(TestServers.User, TestServers.Password)),
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await using var sender = new SmtpSender(options).WithStandardResilience(o => o.Retry.Delay = TimeSpan.Zero);
        var recipient = TestServers.UniqueRecipient("provider-retry");

        var result = await sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", recipient),
            "Subject: provider retry\r\nMessage-Id: <provider-retry@mailpipe.test>\r\n\r\nHello.\r\n"u8.ToArray())).WaitAsync(TimeSpan.FromSeconds(60));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.ToString());
        result.Attempts.Should().Be(2);
        calls.Should().Be(2);
        await Maildir.WaitForPostfixAsync(recipient, 1);
    }
}
