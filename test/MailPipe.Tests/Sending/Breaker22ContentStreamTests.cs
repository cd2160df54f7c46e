using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Breaker 22: a message's content stream whose read ignores its token (a stream built on a synchronous read, a
/// network source that does not take a token) and waits. <c>DisconnectAsync</c> and the caller's cancellation must
/// still end the send (NotSent with ConnectionClosed, or the cancellation), as the README promises for a read that
/// waits for the source; the read is left to the stream, its buffer never reused.
/// </summary>
public class Breaker22ContentStreamTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task DisconnectAsync_ends_a_content_read_that_ignores_its_token(bool chunking)
    {
        await using var server = ScriptedSmtpServer.Start(FirstMessageUntilClosed(chunking));
        using var session = await ConnectedAsync(server);
        var content = new Breaker22StallingContent("Subject: stalled\r\n\r\nfirst part\r\n");

        var send = session.SendAsync(SmtpMessage.FromStream(Envelope("m1@example.test"), content));
        await content.Stalled.Safe();
        await session.DisconnectAsync();
        var result = await send.WaitAsync(ScriptedSmtpServer.SafetyTimeout / 3);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed, result.Exception?.ToString());
        content.Release();
        server.ReceivedText.Should().NotContain("\r\n.\r\n").And.NotContain("LAST");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_callers_cancellation_ends_a_content_read_that_ignores_its_token(bool chunking)
    {
        await using var server = ScriptedSmtpServer.Start(FirstMessageUntilClosed(chunking));
        using var session = await ConnectedAsync(server);
        var content = new Breaker22StallingContent("Subject: stalled\r\n\r\nfirst part\r\n");
        using var cts = new CancellationTokenSource();

        var send = session.SendAsync(SmtpMessage.FromStream(Envelope("m1@example.test"), content), cts.Token);
        await content.Stalled.Safe();
        await cts.CancelAsync();

        await FluentActions.Awaiting(() => send.WaitAsync(ScriptedSmtpServer.SafetyTimeout / 3)).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
        content.Release();
        server.ReceivedText.Should().NotContain("\r\n.\r\n").And.NotContain("LAST");
    }
}

/// <summary>Gives its text, then a read that ignores its token and waits until <see cref="Release"/> (then fills the buffer it was given, as a late read would).</summary>
internal sealed class Breaker22StallingContent(string first) : Stream
{
    private readonly TaskCompletionSource _stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _firstGiven;

    public Task Stalled => _stalled.Task;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public void Release() => _released.TrySetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_firstGiven)
        {
            _firstGiven = true;
            return Encoding.ASCII.GetBytes(first, buffer.Span);
        }

        _stalled.TrySetResult();
        await _released.Task; // the token is ignored on purpose
        buffer.Span.Fill((byte)'!');
        return buffer.Length;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
