using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.Resilience.Tests.Support;

namespace MailPipe.Resilience.Tests.Integration;

/// <summary>
/// Issue #12's defect re-checked end to end as a reviewer does: a <see cref="SmtpMessage.FromStream"/> message whose
/// first send lost its connection after part of the data reached the real Postfix (127.0.0.1:2525, through a loopback
/// proxy that cuts the connection mid-message) is sent again with the same <see cref="SmtpMessage"/>: Postfix stores
/// it once and whole, or (a one-pass stream) the second send is NotSent/ContentNotReplayable before MAIL.
/// </summary>
[Trait("Category", "Integration")]
public class Acc21ContentReplayPostfixTests
{
    private const string Sender = "sender@example.test";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    /// <summary>About 208 KB; the proxy cuts the connection when the client sends line 300 (about 20 KB in).</summary>
    private static byte[] Content(string recipient)
    {
        var text = new StringBuilder($"From: <{Sender}>\r\nTo: <{recipient}>\r\nSubject: acc21 replay\r\nMessage-Id: <{Guid.NewGuid():N}@acc21.test>\r\n\r\n");
        for (var i = 0; i < 3200; i++)
        {
            text.Append(FormattableString.Invariant($"acc21-line-{i:D4} ")).Append('x', 46).Append("\r\n");
        }

        return Encoding.ASCII.GetBytes(text.ToString());
    }

    private static async Task<SmtpSendResult> SendOnNewSessionAsync(int port, SmtpMessage message, bool chunking)
    {
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
        await session.ConnectAsync(TestServers.Host, port, SmtpTlsMode.None, "client.acc21.test");
        var result = await session.SendAsync(message).WaitAsync(Wait);
        if (session.IsConnected)
        {
            await session.QuitAsync();
        }

        return result;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_seekable_stream_message_sent_again_after_a_cut_mid_data_is_stored_once_and_whole(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { DropWhen = connection => connection == 1, DropMarker = "acc21-line-0300 " };
        var recipient = TestServers.UniqueRecipient("acc21-replay");
        var content = Content(recipient);

        // The stream starts with bytes that are not the message: FromStream must replay from where the stream was when
        // the message was made, not from 0 and not from where the first send stopped.
        var stream = new MemoryStream([.. "NOT PART OF THE MESSAGE\r\n"u8.ToArray(), .. content]);
        stream.Position = "NOT PART OF THE MESSAGE\r\n"u8.Length;
        var message = SmtpMessage.FromStream(new SmtpEnvelope(Sender, recipient), stream);

        var first = await SendOnNewSessionAsync(proxy.Port, message, chunking);
        first.Outcome.Should().NotBe(SmtpSendOutcome.Accepted, "the server never saw the end of the data: " + first);

        var second = await SendOnNewSessionAsync(proxy.Port, message, chunking);

        second.Outcome.Should().Be(SmtpSendOutcome.Accepted, second.ToString());
        proxy.CountLinesStartingWith("MAIL FROM:").Should().Be(2);
        var stored = await Maildir.WaitForPostfixAsync(recipient);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Directory.GetFiles(Path.Combine(TestServers.PostfixMaildir, recipient, "new")).Should().HaveCount(1, "the cut transaction is never delivered");
        var body = Maildir.StripTraceHeaders(stored[0]);
        body.Length.Should().Be(content.Length);
        body.Should().Equal(content, "the whole message from its first header, not its rest");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_one_pass_stream_read_by_the_cut_send_is_ContentNotReplayable_and_no_second_MAIL_is_sent(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { DropWhen = connection => connection == 1, DropMarker = "acc21-line-0300 " };
        var recipient = TestServers.UniqueRecipient("acc21-onepass");
        var message = SmtpMessage.FromStream(new SmtpEnvelope(Sender, recipient), new OnePassStream(Content(recipient)));

        var first = await SendOnNewSessionAsync(proxy.Port, message, chunking);
        first.Outcome.Should().NotBe(SmtpSendOutcome.Accepted, first.ToString());

        var second = await SendOnNewSessionAsync(proxy.Port, message, chunking);

        second.Outcome.Should().Be(SmtpSendOutcome.NotSent, second.ToString());
        second.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentNotReplayable);
        second.IsTransientFailure.Should().BeFalse();
        SmtpResiliencePredicates.Classify(second).Should().Be(SmtpFailureKind.Permanent);
        proxy.CountLinesStartingWith("MAIL FROM:").Should().Be(1, "the second send stops before MAIL: " + proxy.ClientTranscript);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipient)).Should().BeFalse("nothing, whole or in part, was delivered");
    }

    /// <summary>A stream that can be read once, front to back (a network or pipe source).</summary>
    private sealed class OnePassStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _inner.ReadAsync(buffer, cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
