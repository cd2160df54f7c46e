using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Issue #12 (the defect, acceptance 3) and issue #14 (the push content source): sending the same
/// <see cref="SmtpMessage"/> again replays its content whole, or returns <see cref="SmtpErrorCode.ContentNotReplayable"/>
/// before MAIL; never a message that starts in the middle. Every content factory is checked.
/// </summary>
public class ContentReplayTests
{
    private const string Recipient = "one@example.test";

    /// <summary>About 208 KB of CRLF lines, headers first, as in the report of issue #12.</summary>
    private static readonly string LargeMessage = "Subject: replay\r\nFrom: sender@example.test\r\n\r\n" + Lines(3200, 65);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_stream_message_sent_again_after_the_connection_was_lost_mid_data_delivers_the_whole_message(bool chunking)
    {
        // The defect of issue #12: the second send went on from where the first stopped reading (mid-line, no headers).
        var content = new MemoryStream(Encoding.ASCII.GetBytes(LargeMessage));
        var message = SmtpMessage.FromStream(Envelope(Recipient), content);

        var (first, second, received) = await SendTwiceAsync(message, chunking);

        first.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        second.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        received.Should().Be(LargeMessage);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_seekable_stream_is_replayed_from_its_position_when_the_message_was_made(bool chunking)
    {
        const string Prefix = "not part of the message\r\n";
        var content = new MemoryStream(Encoding.ASCII.GetBytes(Prefix + LargeMessage));
        content.Position = Prefix.Length;
        var message = SmtpMessage.FromStream(Envelope(Recipient), content);
        message.ContentLength.Should().Be(LargeMessage.Length);

        var (first, second, received) = await SendTwiceAsync(message, chunking);

        first.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        second.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        received.Should().Be(LargeMessage);
        message.ContentLength.Should().Be(LargeMessage.Length);
    }

    [Theory]
    [InlineData("bytes", false)]
    [InlineData("bytes", true)]
    [InlineData("sequence", false)]
    [InlineData("sequence", true)]
    [InlineData("writer", false)]
    [InlineData("writer", true)]
    public async Task Bytes_sequences_and_content_writers_are_replayed_whole(string factory, bool chunking)
    {
        var bytes = Encoding.ASCII.GetBytes(LargeMessage);
        var calls = 0;
        var message = factory switch
        {
            "bytes" => SmtpMessage.FromBytes(Envelope(Recipient), bytes),
            "sequence" => SmtpMessage.FromSequence(Envelope(Recipient), ReadOnlySequenceFactory.SplitAt(bytes, 4096)),
            _ => SmtpMessage.FromWriter(Envelope(Recipient), async (stream, ct) =>
            {
                calls++;
                for (var offset = 0; offset < bytes.Length; offset += 1000)
                {
                    await stream.WriteAsync(bytes.AsMemory(offset, Math.Min(1000, bytes.Length - offset)), ct);
                }
            }),
        };

        var (first, second, received) = await SendTwiceAsync(message, chunking);

        first.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        second.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        received.Should().Be(LargeMessage);
        if (factory == "writer")
        {
            calls.Should().Be(2, "each send calls the content writer again");
        }
    }

    [Theory]
    [InlineData("stream")]
    [InlineData("pipe")]
    public async Task A_one_pass_source_read_by_an_earlier_send_is_ContentNotReplayable_before_MAIL(string factory)
    {
        var bytes = Encoding.ASCII.GetBytes(SmallText);
        var message = factory == "stream"
            ? SmtpMessage.FromStream(Envelope(Recipient), new NonSeekableStream(bytes))
            : SmtpMessage.FromPipeReader(Envelope(Recipient), PipeReader.Create(new ReadOnlySequence<byte>(bytes)));

        // The first send delivers; the second finds the source spent and writes nothing (the script ends with QUIT).
        var script = Script(Ehlo("PIPELINING"), [.. Transaction(), .. DataLines(SmallText), "S: 250 queued", "C: QUIT", "S: 221 bye"]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var first = await session.SendAsync(message).Safe();
        var second = await session.SendAsync(message).Safe();
        await session.QuitAsync().Safe();
        await server.WaitAsync();

        first.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        second.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        second.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentNotReplayable);
        second.Exception.Should().BeAssignableTo<SmtpException>().Which.IsTransient.Should().BeFalse();
        second.IsTransientFailure.Should().BeFalse();
        second.MailReply.Should().BeNull();
    }

    [Theory]
    [InlineData("stream", "WithCancellation")]
    [InlineData("pipe", "WithCancellation")]
    [InlineData("stream", "WithRecipients")]
    [InlineData("pipe", "WithRecipients")]
    public async Task A_copy_of_a_one_pass_message_knows_that_its_source_was_read(string factory, string copy)
    {
        // Failed before: the copy (MemberwiseClone) kept its own read flag while the source's tracker set the
        // original's, so the copy sent again went on from the middle of the spent source.
        var bytes = Encoding.ASCII.GetBytes(SmallText);
        var original = factory == "stream"
            ? SmtpMessage.FromStream(Envelope(Recipient), new NonSeekableStream(bytes))
            : SmtpMessage.FromPipeReader(Envelope(Recipient), PipeReader.Create(new ReadOnlySequence<byte>(bytes)));
        var message = copy == "WithCancellation" ? original.WithCancellation(CancellationToken.None) : original.WithRecipients([new SmtpRecipient(Recipient)]);

        var script = Script(Ehlo("PIPELINING"), [.. Transaction(), .. DataLines(SmallText), "S: 250 queued", "C: QUIT", "S: 221 bye"]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var first = await session.SendAsync(message).Safe();
        var again = await session.SendAsync(message).Safe();
        var originalAgain = await session.SendAsync(original).Safe();
        await session.QuitAsync().Safe();
        await server.WaitAsync();

        first.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        again.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentNotReplayable);
        originalAgain.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentNotReplayable);
    }

    [Fact]
    public async Task A_non_seekable_stream_not_read_by_a_refused_send_is_sent_whole_by_the_next()
    {
        var bytes = Encoding.ASCII.GetBytes(SmallText);
        var message = SmtpMessage.FromStream(Envelope(Recipient), new NonSeekableStream(bytes));
        var script = Script(
            Ehlo("PIPELINING"),
            [
                "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 451 try later", "S: 503 no", "S: 503 no",
                "C: RSET", "S: 250 ok", .. Transaction(), .. DataLines(SmallText), "S: 250 queued",
            ]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var first = await session.SendAsync(message).Safe();
        var second = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        first.Outcome.Should().Be(SmtpSendOutcome.Refused);
        second.Outcome.Should().Be(SmtpSendOutcome.Accepted);
    }

    [Theory]
    [InlineData(false, "io")]
    [InlineData(true, "io")]
    [InlineData(false, "invalid-operation")]
    [InlineData(true, "invalid-operation")]
    public async Task A_content_writer_that_fails_mid_message_is_NotSent_ContentReadFailed_and_never_ends_the_data(bool chunking, string kind)
    {
        Exception failure = kind == "io" ? new IOException("generator broke") : new InvalidOperationException("generator broke");
        var part = Encoding.ASCII.GetBytes(Lines(400, 60));
        var message = SmtpMessage.FromWriter(Envelope(Recipient), async (stream, ct) =>
        {
            // Far more than the pipe holds: the session has read and sent part of it when the writer fails.
            for (var i = 0; i < 30; i++)
            {
                await stream.WriteAsync(part, ct);
            }

            await stream.FlushAsync(ct);
            throw failure;
        });
        var script = chunking
            ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
                .Do("READ BDAT CHUNKS UNTIL RSET", async (server, ct) =>
                {
                    while (true)
                    {
                        var text = Encoding.ASCII.GetString(await server.ReadLineAsync(ct) ?? throw new ScriptMismatchException("closed before RSET"));
                        if (text == "RSET\r\n")
                        {
                            await server.SendAsync("250 reset\r\n"u8.ToArray(), ct);
                            return;
                        }

                        var parts = text.TrimEnd().Split(' ');
                        if (parts is not ["BDAT", _])
                        {
                            throw new ScriptMismatchException($"expected BDAT (never LAST) or RSET but received {SmtpScript.Printable(text)}");
                        }

                        await server.ReadExactlyAsync(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), ct);
                        await server.SendAsync("250 chunk ok\r\n"u8.ToArray(), ct);
                    }
                })
                .Then("C: QUIT", "S: 221 bye")
            : Script(Ehlo("PIPELINING"), [.. Transaction()]).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = 4096 });

        var result = await session.SendAsync(message).Safe();
        await session.DisposeAsync();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        (result.Exception!.InnerException is { } inner && (inner == failure || inner.InnerException == failure)).Should().BeTrue("the writer's exception is inside");
        var wire = server.ReceivedText;
        wire.Should().Contain(Lines(400, 60)[..1000], "part of the content went out");
        wire.Should().NotContain("\r\n.\r\n", "the data is never ended");
        wire.Should().NotContain("LAST");
    }

    [Fact]
    public async Task A_content_writer_waits_while_the_server_does_not_read_and_is_never_buffered_whole()
    {
        const int Total = 8 * 1024 * 1024;
        var piece = Encoding.ASCII.GetBytes(Lines(64, 64));
        var blockedAt = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var message = SmtpMessage.FromWriter(Envelope(Recipient), async (stream, ct) =>
        {
            long written = 0;
            await stream.WriteAsync("Subject: big\r\n\r\n"u8.ToArray(), ct);
            while (written < Total)
            {
                var write = stream.WriteAsync(piece, 0, piece.Length, ct);
                if (!write.IsCompleted)
                {
                    blockedAt.TrySetResult(written);
                }

                await write;
                written += piece.Length;
            }
        });
        var gate = new TaskCompletionSource();
        var received = new StringBuilder();
        var script = ReadData(Script(Ehlo("PIPELINING"), [.. Transaction()]).WaitFor(gate.Task), received).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script, clientWriteLimit: 64 * 1024);
        using var session = await ConnectedAsync(server);

        var sending = session.SendAsync(message);
        var written = await blockedAt.Task.Safe();
        gate.SetResult();
        var result = await sending.Safe();
        await server.WaitAsync();

        written.Should().BeLessThan(2 * 1024 * 1024, "the writer waits once about 256 KiB are written and unsent");
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        received.Length.Should().BeGreaterThan(Total);
    }

    [Fact]
    public async Task One_writer_message_sent_on_two_sessions_at_once_is_sent_whole_by_each()
    {
        var bytes = Encoding.ASCII.GetBytes(LargeMessage);
        var calls = 0;
        var firstWaiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var message = SmtpMessage.FromWriter(Envelope(Recipient), async (stream, ct) =>
        {
            var call = Interlocked.Increment(ref calls);
            await stream.WriteAsync(bytes.AsMemory(0, 1000), ct);
            if (call == 1)
            {
                // The first send stops mid-content while the second one runs whole.
                firstWaiting.SetResult();
                await release.Task;
            }

            await stream.WriteAsync(bytes.AsMemory(1000), ct);
        });
        var receivedA = new StringBuilder();
        var receivedB = new StringBuilder();
        await using var serverA = ScriptedSmtpServer.Start(ReadData(Script(Ehlo("PIPELINING"), Transaction()), receivedA).Then("S: 250 queued"));
        await using var serverB = ScriptedSmtpServer.Start(ReadData(Script(Ehlo("PIPELINING"), Transaction()), receivedB).Then("S: 250 queued"));
        using var sessionA = await ConnectedAsync(serverA);
        using var sessionB = await ConnectedAsync(serverB);

        var sendingA = sessionA.SendAsync(message);
        await firstWaiting.Task.Safe();
        var resultB = await sessionB.SendAsync(message).Safe();
        release.SetResult();
        var resultA = await sendingA.Safe();
        await serverA.WaitAsync();
        await serverB.WaitAsync();

        resultA.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        resultB.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        receivedA.ToString().Should().Be(LargeMessage);
        receivedB.ToString().Should().Be(LargeMessage);
    }

    [Fact]
    public async Task A_retry_of_a_writer_message_starts_its_writer_after_the_call_that_the_stopped_send_left_running()
    {
        // A replayable writer as users write it: each call starts from shared state (a stream it seeks back).
        var bytes = Encoding.ASCII.GetBytes(LargeMessage);
        var source = new MemoryStream(bytes, writable: false);
        var calls = 0;
        var active = 0;
        var overlapped = false;
        var firstHeld = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondCalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var message = SmtpMessage.FromWriter(Envelope(Recipient), async (stream, ct) =>
        {
            var call = Interlocked.Increment(ref calls);
            overlapped |= Interlocked.Increment(ref active) > 1;
            if (call == 2)
            {
                secondCalled.SetResult();
            }

            try
            {
                source.Position = 0;
                var buffer = new byte[4096];
                int read;
                while ((read = await source.ReadAsync(buffer, CancellationToken.None)) > 0)
                {
                    await stream.WriteAsync(buffer.AsMemory(0, read), ct);
                    if (call == 1 && !firstHeld.Task.IsCompleted && source.Position >= 8192)
                    {
                        // Busy with its own work between two writes while its send is cancelled.
                        firstHeld.SetResult();
                        await releaseFirst.Task;
                    }
                }
            }
            finally
            {
                Interlocked.Decrement(ref active);
            }
        });

        // The first send (DATA) is cancelled inside its content: NotSent, the connection closed, its writer call still running.
        await using (var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), Transaction()).ReadUntilClosed()))
        {
            var session = await ConnectedAsync(server);
            using var cts = new CancellationTokenSource();
            var sending = session.SendAsync(message.WithCancellation(cts.Token));
            await firstHeld.Task.Safe();
            await cts.CancelAsync();
            (await sending.Safe()).Outcome.Should().Be(SmtpSendOutcome.NotSent);
            session.Dispose();
            await server.WaitAsync();
        }

        // The retry reaches its content while the first call is still held.
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = new StringBuilder();
        var storing = ReadData(Script(Ehlo("PIPELINING"), Transaction()).Do("CONTENT DUE", (_, _) =>
        {
            ready.SetResult();
            return Task.CompletedTask;
        }), received).Then("S: 250 queued");
        await using var storingServer = ScriptedSmtpServer.Start(storing);
        using var again = await ConnectedAsync(storingServer);
        var retrying = again.SendAsync(message);
        await ready.Task.Safe();
        await Task.WhenAny(secondCalled.Task, Task.Delay(200)); // before the fix, the retry's call came at once
        releaseFirst.SetResult();
        var retry = await retrying.Safe();
        await storingServer.WaitAsync();

        overlapped.Should().BeFalse("the retry's writer call starts after the stopped send's call has ended");
        calls.Should().Be(2);
        retry.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        received.ToString().Should().Be(LargeMessage);
    }

    [Fact]
    public async Task A_content_writer_is_not_called_when_the_transaction_is_refused_before_its_content()
    {
        var calls = 0;
        var message = SmtpMessage.FromWriter(Envelope(Recipient), (_, _) =>
        {
            calls++;
            return Task.CompletedTask;
        });
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 550 no such user", "S: 554 no valid recipients");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        calls.Should().Be(0);
    }

    [Fact]
    public async Task A_synchronous_write_into_a_content_writer_stream_is_a_content_failure()
    {
        var message = SmtpMessage.FromWriter(Envelope(Recipient), (stream, _) =>
        {
            stream.Write("Subject: x\r\n\r\nbody\r\n"u8);
            return Task.CompletedTask;
        });
        var script = Script(Ehlo("PIPELINING"), [.. Transaction()]).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await session.DisposeAsync();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        result.Exception!.InnerException.Should().BeOfType<NotSupportedException>();
    }

    /// <summary>Sends <paramref name="message"/> to a server that drops the connection after about 20 KB of its content, then again, on a new connection of the same session, to one that stores it.</summary>
    private static async Task<(SmtpSendResult First, SmtpSendResult Second, string Received)> SendTwiceAsync(SmtpMessage message, bool chunking)
    {
        string[] ehlo = chunking ? Ehlo("PIPELINING", "CHUNKING") : Ehlo("PIPELINING");
        var options = new SmtpSessionOptions { ChunkSize = 4096, DataFlushThreshold = 4096 };

        // With BDAT the server answers the envelope (the first of several chunks waits for it), then nothing: the
        // client writes chunks until the connection's buffer is full.
        var dropping = chunking
            ? Script(ehlo, "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
            : Script(ehlo, Transaction());
        dropping.Skip(20_000).Drop();
        SmtpSendResult first;
        await using (var server = ScriptedSmtpServer.Start(dropping, clientWriteLimit: 8192))
        {
            using var session = await ConnectedAsync(server, options);
            first = await session.SendAsync(message).Safe();
            await server.WaitAsync();
        }

        var received = new StringBuilder();
        SmtpScript storing;
        if (chunking)
        {
            var data = new List<byte>();
            storing = Script(ehlo, "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
                .ReadChunks([], data, "250 2.0.0 stored")
                .Do("COLLECT", (_, _) =>
                {
                    received.Append(Encoding.ASCII.GetString([.. data]));
                    return Task.CompletedTask;
                });
        }
        else
        {
            storing = ReadData(Script(ehlo, Transaction()), received).Then("S: 250 queued");
        }

        await using var storingServer = ScriptedSmtpServer.Start(storing);
        using var again = await ConnectedAsync(storingServer, options);
        var second = await again.SendAsync(message).Safe();
        await storingServer.WaitAsync();
        return (first, second, received.ToString());
    }

    /// <summary>MAIL, RCPT and DATA pipelined, answered with 250, 250, 354.</summary>
    private static string[] Transaction() =>
        ["C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go ahead"];

    /// <summary>The server reads message data up to the final dot, undoing the dot-stuffing, into <paramref name="received"/>.</summary>
    private static SmtpScript ReadData(SmtpScript script, StringBuilder received) => script.Do("READ DATA", async (server, ct) =>
    {
        while (true)
        {
            var line = await server.ReadLineAsync(ct) ?? throw new ScriptMismatchException("the client closed the connection inside DATA");
            var text = Encoding.ASCII.GetString(line);
            if (text == ".\r\n")
            {
                return;
            }

            received.Append(text.StartsWith('.') ? text[1..] : text);
        }
    });

    /// <summary>A stream that cannot seek: read once.</summary>
    private sealed class NonSeekableStream(byte[] content) : MemoryStream(content, writable: false)
    {
        public override bool CanSeek => false;
    }
}
