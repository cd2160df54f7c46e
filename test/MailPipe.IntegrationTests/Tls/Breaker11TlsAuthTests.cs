using System.Net;
using System.Text;
using MailPipe.IntegrationTests.Support;
using static MailPipe.IntegrationTests.Tls.TlsTestSupport;

namespace MailPipe.IntegrationTests.Tls;

/// <summary>Breaker11 (session 8): TLS and AUTH as docs/tls-and-auth.md promises them, against Exim, Postfix and aiosmtpd.</summary>
public sealed class Breaker11TlsAuthTests
{
    private static readonly NetworkCredential Right = new(TestServers.User, TestServers.Password);
    private static readonly NetworkCredential Wrong = new(TestServers.User, "not-the-password");

    [Fact]
    public async Task Exim_a_535_is_returned_and_the_session_can_authenticate_again_and_deliver()
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var session = NewSession();
        (await session.ConnectAsync(TestServers.Host, TestServers.EximPort, SmtpTlsMode.StartTlsRequired, EhloDomain)).Code.Should().Be(250);

        var refused = await session.AuthenticateAsync(Wrong);
        refused.Code.Should().Be(535, refused.ToString());
        session.IsAuthenticated.Should().BeFalse();
        session.IsConnected.Should().BeTrue("a 535 is a reply, not a broken connection");

        var accepted = await session.AuthenticateAsync(Right);
        accepted.Code.Should().Be(235, accepted.ToString());
        session.AuthenticatedMechanism.Should().Be("CRAM-MD5", "Exim offers PLAIN LOGIN CRAM-MD5 and the automatic choice takes the strongest");

        var recipient = TestServers.UniqueRecipient("b11-exim-auth");
        await SendTestMessageAsync(session, recipient, "exim auth");
        (await Maildir.WaitForEximAsync(recipient)).Should().NotBeEmpty();
        await session.QuitAsync();
    }

    [Fact]
    public async Task A_pooled_sender_with_implicit_TLS_against_a_plain_port_is_NotSent_with_a_TLS_error()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var options = new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.Implicit, EhloName = "pool-test.example.test" };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await using var sender = new SmtpSender(options);

        var result = await sender.SendAsync(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("b11-pool-tls")), "Subject: x\r\n\r\nx\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TlsHandshakeFailed);
    }

    [Fact]
    public async Task A_pooled_sender_with_credentials_but_no_usable_mechanism_is_NotSent_and_sends_no_message()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        var recipient = TestServers.UniqueRecipient("b11-pool-noauth");
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host, Port = TestServers.AiosmtpdPort, TlsMode = SmtpTlsMode.None, Credentials = Right, EhloName = "pool-test.example.test",
        });

        var result = await sender.SendAsync(new SmtpEnvelope(Sender, recipient), Encoding.ASCII.GetBytes("Subject: x\r\n\r\nx\r\n"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        result.IsTransientFailure.Should().BeFalse();
    }

    [Fact]
    public async Task STARTTLS_after_AUTH_forgets_the_authentication_and_the_capabilities()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = NewSession();
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.None, EhloDomain)).Code.Should().Be(250);
        (await session.AuthenticateAsync(Right)).Code.Should().Be(235);
        session.AuthenticatedMechanism.Should().Be("SCRAM-SHA-256");

        var reply = await session.StartTlsAsync();

        reply.Code.Should().Be(220, reply.ToString());
        session.IsAuthenticated.Should().BeFalse("RFC 3207 §4.2: the client must discard what it learnt before TLS");
        session.Capabilities.Count.Should().Be(0);
        (await session.EhloAsync(EhloDomain)).Code.Should().Be(250);
        (await session.AuthenticateAsync(Right)).Code.Should().Be(235);

        var recipient = TestServers.UniqueRecipient("b11-tls-after-auth");
        await SendTestMessageAsync(session, recipient, "starttls after auth");
        await WaitForPostfixAsync(recipient);
    }

    [Fact]
    public async Task The_caller_validation_callback_decides_alone_on_implicit_TLS()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        System.Net.Security.SslPolicyErrors? seen = null;
        var accepting = new SmtpTlsOptions
        {
            ClientAuthenticationOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    seen = errors;
                    return certificate is not null;
                },
            },
        };
        await using (var session = NewSession(accepting))
        {
            (await session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, SmtpTlsMode.Implicit, EhloDomain)).Code.Should().Be(250);
            session.IsEncrypted.Should().BeTrue();
            seen.Should().Be(System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors, "the self-signed certificate is untrusted without the CA file");
        }

        var refusing = TrustTestCertificate();
        refusing.ClientAuthenticationOptions = new System.Net.Security.SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => false };
        await using var refused = NewSession(refusing);

        var act = () => refused.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, SmtpTlsMode.Implicit, EhloDomain);

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.BadCertificate);
        refused.IsConnected.Should().BeFalse();
    }
}
