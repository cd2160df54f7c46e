using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>A caller's content stream that fails mid-batch: results are kept, the broken message is never delivered.</summary>
public sealed class ContentFailureTests
{
    public ContentFailureTests() => TestServers.RequireListening(TestServers.PostfixPort);

    [Fact]
    public async Task With_bdat_the_failing_message_is_reset_and_the_batch_goes_on()
    {
        var recipients = Enumerable.Range(0, 3).Select(_ => TestServers.UniqueRecipient()).ToArray();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");

        var results = await session.SendBatchAsync(
        [
            SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", recipients[0]), "Subject: 0\r\n\r\nzero\r\n"u8.ToArray()),
            SmtpMessage.FromStream(new SmtpEnvelope("sender@example.test", recipients[1]), new FailingStream()),
            SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", recipients[2]), "Subject: 2\r\n\r\ntwo\r\n"u8.ToArray()),
        ]);

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.Accepted);
        results[1].Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        results[1].Exception!.InnerException.Should().BeOfType<IOException>();
        session.IsConnected.Should().BeTrue();
        await Maildir.WaitForPostfixAsync(recipients[2]);
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipients[1])).Should().BeFalse("the broken message must never be delivered");
    }

    [Fact]
    public async Task With_data_the_connection_is_closed_and_earlier_results_are_kept()
    {
        var recipients = Enumerable.Range(0, 3).Select(_ => TestServers.UniqueRecipient()).ToArray();
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = false });
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");

        var results = await session.SendBatchAsync(
        [
            SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", recipients[0]), "Subject: 0\r\n\r\nzero\r\n"u8.ToArray()),
            SmtpMessage.FromStream(new SmtpEnvelope("sender@example.test", recipients[1]), new FailingStream()),
            SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", recipients[2]), "Subject: 2\r\n\r\ntwo\r\n"u8.ToArray()),
        ]);

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent);
        results[1].Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        session.IsConnected.Should().BeFalse("a message cut off inside DATA can only be abandoned by closing the connection");
        await Maildir.WaitForPostfixAsync(recipients[0]);
        await Task.Delay(500);
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipients[1])).Should().BeFalse("the broken message must never be delivered");
    }

    /// <summary>Gives some bytes, then fails like a disk or network read would.</summary>
    private sealed class FailingStream : Stream
    {
        private int _reads;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_reads++ > 0)
            {
                throw new IOException("simulated read failure");
            }

            var part = Encoding.ASCII.GetBytes("Subject: 1\r\n\r\nfirst part of the body\r\n");
            part.CopyTo(buffer, offset);
            return part.Length;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
