using System.IO.Pipelines;
using System.Text;
using MailPipe.Tests.Support;
using MailPipe.Transmission;
using MailPipe.Transport;

namespace MailPipe.Tests.Transmission;

/// <summary>The channel's own rules: one failure funnel (Break keeps the first reason, once), and the operation guard.</summary>
public class SmtpChannelTests
{
    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(30);

    private readonly Pipe _toClient = new();
    private readonly Pipe _toServer = new();
    private int _connectionLost;

    private SmtpChannel NewChannel(out SmtpConnection connection)
    {
        var channel = new SmtpChannel(this, new SmtpSessionOptions(), () =>
        {
            _connectionLost++;
        });
        connection = SmtpConnection.FromStream(new DuplexStream(_toClient.Reader, _toServer.Writer));
        channel.Attach(connection);
        return channel;
    }

    private async Task ServerSendsAsync(string text) => await _toClient.Writer.WriteAsync(Encoding.ASCII.GetBytes(text));

    [Fact]
    public void Break_keeps_the_first_reason_and_closes_once()
    {
        var channel = NewChannel(out _);

        channel.Break("first failure").Should().BeTrue();
        channel.Break("second failure").Should().BeFalse();
        channel.Abort().Should().BeFalse();

        channel.IsOpen.Should().BeFalse();
        channel.CloseReason.Should().Be("first failure");
        var use = () => channel.OpenConnection;
        use.Should().Throw<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
    }

    [Fact]
    public void A_new_connection_forgets_the_reason_of_the_last_one()
    {
        var channel = NewChannel(out _);
        channel.Break("old failure");
        channel.Reset();

        channel.Attach(SmtpConnection.FromStream(new DuplexStream(new Pipe().Reader, new Pipe().Writer)));

        channel.CloseReason.Should().BeNull();
        channel.State.Should().Be(SmtpSessionState.Connected);
        channel.GreetingExpected.Should().BeTrue();
    }

    [Fact]
    public async Task The_failure_funnel_keeps_the_first_reason_when_a_read_fails_after_a_break()
    {
        var channel = NewChannel(out _);
        using (channel.StartOperation(SmtpSessionState.Connected, allowData: false, allowPendingReplies: true, CancellationToken.None))
        {
            await ServerSendsAsync("220 ready\r\n");
            (await channel.ReadReplyAsync(NoHang)).Code.Should().Be(220);
            channel.WriteCommand("NOOP"u8, "NOOP");
            await channel.FlushAsync("sending NOOP");

            var read = channel.ReadReplyAsync(NoHang).AsTask();
            read.IsCompleted.Should().BeFalse("the server has not answered");

            // From another thread, as the concurrent reader or DisconnectAsync would.
            (await Task.Run(() => channel.Break("a protocol violation seen by the reader"))).Should().BeTrue();

            var failure = (await read.Invoking(r => r.WaitAsync(NoHang)).Should().ThrowAsync<SmtpException>()).Which;
            failure.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
            channel.CloseReason.Should().Be("a protocol violation seen by the reader", "the read's own failure does not replace the first reason");
            channel.State.Should().Be(SmtpSessionState.Connected, "the state above is reset when the operation ends, on its own flow, never by the breaking thread");
            _connectionLost.Should().Be(0);
        }

        _connectionLost.Should().Be(1);
    }

    /// <summary>
    /// The caller's close (DisconnectAsync from another thread) can land after a send took its last reply but before its
    /// read of the final one began: that read fails as the close, named, just as a read already waiting does
    /// (LocalCloseClassificationTests). It said only "The connection was closed.", so the Unknown result's message
    /// depended on which side of that moment the close came.
    /// </summary>
    [Fact]
    public async Task A_reply_read_begun_after_the_callers_close_fails_with_that_close_named()
    {
        var channel = NewChannel(out _);
        using (channel.StartOperation(SmtpSessionState.Connected, allowData: false, allowPendingReplies: true, CancellationToken.None))
        {
            await ServerSendsAsync("220 ready\r\n");
            (await channel.ReadReplyAsync(NoHang)).Code.Should().Be(220);
            channel.WriteCommand("NOOP"u8, "NOOP");
            await channel.FlushAsync("sending NOOP");
            (await Task.Run(channel.Abort)).Should().BeTrue();

            var failure = (await FluentActions.Awaiting(() => channel.ReadReplyAsync(NoHang).AsTask()).Should().ThrowAsync<SmtpException>()).Which;

            failure.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
            failure.Message.Should().Contain("closed by the caller");
        }
    }

    [Fact]
    public void The_operation_guard_allows_one_operation_at_a_time_and_refuses_after_dispose()
    {
        var channel = NewChannel(out _);
        var first = channel.StartOperation(SmtpSessionState.Connected, allowData: false, allowPendingReplies: true, CancellationToken.None);

        var second = () => channel.StartOperation(SmtpSessionState.Connected, allowData: false, allowPendingReplies: true, CancellationToken.None);
        second.Should().Throw<InvalidOperationException>().WithMessage("Another operation*");
        first.Dispose();

        var pending = () => channel.StartOperation(SmtpSessionState.Connected, allowData: false, allowPendingReplies: false, CancellationToken.None);
        pending.Should().Throw<InvalidOperationException>().WithMessage("1 repl(ies)*", "the greeting has not been read");

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var early = () => channel.StartOperation(SmtpSessionState.Connected, allowData: false, allowPendingReplies: true, cancelled.Token);
        early.Should().Throw<OperationCanceledException>();
        channel.IsBusy.Should().BeFalse("a refused operation releases the guard");

        channel.MarkDisposed();
        second.Should().Throw<ObjectDisposedException>();
    }
}
