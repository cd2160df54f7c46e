using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Transmission;

/// <summary>
/// A failure that follows MailPipe's own close of the transmission channel (<see cref="AsyncSmtpSession.DisconnectAsync"/>
/// from another thread) is <see cref="SmtpErrorCode.ConnectionClosed"/>, whatever exception the caller's stream throws
/// for a read it had pending when it was disposed. Seen in CI as <see cref="SmtpErrorCode.SystemError"/>: the test
/// transport (a pipe read as a stream) throws <see cref="InvalidOperationException"/> for a read after its reader was
/// completed, as a stream given to <c>ConnectAsync(Stream)</c> may.
/// </summary>
public class LocalCloseClassificationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_disconnect_while_the_final_reply_is_awaited_is_Unknown_with_ConnectionClosed(bool chunking)
    {
        var reached = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(FinalReplyNeverSent(chunking, reached));
        using var session = await ConnectedAsync(new OddlyClosingStream(server.ClientStream));

        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText));
        await reached.Task.Safe();
        await WaitUntilOnlyTheFinalReplyIsDueAsync(session);

        await session.DisconnectAsync();
        var result = await send.Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed, result.Exception?.ToString());
        result.Exception!.Message.Should().Contain("closed by the caller");
        result.AcceptedRecipients.Should().HaveCount(1);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_disconnect_while_a_command_reply_is_awaited_throws_ConnectionClosed()
    {
        var reached = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: NOOP").Signal(reached).ReadUntilClosed());
        using var session = await ConnectedAsync(new OddlyClosingStream(server.ClientStream));

        var noop = session.NoopAsync();
        await reached.Task.Safe();
        await session.DisconnectAsync();

        var thrown = await FluentActions.Awaiting(() => noop.Safe()).Should().ThrowAsync<SmtpException>();
        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed, thrown.Which.ToString());
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_stream_failing_on_its_own_stays_SystemError()
    {
        // The failed read may be the session's read-ahead while idle, so the NOOP may never be written.
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING")).ReadUntilClosed());
        var stream = new OddlyClosingStream(server.ClientStream);
        using var session = await ConnectedAsync(stream);

        stream.FailReads();
        var thrown = await FluentActions.Awaiting(() => session.NoopAsync().Safe()).Should().ThrowAsync<SmtpException>();

        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.SystemError, "the connection was open: nothing of ours explains the failure");
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    private static async Task<AsyncSmtpSession> ConnectedAsync(Stream stream)
    {
        var session = new AsyncSmtpSession();
        await session.ConnectAsync(stream).Safe();
        (await session.EhloAsync("client.example.test").Safe()).Code.Should().Be(250);
        return session;
    }

    /// <summary>A stream whose pending and later reads throw <see cref="InvalidOperationException"/> once it is disposed (or told to fail).</summary>
    private sealed class OddlyClosingStream(Stream inner) : Stream
    {
        private readonly TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void FailReads() => _failed.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = inner.ReadAsync(buffer, cancellationToken).AsTask();
            if (await Task.WhenAny(read, _failed.Task) != read)
            {
                _ = read.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                throw new InvalidOperationException("Reading is not allowed after the stream was completed.");
            }

            return await read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _failed.TrySetResult();
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
