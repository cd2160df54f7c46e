using MailPipe.Tests.Pooling;

namespace MailPipe.Tests.Session;

/// <summary>
/// A server that does not know EHLO (502 or 500) gets HELO, with no extensions (RFC 5321 §3.2, §4.1.4): from the
/// one-call <c>ConnectAsync(host, port, tlsMode, …)</c> and so from the pool. Before, the negative EHLO reply was the
/// end: the session was left without a greeting exchange, and every message of a sender was NotSent.
/// </summary>
public sealed class HeloFallbackTests
{
    [Theory]
    [InlineData(SmtpTlsMode.None)]
    [InlineData(SmtpTlsMode.StartTlsWhenAvailable)]
    public async Task ConnectAsync_falls_back_to_HELO_when_EHLO_is_not_recognized_and_a_message_goes_through(SmtpTlsMode tlsMode)
    {
        await using var server = new LoopbackSmtpServer { HeloOnly = true };
        await using var session = new AsyncSmtpSession();

        var reply = await session.ConnectAsync("127.0.0.1", server.Port, tlsMode, "client.example.test");

        reply.Code.Should().Be(250);
        session.Capabilities.SupportsPipelining.Should().BeFalse("HELO brings no extensions");
        var message = PoolTestMessages.Create("helo", 1);
        (await session.SendAsync(message.Message)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await session.QuitAsync();
        server.CommandsOf(1).Take(2).Should().Equal("EHLO client.example.test", "HELO client.example.test");
        server.CountOf(message.MessageId).Should().Be(1);
    }

    [Fact]
    public async Task With_TLS_required_an_EHLO_not_recognized_still_fails_and_HELO_is_not_sent()
    {
        await using var server = new LoopbackSmtpServer { HeloOnly = true };
        await using var session = new AsyncSmtpSession();

        var act = () => session.ConnectAsync("127.0.0.1", server.Port, SmtpTlsMode.StartTlsRequired, "client.example.test");

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.StartTlsNotOffered);
        server.Commands.Select(c => c.Line).Should().NotContain(l => l.StartsWith("HELO", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_sender_sends_through_a_server_that_knows_only_HELO()
    {
        await using var server = new LoopbackSmtpServer { HeloOnly = true };
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        var messages = Enumerable.Range(0, 3).Select(i => PoolTestMessages.Create("helo-pool", i)).ToArray();

        var results = await Task.WhenAll(messages.Select(m => sender.SendAsync(m.Message)));

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        messages.Should().OnlyContain(m => server.CountOf(m.MessageId) == 1);
    }
}
