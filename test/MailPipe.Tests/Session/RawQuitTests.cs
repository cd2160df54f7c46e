using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

/// <summary>
/// The seed's way to quit by hand, <c>SendCommand("QUIT")</c> + <c>ReceiveResponse()</c>: the 221 (RFC 5321
/// §4.1.1.10: the server then closes the transmission channel) is returned and the session knows the connection is over,
/// as after <see cref="AsyncSmtpSession.QuitAsync"/>, instead of reporting it connected until the next command fails.
/// </summary>
public sealed class RawQuitTests
{
    [Theory]
    [InlineData("QUIT", "QUIT")]
    [InlineData("QUIT\r\n", "QUIT")]
    [InlineData("quit", "quit")]
    [InlineData("Quit\r\n", "Quit")]
    public async Task A_221_read_with_ReceiveReplyAsync_after_a_raw_QUIT_closes_the_session(string commandLine, string onTheWire)
    {
        // Verbs are case-insensitive (RFC 5321 §2.4): a 221 to "quit" is QUIT's reply, not the server closing on its own.
        await using var server = ScriptedSmtpServer.Start("S: 220 mail.example.test ESMTP ready", "C: " + onTheWire, "S: 221 2.0.0 Bye", "EXPECT CLOSE");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        await session.SendCommandAsync(commandLine).Safe();
        var reply = await session.ReceiveReplyAsync().Safe();

        reply.Code.Should().Be(221);
        session.LastReply.Should().BeSameAs(reply);
        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
        server.ClientClosed.Should().BeTrue();
        await FluentActions.Awaiting(() => session.NoopAsync()).Should().ThrowAsync<InvalidOperationException>("the session is not connected: ConnectAsync again");
    }
}
