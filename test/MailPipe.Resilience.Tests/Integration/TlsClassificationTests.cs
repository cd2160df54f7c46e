using System.Net.Security;
using System.Security.Authentication;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.Resilience.Tests.Integration;

/// <summary>Issue #12 acceptance 4, the TLS rows: certificate failures and a TLS version mismatch are permanent (against the real Postfix).</summary>
public class TlsClassificationTests
{
    private static SmtpTlsOptions TrustTestCertificate()
    {
        var options = new SmtpTlsOptions();
        options.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        return options;
    }

    [Fact]
    public async Task Permanent_untrusted_certificate()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { Tls = new SmtpTlsOptions() });

        var error = (await FluentActions.Awaiting(() => session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, SmtpTlsMode.Implicit, "client.example.test"))
            .Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.BadCertificate);
        SmtpResiliencePredicates.Classify(error).Should().Be(SmtpFailureKind.Permanent);
    }

    [Fact]
    public async Task Permanent_certificate_name_mismatch()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var tls = TrustTestCertificate();
        tls.TargetHost = "mail.example.test";
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { Tls = tls });

        var error = (await FluentActions.Awaiting(() => session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired, "client.example.test"))
            .Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.BadCertificateName);
        SmtpResiliencePredicates.Classify(error).Should().Be(SmtpFailureKind.Permanent);
    }

    [Fact]
    public async Task Permanent_TLS_version_mismatch()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        var tls = TrustTestCertificate();
#pragma warning disable SYSLIB0039, CA5397 // TLS 1.1 on purpose: a version the server does not speak.
        tls.ClientAuthenticationOptions = new SslClientAuthenticationOptions { EnabledSslProtocols = SslProtocols.Tls11 };
#pragma warning restore SYSLIB0039, CA5397
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { Tls = tls });

        var error = (await FluentActions.Awaiting(() => session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, SmtpTlsMode.Implicit, "client.example.test"))
            .Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.TlsHandshakeFailed);
        SmtpResiliencePredicates.Classify(error).Should().Be(SmtpFailureKind.Permanent, error.ToString());
    }
}
