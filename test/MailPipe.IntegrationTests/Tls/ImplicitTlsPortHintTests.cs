using MailPipe.IntegrationTests.Support;
using static MailPipe.IntegrationTests.Tls.TlsTestSupport;

namespace MailPipe.IntegrationTests.Tls;

/// <summary>
/// StartTlsRequired (or None) against Postfix's implicit-TLS port 4650: Postfix waits for the client's TLS hello and
/// sends no greeting. The caller waited the whole ReceiveTimeout and read only "Timed out ... waiting for the
/// greeting"; the error now says that no greeting came and that the port may expect TLS at connect (SmtpTlsMode.Implicit).
/// </summary>
public sealed class ImplicitTlsPortHintTests
{
    [Theory]
    [InlineData(SmtpTlsMode.StartTlsRequired)]
    [InlineData(SmtpTlsMode.None)]
    public async Task A_plain_connect_to_the_implicit_TLS_port_says_the_port_may_expect_TLS(SmtpTlsMode mode)
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions
        {
            Tls = TrustTestCertificate(),
            ConnectTimeout = TimeSpan.FromSeconds(10),
            ReceiveTimeout = TimeSpan.FromSeconds(2),
        });

        var thrown = (await FluentActions.Awaiting(() => session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, mode, EhloDomain))
            .Should().ThrowAsync<SmtpException>()).Which;

        thrown.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        thrown.Message.Should().Contain("waiting for the greeting").And.Contain("SmtpTlsMode.Implicit");
        session.IsConnected.Should().BeFalse();
    }
}
