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

    /// <summary>
    /// The pooled sender took any 2yz to AUTH as success (the session already required 235): with credentials set,
    /// smtp-sink's "250 2.0.0 Ok" let it lend a connection that was never authenticated. Only 235 authenticates (RFC
    /// 4954 §4); anything else is NotSent with <see cref="SmtpErrorCode.AuthenticationError"/> before MAIL.
    /// </summary>
    [Fact]
    public async Task The_pooled_sender_does_not_take_smtp_sinks_250_to_AUTH_as_authenticated()
    {
        TestServers.RequireListening(TestServers.SinkPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.SinkPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = EhloDomain,
            Credentials = new System.Net.NetworkCredential(TestServers.User, TestServers.Password),
            Session = new SmtpSessionOptions { AllowCleartextAuthentication = true },
        });

        var result = await sender.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), "Subject: x\r\n\r\nbody\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.MailReply.Should().BeNull("nothing of the transaction may be sent unauthenticated");
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
    }
}
