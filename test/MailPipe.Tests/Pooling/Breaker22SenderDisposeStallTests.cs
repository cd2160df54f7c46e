using MailPipe.Tests.Sending;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker 22: the shared sender disposed while a message's content stream stalls in a read that ignores its token.
/// DisposeTimeout must still cancel the batch (the caller gets <see cref="ObjectDisposedException"/>: its end of data was
/// never written) and the disposal must complete; before, both waited for the caller's stream for ever.
/// </summary>
public sealed class Breaker22SenderDisposeStallTests
{
    [Fact]
    public async Task DisposeTimeout_ends_a_batch_whose_content_read_ignores_its_token()
    {
        var stalledServer = SmtpScript.Parse(
            "S: 220 test ESMTP", "C: EHLO [127.0.0.1]", "S: 250-test", "S: 250 PIPELINING",
            "C: MAIL FROM:<a@example.test>", "C+ RCPT TO:<b@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go").ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(stalledServer);
        var time = new ObservableTimeProvider();
        var disposeTimeout = TimeSpan.FromSeconds(3);
        var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            TimeProvider = time,
            IdleTimeout = Timeout.InfiniteTimeSpan,
            NoopAfterIdle = Timeout.InfiniteTimeSpan,
            DisposeTimeout = disposeTimeout,
            ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
        });
        var content = new Breaker22StallingContent("Subject: stalled\r\n\r\nfirst part\r\n");

        var send = sender.SendAsync(SmtpMessage.FromStream(new SmtpEnvelope("a@example.test", "b@example.test"), content));
        await content.Stalled.Safe();
        var disposal = sender.DisposeAsync().AsTask();
        await time.WaitUntilArmedAsync(disposeTimeout, 1);
        time.Advance(disposeTimeout);

        await FluentActions.Awaiting(() => send.WaitAsync(ScriptedSmtpServer.SafetyTimeout / 3)).Should().ThrowAsync<ObjectDisposedException>();
        await disposal.WaitAsync(ScriptedSmtpServer.SafetyTimeout / 3);
        content.Release();
        server.ReceivedText.Should().NotContain("\r\n.\r\n");
    }
}
