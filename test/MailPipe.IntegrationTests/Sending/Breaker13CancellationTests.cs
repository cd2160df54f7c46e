using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.Tests.Shared;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>
/// Breaker13 (session 9): the cancellation contract of issue #9 against the real Postfix: cancelled inside its content,
/// a message is never delivered (not even in part), the session is closed, and the same object reconnects and sends.
/// </summary>
public sealed class Breaker13CancellationTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Cancelled_inside_its_content_nothing_is_delivered_and_the_session_reconnects(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var recipient = TestServers.UniqueRecipient("b13");
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking, ChunkSize = 1024 });
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.None, "client.example.test")).Code.Should().Be(250);
        using var cts = new CancellationTokenSource();
        var content = new StallingStream(Encoding.ASCII.GetBytes("Subject: b13 partial\r\n\r\n" + new string('p', 5000) + "\r\n.\r\n"));

        var send = session.SendAsync(new SmtpEnvelope("sender@example.test", recipient), content, cts.Token);
        await content.Stalled.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();

        var thrown = await FluentActions.Awaiting(() => send).Should().ThrowAsync<OperationCanceledException>();
        thrown.Which.Should().NotBeOfType<SmtpOutcomeUnknownException>();
        session.IsConnected.Should().BeFalse();

        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.None, "client.example.test")).Code.Should().Be(250);
        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipient), "Subject: b13 marker\r\n\r\nmarker\r\n"u8.ToArray());
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        (await session.QuitAsync()).Code.Should().Be(221);

        var stored = await Maildir.WaitForPostfixAsync(recipient);
        stored.Should().ContainSingle();
        Encoding.ASCII.GetString(stored[0]).Should().Contain("b13 marker").And.NotContain("b13 partial");
    }

    /// <summary>Gives its bytes, then stalls until the read is cancelled (a slow source).</summary>
    private sealed class StallingStream(byte[] bytes) : ForwardOnlyStream
    {
        private readonly TaskCompletionSource _stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _position;

        public Task Stalled => _stalled.Task;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position < bytes.Length)
            {
                var count = Math.Min(buffer.Length, bytes.Length - _position);
                bytes.AsMemory(_position, count).CopyTo(buffer);
                _position += count;
                return count;
            }

            _stalled.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
