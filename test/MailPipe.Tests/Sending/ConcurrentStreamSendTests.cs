using System.Buffers;
using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// One seekable stream read by two sends at the same time (the same <see cref="SmtpMessage"/> sent on two connections,
/// as a shared <see cref="SmtpSender"/> does for two callers, or two messages made from one stream): each send must
/// read the whole content from the message's start. The sends shared the stream's one position, so each went out with
/// part of the content, was accepted, and reported <see cref="SmtpSendOutcome.Accepted"/> (against Postfix, three
/// concurrent sends of one 800,016-byte MemoryStream message stored 275,728, 786,434 and 800,016 bytes).
/// </summary>
public class ConcurrentStreamSendTests
{
    private static readonly string Content = "Subject: shared stream\r\n\r\n" + Lines(40, 64);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Two_sends_reading_one_seekable_stream_at_once_each_send_the_whole_message(bool twoMessages)
    {
        var stream = new SlowSeekableStream(Encoding.ASCII.GetBytes(Content), piece: 512);
        var first = SmtpMessage.FromStream(Envelope("one@example.test"), stream);
        var second = twoMessages ? SmtpMessage.FromStream(Envelope("one@example.test"), stream) : first;
        var secondAtData = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server1 = ScriptedSmtpServer.Start(Transaction(null));
        await using var server2 = ScriptedSmtpServer.Start(Transaction(secondAtData));
        using var session1 = await ConnectedAsync(server1, new SmtpSessionOptions { UseChunking = false });
        using var session2 = await ConnectedAsync(server2, new SmtpSessionOptions { UseChunking = false });

        // The first send is in the middle of the content (its second read waits) when the second send starts.
        var sending1 = session1.SendAsync(first);
        await stream.SecondReadWaiting.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        var sending2 = session2.SendAsync(second);
        await secondAtData.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        stream.Open();

        var results = await Task.WhenAll(sending1, sending2).Safe();

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted, string.Join("; ", results.Select(r => r.ToString())));
        await server1.WaitAsync();
        await server2.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_second_send_of_a_one_pass_source_that_begins_before_the_first_read_it_is_NotSent(bool pipeReader)
    {
        // Both sends began before either read: each read part of the source, and each part went out as the message.
        var bytes = Encoding.ASCII.GetBytes(Content);
        var message = pipeReader
            ? SmtpMessage.FromPipeReader(Envelope("one@example.test"), System.IO.Pipelines.PipeReader.Create(new ReadOnlySequence<byte>(bytes)))
            : SmtpMessage.FromStream(Envelope("one@example.test"), new NonSeekableStream(bytes));
        var firstAtData = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answerData = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = Script(Ehlo(), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<one@example.test>", "S: 250 ok", "C: DATA")
            .Signal(firstAtData).WaitFor(answerData.Task).Send("354 go").ExpectRaw(Content + ".\r\n").Send("250 queued");
        await using var server1 = ScriptedSmtpServer.Start(first);
        await using var server2 = ScriptedSmtpServer.Start(Script(Ehlo()).ReadUntilClosed());
        using var session1 = await ConnectedAsync(server1, new SmtpSessionOptions { UseChunking = false });
        var session2 = await ConnectedAsync(server2, new SmtpSessionOptions { UseChunking = false });

        // The first send has begun (DATA written) and not read a byte yet when the second send of the message begins.
        var sending1 = session1.SendAsync(message);
        await firstAtData.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        var second = await session2.SendAsync(message).Safe();
        answerData.TrySetResult();
        var firstResult = await sending1.Safe();

        second.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        second.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentNotReplayable);
        firstResult.Outcome.Should().Be(SmtpSendOutcome.Accepted, firstResult.ToString());
        await server1.WaitAsync();
        await session2.DisposeAsync();
        await server2.WaitAsync();
        server2.ReceivedText.Should().NotContain("MAIL FROM", "nothing of the second send is written");
    }

    /// <summary>
    /// The SIZE of a <see cref="MemoryStream"/>'s text is measured before MAIL. It was measured under the gate that the
    /// sends of one stream share, taken with a blocking <c>SemaphoreSlim.Wait</c>: while another send of the stream sat
    /// in an asynchronous read (a memory stream whose reads wait, or a long measurement of a large one), the measuring
    /// send blocked its thread (a thread-pool thread, or the caller's inside <c>SendAsync</c>) until that read ended;
    /// many concurrent sends of one stream starved the pool. Here the second send never reached MAIL while the first
    /// one's read waited. The measurement needs no position, so it no longer takes the gate.
    /// </summary>
    [Fact]
    public async Task Measuring_a_memory_streams_SIZE_does_not_wait_for_another_send_reading_the_stream()
    {
        var stream = new WaitingMemoryStream(Encoding.ASCII.GetBytes(Content));
        var message = SmtpMessage.FromStream(Envelope("one@example.test"), stream);
        var secondAtMail = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var size = Encoding.ASCII.GetByteCount(Content);
        var second = Script(Ehlo("SIZE 1000000"), $"C: MAIL FROM:<sender@example.test> SIZE={size}")
            .Signal(secondAtMail)
            .Then("S: 250 ok", "C: RCPT TO:<one@example.test>", "S: 250 ok", "C: DATA", "S: 354 go")
            .ExpectRaw(Content + ".\r\n").Then("S: 250 queued");
        await using var server1 = ScriptedSmtpServer.Start(Transaction(null));
        await using var server2 = ScriptedSmtpServer.Start(second);
        using var session1 = await ConnectedAsync(server1, new SmtpSessionOptions { UseChunking = false });
        using var session2 = await ConnectedAsync(server2, new SmtpSessionOptions { UseChunking = false });

        // The first send waits in a read of the stream (holding the stream's gate) when the second send starts.
        var sending1 = session1.SendAsync(message);
        await stream.ReadWaiting.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        var sending2 = Task.Run(() => session2.SendAsync(message));
        var reachedMail = await Task.WhenAny(secondAtMail.Task, Task.Delay(ScriptedSmtpServer.SafetyTimeout));
        stream.Open();

        reachedMail.Should().BeSameAs(secondAtMail.Task, "measuring SIZE must not block behind the other send's read");
        var results = await Task.WhenAll(sending1, sending2).Safe();
        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted, string.Join("; ", results.Select(r => r.ToString())));
        await server1.WaitAsync();
        await server2.WaitAsync();
    }

    /// <summary>One DATA transaction whose content must arrive whole; <paramref name="atData"/> is set once 354 was sent.</summary>
    private static SmtpScript Transaction(TaskCompletionSource? atData)
    {
        var script = Script(Ehlo(), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<one@example.test>", "S: 250 ok", "C: DATA", "S: 354 go");
        if (atData is not null)
        {
            script.Signal(atData);
        }

        return script.ExpectRaw(Content + ".\r\n").Then("S: 250 queued");
    }

    /// <summary>A memory stream whose first asynchronous read waits for <see cref="Open"/>.</summary>
    private sealed class WaitingMemoryStream(byte[] content) : MemoryStream(content, writable: false)
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _readWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _reads;

        public Task ReadWaiting => _readWaiting.Task;

        public void Open() => _open.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Increment(ref _reads) == 1)
            {
                _readWaiting.TrySetResult();
                await _open.Task.WaitAsync(cancellationToken);
            }

            return Read(buffer.Span);
        }
    }

    /// <summary>A stream that cannot seek.</summary>
    private sealed class NonSeekableStream(byte[] content) : MemoryStream(content, writable: false)
    {
        public override bool CanSeek => false;
    }

    /// <summary>A seekable stream that hands out at most <c>piece</c> bytes per read; its second read waits for <see cref="Open"/>.</summary>
    private sealed class SlowSeekableStream(byte[] content, int piece) : Stream
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _secondReadWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _reads;

        public Task SecondReadWaiting => _secondReadWaiting.Task;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => content.Length;

        public override long Position { get; set; }

        public void Open() => _open.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Increment(ref _reads) == 2)
            {
                _secondReadWaiting.TrySetResult();
                await _open.Task.WaitAsync(cancellationToken);
            }

            return Read(buffer.Span);
        }

        public override int Read(Span<byte> buffer)
        {
            var count = (int)Math.Clamp(content.Length - Position, 0, Math.Min(piece, buffer.Length));
            content.AsSpan((int)Position, count).CopyTo(buffer);
            Position += count;
            return count;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => Position + offset,
            _ => content.Length + offset,
        };

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
