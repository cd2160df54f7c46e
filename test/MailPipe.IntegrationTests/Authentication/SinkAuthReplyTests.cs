using MailPipe.IntegrationTests.Support;
using static MailPipe.IntegrationTests.Tls.TlsTestSupport;

namespace MailPipe.IntegrationTests.Authentication;

/// <summary>smtp-sink answers every AUTH with <c>250 2.0.0 Ok</c>: returned as the reply, and not an authenticated session (RFC 4954 §4: 235).</summary>
public sealed class SinkAuthReplyTests
{
    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    public async Task Smtp_sinks_250_to_AUTH_does_not_make_the_session_authenticated(string mechanism)
    {
        TestServers.RequireListening(TestServers.SinkPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { AllowCleartextAuthentication = true, ReceiveTimeout = TimeSpan.FromSeconds(30) });
        (await session.ConnectAsync(TestServers.Host, TestServers.SinkPort, SmtpTlsMode.None, EhloDomain)).Code.Should().Be(250);

        var reply = mechanism == "PLAIN"
            ? await session.AuthPlainAsync(TestServers.User, TestServers.Password)
            : await session.AuthLoginAsync(TestServers.User, TestServers.Password);

        reply.Code.Should().Be(250);
        session.IsAuthenticated.Should().BeFalse();
        session.AuthenticatedMechanism.Should().BeNull();
        (await session.NoopAsync()).Code.Should().Be(250);
        await session.QuitAsync();
    }
}
