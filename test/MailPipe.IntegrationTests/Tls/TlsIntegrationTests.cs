using System.Net.Security;
using System.Security.Authentication;
using MailPipe.IntegrationTests.Support;
using static MailPipe.IntegrationTests.Tls.TlsTestSupport;

namespace MailPipe.IntegrationTests.Tls;

/// <summary>Implicit TLS and STARTTLS against the real Postfix and aiosmtpd (cert /tmp/mailpipe-tls/cert.pem, CN/SAN localhost + 127.0.0.1).</summary>
public sealed class TlsIntegrationTests
{
    [Fact]
    public async Task Implicit_TLS_on_the_Postfix_wrapper_port_delivers_a_message()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        var recipient = TestServers.UniqueRecipient("tls-implicit");
        await using var session = NewSession();

        var ehlo = await session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, SmtpTlsMode.Implicit, EhloDomain);

        ehlo.Code.Should().Be(250);
        session.IsEncrypted.Should().BeTrue();
        session.SslProtocol.Should().BeOneOf(SslProtocols.Tls12, SslProtocols.Tls13);
        session.NegotiatedCipherSuite.Should().NotBeNull();
        session.RemoteCertificate!.Subject.Should().Be("CN=localhost");
        session.CertificateNameMismatch.Should().BeFalse();
        session.Capabilities.SupportsStartTls.Should().BeFalse();
        await SendTestMessageAsync(session, recipient, "implicit TLS");
        await session.QuitAsync();
        (await WaitForPostfixAsync(recipient)).Should().Contain("with ESMTPS").And.Contain("Subject: implicit TLS");
    }

    [Fact]
    public async Task Seed_style_implicit_TLS_connect_without_greeting_then_ConnectTls_with_greeting()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        await using var session = NewSession();

        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, waitForGreeting: false)).Should().BeNull();
        var greeting = await session.ConnectTlsAsync("localhost", waitForGreeting: true);

        greeting!.Code.Should().Be(220);
        session.IsEncrypted.Should().BeTrue();
        (await session.EhloAsync(EhloDomain)).Code.Should().Be(250);
        (await session.QuitAsync()).Code.Should().Be(221);
    }

    [Fact]
    public async Task StartTls_on_Postfix_clears_the_capabilities_and_delivers_a_message()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var recipient = TestServers.UniqueRecipient("tls-starttls");
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync(EhloDomain);
        session.Capabilities.SupportsStartTls.Should().BeTrue();

        (await session.StartTlsAsync()).Code.Should().Be(220);

        session.IsEncrypted.Should().BeTrue();
        session.Capabilities.Count.Should().Be(0);
        (await session.EhloAsync(EhloDomain)).Code.Should().Be(250);
        session.Capabilities.SupportsStartTls.Should().BeFalse("Postfix no longer offers STARTTLS once TLS is on");
        session.Capabilities.AuthenticationMechanisms.Should().Contain("SCRAM-SHA-256");
        await SendTestMessageAsync(session, recipient, "STARTTLS");
        await session.QuitAsync();
        (await WaitForPostfixAsync(recipient)).Should().Contain("with ESMTPS");
    }

    [Fact]
    public async Task StartTlsRequired_one_call_connect_on_Postfix_returns_the_EHLO_over_TLS()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = NewSession();

        var ehlo = await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired, EhloDomain);

        ehlo.Code.Should().Be(250);
        session.IsEncrypted.Should().BeTrue();
        session.Capabilities.SupportsStartTls.Should().BeFalse();
        await session.QuitAsync();
    }

    [Fact]
    public async Task StartTls_on_aiosmtpd()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        await using var session = NewSession();

        var ehlo = await session.ConnectAsync(TestServers.Host, TestServers.AiosmtpdPort, SmtpTlsMode.StartTlsRequired, EhloDomain);

        ehlo.Code.Should().Be(250);
        session.IsEncrypted.Should().BeTrue();
        session.Capabilities.AuthenticationMechanisms.Should().BeEquivalentTo("LOGIN", "PLAIN");
        await session.QuitAsync();
    }

    [Fact]
    public async Task A_name_that_the_certificate_does_not_carry_fails_with_BadCertificateName()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var tls = TrustTestCertificate();
        tls.TargetHost = "mail.example.test";
        await using var session = NewSession(tls);
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync(EhloDomain);

        var act = () => session.StartTlsAsync();

        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.BadCertificateName);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task With_explicit_acceptance_the_same_name_mismatch_proceeds_and_is_reported()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var recipient = TestServers.UniqueRecipient("tls-mismatch");
        var tls = TrustTestCertificate();
        tls.TargetHost = "mail.example.test";
        tls.AcceptCertificateNameMismatch = true;
        await using var session = NewSession(tls);

        var ehlo = await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired, EhloDomain);

        ehlo.Code.Should().Be(250);
        session.IsEncrypted.Should().BeTrue();
        session.CertificateNameMismatch.Should().BeTrue();
        session.RemoteCertificateErrors.Should().Be(SslPolicyErrors.RemoteCertificateNameMismatch);
        await SendTestMessageAsync(session, recipient, "accepted name mismatch");
        await session.QuitAsync();
        await WaitForPostfixAsync(recipient);
    }

    [Fact]
    public async Task An_untrusted_self_signed_certificate_is_refused_with_BadCertificate_on_STARTTLS()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = NewSession(new SmtpTlsOptions());
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync(EhloDomain);

        var act = () => session.StartTlsAsync();

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.BadCertificate);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task An_untrusted_self_signed_certificate_is_refused_with_BadCertificate_on_implicit_TLS()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        await using var session = NewSession(new SmtpTlsOptions());

        var act = () => session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, SmtpTlsMode.Implicit, EhloDomain);

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.BadCertificate);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task Caller_SslClientAuthenticationOptions_restrict_the_protocol()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        var tls = TrustTestCertificate();
        tls.ClientAuthenticationOptions = new SslClientAuthenticationOptions { EnabledSslProtocols = SslProtocols.Tls12 };
        await using var session = NewSession(tls);

        await session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, SmtpTlsMode.Implicit, EhloDomain);

        session.SslProtocol.Should().Be(SslProtocols.Tls12);
        await session.QuitAsync();
    }
}
