using System.Net;
using System.Security.Cryptography;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Session;

/// <summary>
/// A peer's probe of "the CancellationToken of every call": an operation waiting on a silent server (or on the caller's
/// token provider) ends with <see cref="OperationCanceledException"/> when its token fires, never an
/// <see cref="SmtpException"/>; the connection is closed and the same session connects again (breaker18).
/// </summary>
public class Breaker18CancellationTests
{
    private const string AllMechanisms = "AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 XOAUTH2 OAUTHBEARER";

    public static TheoryData<string> Operations() =>
    [
        "EhloAsync", "HeloAsync", "HelloAsync", "NoopAsync", "RsetAsync", "QuitAsync", "MailFromAsync", "RcptToAsync", "DataAsync",
        "VrfyAsync", "ReceiveReplyAsync", "StartTlsAsync(reply)", "StartTlsAsync(handshake)", "AuthPlainAsync", "AuthLoginAsync",
        "AuthCramMd5Async", "AuthScramAsync", "AuthXOAuth2Async(provider)", "AuthOAuthBearerAsync(provider)", "AuthenticateAsync(credential)",
        "AuthenticateAsync(raw)", "AuthenticateAsync(token)", "SendAsync", "SendBatchAsync", "SendMessageDataAsync", "EndMessageDataAsync",
    ];

    private static async ValueTask<string> HangingProvider(CancellationToken ct)
    {
        await Task.Delay(Timeout.InfiniteTimeSpan, ct);
        return "never";
    }

    private static ValueTask<string> Token(CancellationToken ct) => ValueTask.FromResult("token");

    private static Task Call(AsyncSmtpSession session, string operation, CancellationToken ct)
    {
        var tls = new SmtpTlsOptions { TargetHost = "mail.example.test" };
        return operation switch
        {
            "EhloAsync" => session.EhloAsync("client.example.test", ct),
            "HeloAsync" => session.HeloAsync("client.example.test", ct),
            "HelloAsync" => session.HelloAsync("client.example.test", ct),
            "NoopAsync" => session.NoopAsync(ct),
            "RsetAsync" => session.RsetAsync(ct),
            "QuitAsync" => session.QuitAsync(ct),
            "MailFromAsync" => session.MailFromAsync("a@example.test", null, ct),
            "RcptToAsync" => session.RcptToAsync("b@example.test", null, ct),
            "DataAsync" => session.DataAsync(ct),
            "VrfyAsync" => session.VrfyAsync("b@example.test", ct),
            "ReceiveReplyAsync" => session.ReceiveReplyAsync(ct),
            "StartTlsAsync(reply)" or "StartTlsAsync(handshake)" => session.StartTlsAsync(tls, ct),
            "AuthPlainAsync" => session.AuthPlainAsync("user", "pass", null, ct),
            "AuthLoginAsync" => session.AuthLoginAsync("user", "pass", ct),
            "AuthCramMd5Async" => session.AuthCramMd5Async("user", "pass", ct),
            "AuthScramAsync" => session.AuthScramAsync("user", "pass", HashAlgorithmName.SHA256, null, ct),
            "AuthXOAuth2Async(provider)" => session.AuthXOAuth2Async("user", HangingProvider, ct),
            "AuthOAuthBearerAsync(provider)" => session.AuthOAuthBearerAsync("user", HangingProvider, ct),
            "AuthenticateAsync(credential)" => session.AuthenticateAsync(new NetworkCredential("user", "pass"), null, ct),
            "AuthenticateAsync(raw)" => session.AuthenticateAsync("X-TEST", null, (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(null), ct),
            "AuthenticateAsync(token)" => session.AuthenticateAsync("user", Token, null, ct),
            "SendAsync" => session.SendAsync(Message(1), ct),
            "SendBatchAsync" => session.SendBatchAsync([Message(1), Message(2)], ct),
            "SendMessageDataAsync" => session.SendMessageDataAsync(Ascii(SmallText), ct),
            "EndMessageDataAsync" => session.EndMessageDataAsync(ct),
            _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, null),
        };
    }

    [Theory]
    [MemberData(nameof(Operations))]
    public async Task Cancelling_an_operation_that_waits_throws_OperationCanceledException_closes_and_the_session_connects_again(string operation)
    {
        var script = SmtpScript.Parse(Ehlo("PIPELINING", "STARTTLS", AllMechanisms));
        var goAheadSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (operation is "ReceiveReplyAsync")
        {
            script = script.Then("C: XWAIT");
        }
        else if (operation is "SendMessageDataAsync" or "EndMessageDataAsync")
        {
            script = script.Then("C: DATA", "S: 354 go");
        }
        else if (operation is "StartTlsAsync(handshake)")
        {
            script = script.Then("C: STARTTLS", "S: 220 2.0.0 go ahead").Signal(goAheadSent);
        }

        await using var server = ScriptedSmtpServer.Start(script.ReadUntilClosed());
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });
        if (operation is "ReceiveReplyAsync")
        {
            await session.SendCommandAsync("XWAIT").Safe();
        }
        else if (operation is "SendMessageDataAsync" or "EndMessageDataAsync")
        {
            (await session.DataAsync().Safe()).Code.Should().Be(354);
            if (operation is "EndMessageDataAsync")
            {
                await session.WriteMessageDataAsync(Ascii(SmallText)).Safe();
            }
        }

        var before = server.Received.Length;
        using var cts = new CancellationTokenSource();
        var running = Call(session, operation, cts.Token);

        // Wait for the operation to be under way: its bytes reached the server (the provider cases send nothing).
        if (operation is not ("AuthXOAuth2Async(provider)" or "AuthOAuthBearerAsync(provider)" or "ReceiveReplyAsync"))
        {
            while (server.Received.Length == before && !running.IsCompleted)
            {
                await Task.Delay(5);
            }
        }

        if (operation is "StartTlsAsync(handshake)")
        {
            // Cancelled in the handshake, not before the server's 220 went out (the server's send would then fail).
            await goAheadSent.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        }

        running.IsCompleted.Should().BeFalse($"{operation} waits for the silent server");
        await cts.CancelAsync();
        Exception? thrown = null;
        try
        {
            await running.Safe();
        }
        catch (Exception ex)
        {
            thrown = ex;
        }

        thrown.Should().BeAssignableTo<OperationCanceledException>($"{operation} was cancelled by its token");
        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        session.IsAuthenticated.Should().BeFalse();
        session.IsEncrypted.Should().BeFalse();
        await server.WaitAsync();

        await using var again = ScriptedSmtpServer.Start(SmtpScript.Parse(Ehlo()).Then("C: NOOP", "S: 250 ok"));
        (await session.ConnectAsync(again.ClientStream).Safe())!.Code.Should().Be(220);
        (await session.EhloAsync("client.example.test").Safe()).Code.Should().Be(250);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await again.WaitAsync();
    }

    [Theory]
    [InlineData("WriteMessageDataAsync")]
    [InlineData("SendBytesAsync")]
    [InlineData("SendCommandAsync")]
    public async Task Cancelling_a_write_the_server_does_not_read_throws_OperationCanceledException_closes_and_never_ends_the_message(string operation)
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var script = SmtpScript.Parse(Ehlo());
        if (operation != "SendCommandAsync")
        {
            script = script.Then("C: DATA", "S: 354 go");
        }

        await using var server = ScriptedSmtpServer.Start(script.WaitFor(release.Task).ReadUntilClosed(), clientWriteLimit: 4096);
        using var session = await ConnectedAsync(server);
        if (operation != "SendCommandAsync")
        {
            (await session.DataAsync().Safe()).Code.Should().Be(354);
        }

        var big = new byte[1 << 20];
        big.AsSpan().Fill((byte)'x');
        using var cts = new CancellationTokenSource();
        var running = operation switch
        {
            "WriteMessageDataAsync" => session.WriteMessageDataAsync(big, cts.Token),
            "SendBytesAsync" => session.SendBytesAsync(big, cts.Token),
            _ => session.SendCommandAsync("XBIG " + new string('y', 1 << 20), cts.Token),
        };
        running.IsCompleted.Should().BeFalse("the server reads nothing, so the write waits");

        await cts.CancelAsync();
        Exception? thrown = null;
        try
        {
            await running.Safe();
        }
        catch (Exception ex)
        {
            thrown = ex;
        }

        thrown.Should().BeAssignableTo<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
        release.SetResult();
        await server.WaitAsync();
        server.ReceivedText.Should().NotEndWith("\r\n.\r\n");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancelling_a_connect_whose_server_never_greets_throws_OperationCanceledException_and_leaves_the_session_disconnected(bool oneCall)
    {
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var accepted = listener.AcceptTcpClientAsync();
            using var session = new AsyncSmtpSession();
            using var cts = new CancellationTokenSource();
            Task running = oneCall
                ? session.ConnectAsync("127.0.0.1", port, SmtpTlsMode.StartTlsRequired, "client.example.test", cts.Token)
                : (Task)session.ConnectAsync("127.0.0.1", port, cancellationToken: cts.Token);
            using var peer = await accepted.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            running.IsCompleted.Should().BeFalse("no greeting came");

            await cts.CancelAsync();
            Exception? thrown = null;
            try
            {
                await running.Safe();
            }
            catch (Exception ex)
            {
                thrown = ex;
            }

            thrown.Should().BeAssignableTo<OperationCanceledException>();
            session.IsConnected.Should().BeFalse();
            session.State.Should().Be(SmtpSessionState.Disconnected);
            session.Greeting.Should().BeNull();
        }
        finally
        {
            listener.Stop();
        }
    }
}
