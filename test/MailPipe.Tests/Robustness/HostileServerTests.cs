using System.Net.Sockets;
using System.Text;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Robustness;

/// <summary>
/// A hostile or broken server over real loopback sockets: malformed replies, a reset and an orderly close at every
/// step of a transaction (DATA and BDAT, pipelined and not), a server that stops reading, a slow drip of bytes. Each
/// case gets a typed error, no hang, and an outcome that is true to what the server received: a message whose end the
/// server acknowledged is never NotSent, one whose end it never saw is never Accepted, one whose end it saw without
/// replying is Unknown.
/// </summary>
public class HostileServerTests
{
    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(20);

    // ---- Malformed replies ----

    public static TheoryData<string, string, SmtpErrorCode> MalformedGreetings => new()
    {
        { "garbage", "HELLO THERE\r\n", SmtpErrorCode.ProtocolError },
        { "NUL octets", "\0\0\0\0\r\n", SmtpErrorCode.ProtocolError },
        { "NUL after the code", "220\0ready\r\n", SmtpErrorCode.ProtocolError },
        { "code 199", "199 too low\r\n", SmtpErrorCode.ProtocolError },
        { "code 600", "600 too high\r\n", SmtpErrorCode.ProtocolError },
        { "code 000", "000 zero\r\n", SmtpErrorCode.ProtocolError },
        { "continuation with another code", "220-first\r\n250 second\r\n", SmtpErrorCode.ProtocolError },
        { "close in the middle of a reply", "220-first\r\n220 sec", SmtpErrorCode.ProtocolError },
        { "reply line without end", "220 " + new string('a', 100_000), SmtpErrorCode.ReplyTooLong },
        { "multi-line reply without end", string.Concat(Enumerable.Repeat("220-more\r\n", 2_000)), SmtpErrorCode.ReplyTooLong },
    };

    [Theory]
    [MemberData(nameof(MalformedGreetings))]
    public async Task A_malformed_reply_is_a_typed_error_and_breaks_the_session(string name, string bytes, SmtpErrorCode expected)
    {
        _ = name;
        await using var server = LoopbackServer.Start(async (s, socket, ct) =>
        {
            await LoopbackServer.SendAsync(socket, bytes, ct);
            socket.Shutdown(SocketShutdown.Send);
            await s.ReadToEndAsync(socket, ct);
        });
        using var session = new AsyncSmtpSession();

        var act = () => session.ConnectAsync("127.0.0.1", server.Port).WaitAsync(NoHang);

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(expected);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task Invalid_UTF8_in_a_reply_is_decoded_with_replacement_characters_not_a_crash()
    {
        await using var server = LoopbackServer.Start(async (s, socket, ct) =>
        {
            await socket.SendAsync(new byte[] { (byte)'2', (byte)'2', (byte)'0', (byte)' ', 0xFF, 0xFE, 0xC3, (byte)'\r', (byte)'\n' }, SocketFlags.None, ct);
            await s.ReadToEndAsync(socket, ct);
        });
        using var session = new AsyncSmtpSession();

        var greeting = await session.ConnectAsync("127.0.0.1", server.Port).WaitAsync(NoHang);

        greeting!.Code.Should().Be(220);
        greeting.Text.Should().Contain("\uFFFD");
    }

    [Fact]
    public async Task One_byte_per_second_of_fake_time_hits_the_receive_timeout_which_bounds_the_whole_reply()
    {
        var time = new ObservableTimeProvider();
        var sent = new SemaphoreSlim(0);
        var next = new SemaphoreSlim(0);
        await using var server = LoopbackServer.Start(async (s, socket, ct) =>
        {
            foreach (var b in Encoding.ASCII.GetBytes("220-" + new string('a', 200)))
            {
                await socket.SendAsync(new[] { b }, SocketFlags.None, ct);
                sent.Release();
                await next.WaitAsync(ct);
            }
        });
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { TimeProvider = time, ReceiveTimeout = TimeSpan.FromSeconds(5) });
        await session.ConnectAsync("127.0.0.1", server.Port, waitForGreeting: false).WaitAsync(NoHang);

        var armedBefore = time.ArmedCount(TimeSpan.FromSeconds(5));
        var greeting = session.ReceiveReplyAsync();

        // The reply's deadline runs from its first read that waits; the clock moves only once it is armed. The clock
        // stops at the second the deadline fires (its callback runs inside Advance): counting on until the greeting's
        // failure came through let a loaded run count seconds the client was no longer waiting for (a timing guess,
        // with a 5 ms sleep before each second).
        await time.WaitUntilArmedAsync(TimeSpan.FromSeconds(5), armedBefore + 1);
        var seconds = 0;
        while (time.FiredCount == 0 && !greeting.IsCompleted && seconds < 100)
        {
            await Task.WhenAny(sent.WaitAsync(NoHang), greeting);
            time.Advance(TimeSpan.FromSeconds(1));
            seconds++;
            next.Release();
        }

        var error = (await FluentActions.Awaiting(() => greeting.WaitAsync(NoHang)).Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        seconds.Should().BeLessThanOrEqualTo(7, "the timeout bounds the whole reply, not each byte");
    }

    // ---- A fault at every step ----

    public static TheoryData<FaultPoint, FaultKind, bool, bool, long> FaultCases()
    {
        var data = new TheoryData<FaultPoint, FaultKind, bool, bool, long>();
        foreach (var chunking in new[] { false, true })
        {
            foreach (var pipelining in new[] { false, true })
            {
                foreach (var kind in new[] { FaultKind.Reset, FaultKind.Close })
                {
                    foreach (var point in Enum.GetValues<FaultPoint>())
                    {
                        if (point == FaultPoint.InsideData)
                        {
                            foreach (var offset in new long[] { 0, 1_000, 70_000, 300_000 })
                            {
                                data.Add(point, kind, chunking, pipelining, offset);
                            }
                        }
                        else
                        {
                            data.Add(point, kind, chunking, pipelining, 0);
                        }
                    }
                }
            }
        }

        return data;
    }

    /// <summary>About 400 KB of text, with dots at line starts.</summary>
    private static readonly byte[] LargeMessage = Encoding.ASCII.GetBytes(
        "Subject: fault\r\n\r\n" + string.Concat(Enumerable.Range(0, 8_000).Select(i => $".line {i:D6} of the message under test\r\n")));

    [Theory]
    [MemberData(nameof(FaultCases))]
    public async Task A_reset_or_close_at_any_step_gives_a_typed_error_and_a_truthful_outcome(FaultPoint point, FaultKind kind, bool chunking, bool pipelining, long dataOffset)
    {
        await using var server = new FaultServer(point, kind, chunking, pipelining, dataOffset);
        var (result, errors) = await RunClientAsync(server.Port, chunking, pipelining);

        server.Faulted.Should().BeTrue("the fault point is reached by every case");
        AssertTruthful(server, result, errors);
    }

    [Theory]
    [InlineData(ServerQuirk.ReplyBeforeAnyCommand, false)]
    [InlineData(ServerQuirk.ReplyBeforeAnyCommand, true)]
    [InlineData(ServerQuirk.ExtraReplyInGroup, false)]
    [InlineData(ServerQuirk.ExtraReplyInGroup, true)]
    public async Task Unsolicited_and_extra_replies_never_make_an_untruthful_outcome(ServerQuirk quirk, bool chunking)
    {
        await using var server = new FaultServer(null, FaultKind.Reset, chunking, pipelining: true, quirk: quirk);
        var (result, errors) = await RunClientAsync(server.Port, chunking, pipelining: true);

        AssertTruthful(server, result, errors);
    }

    [Fact]
    public async Task A_server_that_stops_reading_hits_the_send_timeout_and_the_message_is_NotSent()
    {
        var time = new FakeTimeProvider();
        var dataStarted = new TaskCompletionSource();
        await using var server = LoopbackServer.Start(async (s, socket, ct) =>
        {
            await LoopbackServer.SendAsync(socket, "220 ready\r\n", ct);
            foreach (var reply in new[] { "250 ok\r\n", "250 ok\r\n", "250 ok\r\n" })
            {
                await s.ReadLineAsync(socket, ct);
                await LoopbackServer.SendAsync(socket, reply, ct);
            }

            await s.ReadLineAsync(socket, ct);
            await LoopbackServer.SendAsync(socket, "354 go\r\n", ct);
            dataStarted.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        });
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { TimeProvider = time, SendTimeout = TimeSpan.FromSeconds(30) });
        await session.ConnectAsync("127.0.0.1", server.Port).WaitAsync(NoHang);
        await session.EhloAsync("client.example.test").WaitAsync(NoHang);
        var big = new byte[32 * 1024 * 1024];
        Array.Fill(big, (byte)'a');
        for (var i = 998; i < big.Length; i += 1000)
        {
            big[i] = (byte)'\r';
            big[i + 1] = (byte)'\n';
        }

        var send = session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), new MemoryStream(big));
        await dataStarted.Task.WaitAsync(NoHang);
        for (var i = 0; i < 400 && !send.IsCompleted; i++)
        {
            await Task.Delay(50);
            time.Advance(TimeSpan.FromSeconds(31));
        }

        var result = await send.WaitAsync(NoHang);
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        session.IsConnected.Should().BeFalse();
    }

    private static async Task<(SmtpSendResult? Result, List<Exception> Errors)> RunClientAsync(int port, bool chunking, bool pipelining)
    {
        var errors = new List<Exception>();
        SmtpSendResult? result = null;
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking, UsePipelining = pipelining, ChunkSize = 64 * 1024, ReceiveTimeout = TimeSpan.FromSeconds(10) });
        async Task Step(Func<Task> step, bool connect = false)
        {
            if (!connect && !session.IsConnected)
            {
                // A broken session is never used again (InvalidOperationException is what the API throws for that).
                return;
            }

            try
            {
                await step().WaitAsync(NoHang);
            }
            catch (Exception ex) when (ex is not TimeoutException)
            {
                errors.Add(ex);
            }
        }

        await Step(() => session.ConnectAsync("127.0.0.1", port), connect: true);
        await Step(() => session.EhloAsync("client.example.test"));
        await Step(async () => result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test", "c@example.test"), new MemoryStream(LargeMessage)));
        await Step(() => session.QuitAsync());
        return (result, errors);
    }

    private static void AssertTruthful(FaultServer server, SmtpSendResult? result, List<Exception> errors)
    {
        foreach (var error in errors)
        {
            error.Should().BeAssignableTo<SmtpException>("only typed errors reach the caller (an ArgumentException or InvalidOperationException here would be a bug)");
        }

        if (result is null)
        {
            server.SawEndOfData.Should().BeFalse("no result means the message was never sent");
            return;
        }

        if (server.AcknowledgedEndOfData)
        {
            result.Outcome.Should().NotBe(SmtpSendOutcome.NotSent, "the server acknowledged the end of data");
        }

        if (!server.SawEndOfData)
        {
            result.Outcome.Should().NotBe(SmtpSendOutcome.Accepted, "the server never saw the end of data");
        }

        if (server.SawEndOfData && !server.AcknowledgedEndOfData)
        {
            result.Outcome.Should().Be(SmtpSendOutcome.Unknown, "the end was sent but its reply was lost");
        }

        if (result.Outcome == SmtpSendOutcome.Accepted)
        {
            server.AcknowledgedEndOfData.Should().BeTrue();
        }
    }
}
