using System.Text;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Breaker 20: the server resets the connection while the client is still writing a later transaction (Exim does after
/// too many protocol errors or nonmail commands). The replies it sent before the reset are read: a transaction they
/// answered has its real outcome, not Unknown.
/// </summary>
public class Breaker20WriteResetTests
{
    [Fact]
    public async Task A_write_that_finds_the_connection_reset_does_not_throw_away_the_replies_already_received()
    {
        var stream = new ResettingStream();
        // A bounded wait for replies: the reset must end the send, not a reply timeout (ReceiveTimeout's default is 5 minutes).
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { ChunkSize = 1024, DataFlushThreshold = 1024, ReceiveTimeout = TimeSpan.FromSeconds(30) });
        (await session.ConnectAsync(stream))!.Code.Should().Be(220);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
        var small = SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", "one@example.test"), "Subject: one\r\n\r\nx\r\n"u8.ToArray());
        var large = SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", "two@example.test"), Encoding.ASCII.GetBytes("Subject: two\r\n\r\n" + new string('y', 200_000) + "\r\n"));

        var results = await session.SendBatchAsync([small, large]);

        results[0].Outcome.Should().Be(SmtpSendOutcome.Accepted, "its replies arrived before the reset: " + results[0]);
        results[0].FinalReply!.Text.Should().Be("queued");
        results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent, results[1].ToString());
        results[1].Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().NotBe(SmtpErrorCode.TimedOut, "the reset ended it: " + results[1]);
        session.IsConnected.Should().BeFalse();
    }

    /// <summary>
    /// A server over a stream: greets, answers EHLO, answers the first transaction once the client has written past it,
    /// then resets the connection (writes throw, reads end) once the client has written 20 KB more.
    /// </summary>
    private sealed class ResettingStream : Stream
    {
        private readonly object _lock = new();
        private readonly Queue<byte[]> _toClient = new();
        private readonly StringBuilder _received = new();
        private TaskCompletionSource _available = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _phase;
        private long _written;
        private bool _reset;

        public ResettingStream() => Enqueue("220 test ready\r\n");

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                Task wait;
                lock (_lock)
                {
                    if (_toClient.TryPeek(out var next))
                    {
                        _toClient.Dequeue();
                        next.CopyTo(buffer.Span);
                        return next.Length;
                    }

                    if (_reset)
                    {
                        throw new IOException("Unable to read data from the transport connection: Connection reset by peer.", new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionReset));
                    }

                    wait = _available.Task;
                }

                await wait.WaitAsync(cancellationToken);
            }
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                if (_reset)
                {
                    throw new IOException("Unable to write data to the transport connection: Connection reset by peer.", new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionReset));
                }

                _written += buffer.Length;
                _received.Append(Encoding.Latin1.GetString(buffer.Span));
                var text = _received.ToString();
                if (_phase == 0 && text.Contains("EHLO", StringComparison.Ordinal))
                {
                    _phase = 1;
                    Enqueue("250-test\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
                }
                else if (_phase == 1 && text.Contains("RCPT TO:<two@example.test>", StringComparison.Ordinal))
                {
                    _phase = 2;
                    _written = 0;

                    // The first transaction's replies, then the second one's envelope (its RSET when the client wrote
                    // one): a message of several chunks waits for them before its first chunk.
                    var second = text[text.IndexOf("BDAT", StringComparison.Ordinal)..];
                    Enqueue("250 ok\r\n250 ok\r\n250 queued\r\n" + (second.Contains("RSET", StringComparison.Ordinal) ? "250 ok\r\n" : string.Empty) + "250 ok\r\n250 ok\r\n");
                }
                else if (_phase == 2 && _written > 20_000)
                {
                    _reset = true;
                    Signal();
                }
            }

            return ValueTask.CompletedTask;
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private void Enqueue(string text)
        {
            _toClient.Enqueue(Encoding.ASCII.GetBytes(text));
            Signal();
        }

        private void Signal()
        {
            var previous = _available;
            _available = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            previous.TrySetResult();
        }
    }
}
