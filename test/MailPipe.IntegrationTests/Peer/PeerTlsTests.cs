using System.Net;
using MailPipe.IntegrationTests.Support;
using MailPipe.IntegrationTests.Tls;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>Peer acceptance suite: SmtpTlsOptions' defaults and its name-mismatch policy against Postfix's certificate (CN=localhost, SAN localhost/127.0.0.1/::1).</summary>
public sealed class PeerTlsTests
{
    [Fact]
    public void SmtpTlsOptions_defaults_are_the_documented_ones()
    {
        var options = new SmtpTlsOptions();

        options.HandshakeTimeout.Should().Be(TimeSpan.FromSeconds(60));
        options.AcceptCertificateNameMismatch.Should().BeFalse();
        options.TargetHost.Should().BeNull();
        options.TrustedRootCertificates.Should().BeEmpty();
        options.ClientAuthenticationOptions.Should().BeNull();
    }

    [Fact]
    public async Task A_certificate_that_does_not_name_the_target_host_fails_with_BadCertificateName_and_is_sent_nothing()
    {
        var tls = TlsTestSupport.TrustTestCertificate();
        tls.TargetHost = "wrong-name.example.test";
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { Tls = tls });

        var act = async () => await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired, "peer-client.example.test");

        var thrown = (await act.Should().ThrowAsync<SmtpException>()).Which;
        thrown.ErrorCode.Should().Be(SmtpErrorCode.BadCertificateName);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task AcceptCertificateNameMismatch_lets_the_session_go_on_and_says_so()
    {
        var tls = TlsTestSupport.TrustTestCertificate();
        tls.TargetHost = "wrong-name.example.test";
        tls.AcceptCertificateNameMismatch = true;
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { Tls = tls });

        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired, "peer-client.example.test")).Code.Should().Be(250);

        session.CertificateNameMismatch.Should().BeTrue();
        var result = await session.SendAsync(new SmtpEnvelope("peer-tls@example.test", TestServers.UniqueRecipient("peer-tls")), "Subject: tls\r\n\r\nx\r\n"u8.ToArray());
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
    }

    [Fact]
    public async Task An_untrusted_certificate_makes_the_senders_message_NotSent_with_a_certificate_error()
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixTlsPort,
            TlsMode = SmtpTlsMode.Implicit,
            Credentials = new NetworkCredential(TestServers.User, TestServers.Password),
        });

        var result = await sender.SendAsync(new SmtpEnvelope("peer-tls@example.test", "bob@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.BadCertificate);
        result.IsTransientFailure.Should().BeFalse("an untrusted certificate does not fix itself");
    }
}
