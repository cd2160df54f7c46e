using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Core;

/// <summary>QUIT sent by hand (the seed's <c>SendCommand</c> + <c>ReceiveResponse</c>) against Postfix: after its 221 the session is disconnected and connects again.</summary>
public sealed class RawQuitPostfixTests
{
    [Fact]
    public async Task A_raw_QUIT_and_its_221_leave_the_session_disconnected_and_reusable()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { ReceiveTimeout = TimeSpan.FromSeconds(30) });
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
        (await session.EhloAsync("client.test")).Code.Should().Be(250);

        await session.SendCommandAsync("QUIT");
        var reply = await session.ReceiveReplyAsync();

        reply.Code.Should().Be(221);
        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
        (await session.NoopAsync()).Code.Should().Be(250);
        await session.QuitAsync();
    }
}
