using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Security.Cryptography;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Session;

/// <summary>A peer's probes of the session's documented contracts (breaker18): disposal, concurrent calls.</summary>
public class Breaker18ContractTests
{
    private static ValueTask<string> Token(CancellationToken ct) => ValueTask.FromResult("token");

    /// <summary>Every public operation of the session, each called the way a caller would.</summary>
    public static TheoryData<string> Operations() =>
    [
        "AuthCramMd5Async", "AuthLoginAsync", "AuthNtlmAsync", "AuthOAuthBearerAsync", "AuthPlainAsync", "AuthScramAsync",
        "AuthXOAuth2Async", "AuthenticateAsync(credential)", "AuthenticateAsync(raw)", "AuthenticateAsync(token)",
        "ConnectAsync(stream)", "ConnectAsync(host)", "ConnectAsync(tlsMode)", "ConnectTlsAsync(options)", "ConnectTlsAsync()",
        "ConnectTlsAsync(name)", "DataAsync", "EhloAsync", "EndMessageDataAsync", "HelloAsync", "HeloAsync", "MailFromAsync",
        "NoopAsync", "QuitAsync", "RcptToAsync", "ReceiveReplyAsync", "RsetAsync", "SendAsync(sequence)", "SendAsync(pipe)",
        "SendAsync(stream)", "SendAsync(memory)", "SendAsync(message)", "SendBatchAsync(async)", "SendBatchAsync(list)",
        "SendBytesAsync", "SendCommandAsync", "SendMessageDataAsync(sequence)", "SendMessageDataAsync(pipe)",
        "SendMessageDataAsync(stream)", "SendMessageDataAsync(memory)", "StartTlsAsync(options)", "StartTlsAsync()",
        "VrfyAsync", "WriteMessageDataAsync", "GetDefaultClientDomainAsync", "SendBatchStreamingAsync(async)",
        "SendBatchStreamingAsync(list)",
    ];

    internal static Task Call(AsyncSmtpSession session, string operation)
    {
        var content = Ascii(SmallText);
        var credential = new NetworkCredential("user", "pass");
        return operation switch
        {
            "AuthCramMd5Async" => session.AuthCramMd5Async("user", "pass"),
            "AuthLoginAsync" => session.AuthLoginAsync("user", "pass"),
            "AuthNtlmAsync" => session.AuthNtlmAsync(credential),
            "AuthOAuthBearerAsync" => session.AuthOAuthBearerAsync("user", Token),
            "AuthPlainAsync" => session.AuthPlainAsync("user", "pass"),
            "AuthScramAsync" => session.AuthScramAsync("user", "pass", HashAlgorithmName.SHA256),
            "AuthXOAuth2Async" => session.AuthXOAuth2Async("user", Token),
            "AuthenticateAsync(credential)" => session.AuthenticateAsync(credential),
            "AuthenticateAsync(raw)" => session.AuthenticateAsync("X-TEST", null, (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(null)),
            "AuthenticateAsync(token)" => session.AuthenticateAsync("user", Token),
            "ConnectAsync(stream)" => session.ConnectAsync(new MemoryStream()),
            "ConnectAsync(host)" => session.ConnectAsync("127.0.0.1", 9),
            "ConnectAsync(tlsMode)" => session.ConnectAsync("127.0.0.1", 9, SmtpTlsMode.None, "client.example.test"),
            "ConnectTlsAsync(options)" => session.ConnectTlsAsync(new SmtpTlsOptions { TargetHost = "mail.example.test" }),
            "ConnectTlsAsync()" => session.ConnectTlsAsync(),
            "ConnectTlsAsync(name)" => session.ConnectTlsAsync("mail.example.test"),
            "DataAsync" => session.DataAsync(),
            "EhloAsync" => session.EhloAsync("client.example.test"),
            "EndMessageDataAsync" => session.EndMessageDataAsync(),
            "HelloAsync" => session.HelloAsync("client.example.test"),
            "HeloAsync" => session.HeloAsync("client.example.test"),
            "MailFromAsync" => session.MailFromAsync("a@example.test"),
            "NoopAsync" => session.NoopAsync(),
            "QuitAsync" => session.QuitAsync(),
            "RcptToAsync" => session.RcptToAsync("b@example.test"),
            "ReceiveReplyAsync" => session.ReceiveReplyAsync(),
            "RsetAsync" => session.RsetAsync(),
            "SendAsync(sequence)" => session.SendAsync(Envelope("b@example.test"), new ReadOnlySequence<byte>(content)),
            "SendAsync(pipe)" => session.SendAsync(Envelope("b@example.test"), PipeReader.Create(new MemoryStream(content))),
            "SendAsync(stream)" => session.SendAsync(Envelope("b@example.test"), new MemoryStream(content)),
            "SendAsync(memory)" => session.SendAsync(Envelope("b@example.test"), content.AsMemory()),
            "SendAsync(message)" => session.SendAsync(Message(1)),
            "SendBatchAsync(async)" => session.SendBatchAsync(new[] { Message(1) }.ToAsyncEnumerable()),
            "SendBatchAsync(list)" => session.SendBatchAsync([Message(1)]),
            "SendBytesAsync" => session.SendBytesAsync(content),
            "SendCommandAsync" => session.SendCommandAsync("NOOP"),
            "SendMessageDataAsync(sequence)" => session.SendMessageDataAsync(new ReadOnlySequence<byte>(content)),
            "SendMessageDataAsync(pipe)" => session.SendMessageDataAsync(PipeReader.Create(new MemoryStream(content))),
            "SendMessageDataAsync(stream)" => session.SendMessageDataAsync(new MemoryStream(content)),
            "SendMessageDataAsync(memory)" => session.SendMessageDataAsync(content.AsMemory()),
            "StartTlsAsync(options)" => session.StartTlsAsync(new SmtpTlsOptions { TargetHost = "mail.example.test" }),
            "StartTlsAsync()" => session.StartTlsAsync(),
            "VrfyAsync" => session.VrfyAsync("b@example.test"),
            "WriteMessageDataAsync" => session.WriteMessageDataAsync(content),
            "GetDefaultClientDomainAsync" => session.GetDefaultClientDomainAsync(),
            "SendBatchStreamingAsync(async)" => session.SendBatchStreamingAsync(new[] { Message(1) }.ToAsyncEnumerable()).ToListAsync().AsTask(),
            "SendBatchStreamingAsync(list)" => session.SendBatchStreamingAsync([Message(1)]).ToListAsync().AsTask(),
            _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, null),
        };
    }

    private static async Task<Exception?> Outcome(Func<Task> call)
    {
        try
        {
            await call().Safe();
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }

    [Theory]
    [MemberData(nameof(Operations))]
    public async Task After_DisposeAsync_every_public_operation_throws_ObjectDisposedException(string operation)
    {
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse([.. Ehlo("AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 NTLM XOAUTH2 OAUTHBEARER", "STARTTLS"), "C: QUIT", "S: 221 bye"]));
        var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });
        await session.DisposeAsync();

        for (var i = 0; i < 2; i++)
        {
            var thrown = await Outcome(() => Call(session, operation));
            thrown.Should().BeOfType<ObjectDisposedException>($"{operation} after DisposeAsync (call {i + 1})");
        }

        await server.WaitAsync();
    }

    [Theory]
    [MemberData(nameof(Operations))]
    public async Task A_second_call_while_an_operation_runs_throws_InvalidOperationException_and_changes_nothing(string operation)
    {
        if (operation == "GetDefaultClientDomainAsync")
        {
            return; // not an operation on the connection: it only reads the local name
        }

        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var script = SmtpScript.Parse([.. Ehlo("AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 NTLM XOAUTH2 OAUTHBEARER", "STARTTLS", "PIPELINING"), "C: NOOP"])
            .Signal(reached).WaitFor(release.Task).Then("S: 250 2.0.0 first", "C: NOOP", "S: 250 2.0.0 second");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });
        var capabilities = session.Capabilities;
        var running = session.NoopAsync();
        await reached.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        var thrown = await Outcome(() => Call(session, operation));

        thrown.Should().BeOfType<InvalidOperationException>($"{operation} while NOOP runs");
        release.SetResult();
        (await running.Safe()).Text.Should().EndWith("first");
        session.IsConnected.Should().BeTrue();
        session.Capabilities.Should().BeSameAs(capabilities);
        (await session.NoopAsync().Safe()).Text.Should().EndWith("second");
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("DisconnectAsync")]
    [InlineData("Dispose")]
    [InlineData("DisposeAsync")]
    public async Task Closing_the_session_while_an_operation_waits_ends_that_operation_with_a_typed_error_not_a_hang(string close)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse([.. Ehlo(), "C: NOOP"]).Signal(reached).ReadUntilClosed());
        var session = await ConnectedAsync(server);
        var running = session.NoopAsync();
        await reached.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        switch (close)
        {
            case "DisconnectAsync":
                await session.DisconnectAsync().Safe();
                break;
            case "Dispose":
                session.Dispose();
                break;
            default:
                await session.DisposeAsync().Safe();
                break;
        }

        var thrown = await Outcome(() => running);
        thrown.Should().NotBeNull().And.NotBeAssignableTo<OperationCanceledException>("the caller cancelled nothing");
        if (close == "DisconnectAsync")
        {
            thrown.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        }
        else
        {
            thrown.Should().Match(e => e is ObjectDisposedException || (e is SmtpException && ((SmtpException)e).ErrorCode == SmtpErrorCode.ConnectionClosed));
        }

        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
        if (close == "DisconnectAsync")
        {
            await using var again = ScriptedSmtpServer.Start(SmtpScript.Parse(Ehlo()).Then("C: NOOP", "S: 250 ok"));
            (await session.ConnectAsync(again.ClientStream).Safe())!.Code.Should().Be(220);
            (await session.EhloAsync("client.example.test").Safe()).Code.Should().Be(250);
            (await session.NoopAsync().Safe()).Code.Should().Be(250);
            await again.WaitAsync();
        }
        else
        {
            (await Outcome(() => session.NoopAsync())).Should().BeOfType<ObjectDisposedException>();
        }

        session.Dispose();
    }

    [Theory]
    [InlineData("DisconnectAsync", "auth")]
    [InlineData("DisconnectAsync", "send")]
    [InlineData("DisconnectAsync", "provider")]
    public async Task Closing_the_session_during_an_AUTH_or_a_send_ends_it_and_is_not_reported_as_the_callers_cancellation(string close, string step)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var providerEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var script = SmtpScript.Parse(Ehlo("STARTTLS", "AUTH LOGIN XOAUTH2", "PIPELINING"));
        script = step switch
        {
            "handshake" => script.Then("C: STARTTLS", "S: 220 go ahead").Signal(reached),
            "auth" => script.Then("C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", "C: dXNlcg==").Signal(reached),
            "send" => script.Then("C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA").Signal(reached),
            _ => script,
        };
        await using var server = ScriptedSmtpServer.Start(script.ReadUntilClosed());
        var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });
        Task running = step switch
        {
            "handshake" => session.StartTlsAsync(new SmtpTlsOptions { TargetHost = "mail.example.test" }),
            "auth" => session.AuthLoginAsync("user", "pass"),
            "send" => session.SendAsync(Message(1)),
            _ => session.AuthXOAuth2Async("user", async ct =>
            {
                providerEntered.TrySetResult();
                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                return "never";
            }),
        };
        await (step == "provider" ? providerEntered.Task : reached.Task).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        if (close == "Dispose")
        {
            session.Dispose();
        }
        else
        {
            await session.DisconnectAsync().Safe();
        }

        Exception? thrown = null;
        SmtpSendResult? result = null;
        try
        {
            await running.Safe();
            result = (running as Task<SmtpSendResult>)?.Result;
        }
        catch (Exception ex)
        {
            thrown = ex;
        }

        if (result is not null)
        {
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
            thrown = result.Exception;
        }

        thrown.Should().NotBeNull();
        thrown.Should().NotBeAssignableTo<OperationCanceledException>("the caller cancelled nothing ({0})", thrown);
        thrown.Should().NotBeOfType<TimeoutException>("the operation ends when the session is closed, not never");
        session.IsConnected.Should().BeFalse();
        session.Dispose();
    }

    [Theory]
    [InlineData(false)]
    public async Task DisconnectAsync_while_a_content_writer_or_stream_waits_ends_the_send_without_the_final_dot(bool stream)
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var script = SmtpScript.Parse([.. Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA",
            "S: 250 ok", "S: 250 ok", "S: 354 go"]).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        var session = await ConnectedAsync(server);
        var envelope = Envelope("m1@example.test");
        var message = stream
            ? SmtpMessage.FromStream(envelope, new GatedStream(entered))
            : SmtpMessage.FromWriter(envelope, async (output, ct) =>
            {
                await output.WriteAsync("Subject: x\r\n\r\n"u8.ToArray(), ct);
                entered.TrySetResult();
                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            });
        var running = session.SendAsync(message);
        await entered.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        await session.DisconnectAsync().Safe();

        var outcome = await Outcome(() => running);
        (outcome is TimeoutException).Should().BeFalse("the send ends when the session is closed");
        if (outcome is null)
        {
            (await running).Outcome.Should().Be(SmtpSendOutcome.NotSent);
        }
        else
        {
            outcome.Should().NotBeAssignableTo<OperationCanceledException>("the caller cancelled nothing");
        }

        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("\r\n.\r\n");
        session.Dispose();
    }

    /// <summary>A content stream whose second read waits for its token, after telling the test it got there.</summary>
    private sealed class GatedStream(TaskCompletionSource entered) : Stream
    {
        private bool _first = true;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_first)
            {
                _first = false;
                "Subject: x\r\n\r\n"u8.CopyTo(buffer.Span);
                return 15;
            }

            entered.TrySetResult();
            await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
            return 0;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
