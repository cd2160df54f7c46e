using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>
/// Exim 4.96 refusing the RSET that resets a BDAT transaction between chunks (after its content failed). Exim counts a
/// RSET that is not the first since the last message as a "nonmail" command; each content failure between chunks costs
/// one. Past smtp_accept_max_nonmail (10) such a RSET read between chunks is not answered "554 Too many nonmail commands"
/// as elsewhere but "503 only BDAT permissible after non-LAST BDAT"; every command after it (the second RSET, the next
/// pipelined MAIL FROM and RCPT) gets "503 only RSET accepted now" (also a counted RSET), and after three protocol errors
/// Exim drops the connection. The message whose MAIL FROM got that 503 came back Refused: a permanent refusal of a
/// message Exim never looked at, which the caller would not retry. It is NotSent and transient (5c32afe).
/// </summary>
public sealed class EximRefusedResetTests
{
    [Fact]
    public async Task Past_Exims_nonmail_limit_the_message_after_a_refused_RSET_between_chunks_is_NotSent_not_Refused()
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { ChunkSize = 4096 });
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.HelloAsync("client.example.test");
        session.Capabilities.SupportsChunking.Should().BeTrue();
        session.Capabilities.SupportsPipelining.Should().BeTrue();

        // Good and failing messages in turn: the 11th failure's RSET passes Exim's limit of 10 counted nonmail commands.
        var recipients = Enumerable.Range(0, 30).Select(i => TestServers.UniqueRecipient(i % 2 == 1 ? "exim-rset-broken" : "exim-rset")).ToArray();
        var messages = recipients.Select((recipient, i) => i % 2 == 1
            ? SmtpMessage.FromStream(new SmtpEnvelope("sender@example.test", recipient), new FailingAfterStream(6000))
            : SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", recipient), Encoding.ASCII.GetBytes($"Subject: {i}\r\n\r\nbody {i}\r\n")))
            .ToList();

        var results = await session.SendBatchAsync(messages);

        var all = string.Join("\n", results);
        results.Should().HaveCount(30);
        results.Should().Contain(r => r.MailReply != null && r.MailReply.Code == 503 && r.MailReply.ToString().Contains("only RSET accepted now", StringComparison.Ordinal),
            "Exim refused the RSET between chunks and the MAIL FROM after it (else this test no longer reaches the case):\n" + all);
        results.Should().NotContain(r => r.Outcome == SmtpSendOutcome.Refused, "no message was refused by Exim; the 503s after a refused RSET are no verdict:\n" + all);
        results.Should().NotContain(r => r.Outcome == SmtpSendOutcome.Unknown, all);
        for (var i = 1; i < results.Count; i += 2)
        {
            results[i].Outcome.Should().Be(SmtpSendOutcome.NotSent, $"message {i}'s content failed: {results[i]}");
        }

        var notSent = results.Where(r => r.Outcome == SmtpSendOutcome.NotSent).ToList();
        notSent.Should().OnlyContain(r => r.IsTransientFailure || (r.Exception as SmtpException)!.ErrorCode == SmtpErrorCode.ContentReadFailed, all);
        var outOfStep = results.Single(r => r.MailReply is { Code: 503 });
        outOfStep.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        outOfStep.IsTransientFailure.Should().BeTrue("Exim never looked at the message: another connection may send it");
        outOfStep.Exception.Should().BeOfType<SmtpException>().Which.Message.Should().Contain("refused RSET");

        var accepted = Enumerable.Range(0, 30).Where(i => results[i].Outcome == SmtpSendOutcome.Accepted).ToList();
        accepted.Should().NotBeEmpty();
        foreach (var i in accepted)
        {
            await Maildir.WaitForEximAsync(recipients[i]);
        }

        foreach (var i in Enumerable.Range(0, 30))
        {
            CopiesInExim(recipients[i]).Should().Be(results[i].Outcome == SmtpSendOutcome.Accepted ? 1 : 0, $"message {i}: {results[i]}");
        }
    }

    private static int CopiesInExim(string recipient)
    {
        var needle = Encoding.UTF8.GetBytes("Envelope-to: " + recipient + "\r\n");
        return Directory.EnumerateFiles(Path.Combine(TestServers.EximMaildir, "new"))
            .Count(file => File.ReadAllBytes(file).AsSpan().IndexOf(needle) >= 0);
    }

    /// <summary>Gives <c>total</c> octets of text (more than one 4096-octet chunk), then fails like a disk or network read would.</summary>
    private sealed class FailingAfterStream(int total) : Stream
    {
        private int _position;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_position >= total)
            {
                throw new IOException("simulated read failure");
            }

            var n = Math.Min(count, total - _position);
            for (var i = 0; i < n; i++)
            {
                var p = (_position + i) % 80;
                buffer[offset + i] = p == 78 ? (byte)'\r' : p == 79 ? (byte)'\n' : (byte)'x';
            }

            _position += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
