using MailPipe.Tests.Support;
using Microsoft.Extensions.Logging;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// A pipelined batch cancelled while a message's end of data (the final dot, or BDAT LAST) was still only in the
/// client's output buffer, never flushed: the connection is closed without sending it, so that message cannot have
/// been delivered. It was reported Unknown ("may have been delivered; do not resend"), which makes a careful caller
/// drop or hold a message the server never had. NotSent only when no flush began after the end was written; a flush
/// that began (even cancelled) may have sent it, and the result stays Unknown.
/// </summary>
public class UnflushedEndOfDataCancellationTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_message_whose_end_of_data_never_left_the_buffer_is_not_sent_when_the_batch_is_cancelled(bool chunking)
    {
        await using var server = ScriptedSmtpServer.Start(FirstMessageUntilClosed(chunking));
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(CancelThenYield(cts, Message(1), Message(2)), cts.Token).Safe())
            .Should().ThrowAsync<SmtpBatchCanceledException>();

        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("LAST").And.NotContain("\r\n.\r\n", "m1's end of data was still in the client's buffer when the call was cancelled");
        var first = thrown.Which.Results.Should().ContainSingle(r => r.Envelope.Recipients[0].Address == "m1@example.test").Which;
        first.Outcome.Should().Be(SmtpSendOutcome.NotSent, "no byte of its end of data reached the transport: the server cannot have the message");
        session.IsConnected.Should().BeFalse();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_flush_that_would_begin_after_the_cancellation_hands_nothing_over_and_the_message_is_not_sent(bool chunking)
    {
        // The caller cancels after m1's end of data went into the buffer and before the flush that carries it begins
        // (here as m2's MAIL is written, from the protocol log; a loaded run of CancelAtEveryStepProbeTests hit it from
        // another thread). That flush handed the stream the bytes with a cancelled token, which a stream may send or
        // refuse (the pipe refused them), and m1 came back Unknown although the server never had its end.
        await using var server = ScriptedSmtpServer.Start(FirstMessageUntilClosed(chunking));
        using var cts = new CancellationTokenSource();
        using var logs = new CancelAtSecondMail(cts);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { LoggerFactory = logs });

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync([Message(1), Message(2)], cts.Token).Safe())
            .Should().ThrowAsync<SmtpBatchCanceledException>();

        await server.WaitAsync();
        logs.Cancelled.Should().BeTrue();
        thrown.Which.Results[0].Outcome.Should().Be(SmtpSendOutcome.NotSent, "m1's end of data never left the client's buffer: {0}", thrown.Which.Results[0]);
        server.ClientStream.HandedText.Should().NotContain("LAST").And.NotContain("\r\n.\r\n", "no flush began after the cancellation");
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task A_message_whose_end_of_data_was_flushed_stays_unknown_when_the_batch_is_cancelled()
    {
        // The end of data went out (the streaming call flushes while the sequence waits); no final reply yet.
        var reached = new TaskCompletionSource();
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Signal(reached)
            .ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var results = new List<SmtpSendResult>();
        var thrown = await FluentActions.Awaiting(async () =>
        {
            await foreach (var result in session.SendBatchStreamingAsync(WaitThenCancel(reached.Task, cts, Message(1), Message(2)), cts.Token))
            {
                results.Add(result);
            }
        }).Should().ThrowAsync<OperationCanceledException>();

        await server.WaitAsync();
        results.Should().ContainSingle(r => r.Envelope.Recipients[0].Address == "m1@example.test")
            .Which.Outcome.Should().Be(SmtpSendOutcome.Unknown, "its end of data reached the server, which may have the message");
    }

    /// <summary>A protocol log that cancels <paramref name="cts"/> as the second MAIL command is written (on the writer's own flow).</summary>
    private sealed class CancelAtSecondMail(CancellationTokenSource cts) : ILoggerFactory, ILogger
    {
        private int _mails;

        public bool Cancelled => cts.IsCancellationRequested;

        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (formatter(state, exception).StartsWith("C: MAIL ", StringComparison.Ordinal) && Interlocked.Increment(ref _mails) == 2)
            {
                cts.Cancel();
            }
        }

        public void Dispose()
        {
        }
    }

    private static async IAsyncEnumerable<SmtpMessage> WaitThenCancel(Task reached, CancellationTokenSource cts, SmtpMessage first, SmtpMessage second)
    {
        yield return first;
        await reached;
        await cts.CancelAsync();
        yield return second;
    }
}
