using System.Net;
using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.IntegrationTests.Tls;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// Peer acceptance suite: one operation at a time, DisconnectAsync from another thread, the timeouts of the end of
/// data, the credentials and token providers' failure model, and the server's own 421 (README's first bullet).
/// </summary>
public sealed class PeerEdgeTests
{
    private const string From = "peer-edge@example.test";
    private const string To = "bob@example.test";

    private static byte[] Message(string subject) => PeerSupport.Message(From, subject);

    private static Task<AsyncSmtpSession> ConnectAsync(int port, SmtpSessionOptions? options = null) => PeerSupport.ConnectAsync(port, options);

    [Fact]
    public async Task A_second_operation_while_one_runs_and_a_second_connect_are_InvalidOperationExceptions()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.HoldFinalReply);
        await using var session = await ConnectAsync(server.Port);

        var connectAgain = async () => await session.ConnectAsync(TestServers.Host, server.Port);
        await connectAgain.Should().ThrowAsync<InvalidOperationException>("the session is already connected");

        var send = session.SendAsync(new SmtpEnvelope(From, To), Message("held"));
        await server.EndOfDataReceived;
        var noop = async () => await session.NoopAsync();
        await noop.Should().ThrowAsync<InvalidOperationException>("one operation at a time");

        // DisconnectAsync may be called from another thread at any time: it aborts what runs, and a send ends with a
        // result, never an exception: its end of data was written, so Unknown.
        await session.DisconnectAsync();
        var result = await send;
        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task Session_no_reply_to_the_end_of_data_within_DataTerminationTimeout_is_Unknown_TimedOut()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.HoldFinalReply);
        await using var session = await ConnectAsync(server.Port, new SmtpSessionOptions { DataTerminationTimeout = TimeSpan.FromSeconds(1) });

        var result = await session.SendAsync(new SmtpEnvelope(From, To), Message("held"));

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task Sender_no_reply_to_the_end_of_data_within_Timeouts_DataTermination_is_Unknown_and_not_retried()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.HoldFinalReply);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = server.Port,
            TlsMode = SmtpTlsMode.None,
            Timeouts = SmtpTimeouts.Interactive with { DataTermination = TimeSpan.FromSeconds(1) },
        });

        var result = await sender.SendAsync(new SmtpEnvelope(From, To), Message("held"));

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        result.Attempts.Should().Be(1);
        server.EndsOfData.Should().Be(1);
    }

    [Fact]
    public async Task Sender_a_server_that_never_greets_is_NotSent_TimedOut_after_the_reply_timeout()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.BlackHole);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = server.Port,
            TlsMode = SmtpTlsMode.None,
            Timeouts = SmtpTimeouts.Interactive with { Reply = TimeSpan.FromSeconds(1) },
        });

        var result = await sender.SendAsync(new SmtpEnvelope(From, To), Message("no greeting"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeTrue();
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
    }

    public static TheoryData<string, Func<Exception>, bool> ProviderFailures() => new()
    {
        { "HttpRequestException without a status", () => new HttpRequestException("no route"), true },
        { "HttpRequestException 503", () => new HttpRequestException("busy", null, HttpStatusCode.ServiceUnavailable), true },
        { "HttpRequestException 429", () => new HttpRequestException("slow down", null, HttpStatusCode.TooManyRequests), true },
        { "HttpRequestException 403", () => new HttpRequestException("forbidden", null, HttpStatusCode.Forbidden), false },
        { "TimeoutException", () => new TimeoutException("vault slow"), true },
        { "IOException", () => new IOException("disk"), true },
        { "FileNotFoundException", () => new FileNotFoundException("no secret file"), false },
        { "a bug", () => new InvalidOperationException("bug"), false },
    };

    [Theory]
    [MemberData(nameof(ProviderFailures))]
    public async Task A_credentials_provider_that_throws_makes_the_message_NotSent_AuthenticationError_transient_only_for_its_own_IO(
        string why, Func<Exception> failure, bool transient)
    {
        var thrown = failure();
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            Tls = TlsTestSupport.TrustTestCertificate(),
            CredentialsProvider = _ => throw thrown,
        });

        var result = await sender.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-prov")), Message("provider"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, why);
        var exception = result.Exception.Should().BeOfType<SmtpException>().Which;
        exception.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError, why);
        exception.InnerException.Should().BeSameAs(thrown, why);
        result.IsTransientFailure.Should().Be(transient, why);
    }

    [Fact]
    public async Task A_credentials_provider_is_called_for_each_new_connection_and_its_credentials_used()
    {
        var calls = 0;
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            Tls = TlsTestSupport.TrustTestCertificate(),
            MaxMessagesPerConnection = 1,
            MaxConnections = 1,
            CredentialsProvider = _ =>
            {
                Interlocked.Increment(ref calls);
                return ValueTask.FromResult(new NetworkCredential(TestServers.User, TestServers.Password));
            },
        });

        (await sender.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-cp1")), Message("cp1"))).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await sender.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-cp2")), Message("cp2"))).Outcome.Should().Be(SmtpSendOutcome.Accepted);

        calls.Should().Be(2);
    }

    [Fact]
    public async Task A_credentials_provider_that_never_returns_is_cancelled_after_the_reply_timeout_a_transient_AuthenticationError()
    {
        // Postfix's Cyrus offers no XOAUTH2/OAUTHBEARER, so the token provider's rule (the same) is shown with the password one.
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            Tls = TlsTestSupport.TrustTestCertificate(),
            CredentialsProvider = async ct =>
            {
                using var registration = ct.Register(() => cancelled.TrySetResult());
                await Task.Delay(Timeout.Infinite, ct);
                return new NetworkCredential("never", "never");
            },
            Timeouts = SmtpTimeouts.Interactive with { Reply = TimeSpan.FromSeconds(1) },
        });

        var result = await sender.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-tok")), Message("provider"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        // The provider's own I/O did not complete in time, not the server's: SmtpSenderOptions.CredentialsProvider's doc.
        var failure = result.Exception.Should().BeOfType<SmtpException>().Which;
        failure.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError, result.Exception!.ToString());
        failure.InnerException.Should().BeOfType<TimeoutException>();
        failure.IsTransient.Should().BeTrue();
        result.IsTransientFailure.Should().BeTrue();
        await cancelled.Task; // the provider's token was cancelled
    }

    [Fact]
    public async Task The_servers_own_421_is_thrown_by_commands_NotSent_from_SendAsync_and_returned_by_QuitAsync()
    {
        const int IdlePort = 2540; // Postfix with smtpd_timeout = 2s
        TestServers.RequireListening(IdlePort);
        await using var relay = new LoopbackRelay(IdlePort);
        var sessions = new List<AsyncSmtpSession>();
        for (var i = 0; i < 3; i++)
        {
            sessions.Add(await ConnectAsync(relay.Port));
        }

        try
        {
            await relay.WaitUntilServerClosedAllAsync(TimeSpan.FromSeconds(60));

            var noop = async () => await sessions[0].NoopAsync();
            var thrown = (await noop.Should().ThrowAsync<SmtpException>()).Which;
            thrown.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
            thrown.IsTransient.Should().BeTrue();
            thrown.Reply!.Code.Should().Be(421);
            sessions[0].IsConnected.Should().BeFalse();

            var result = await sessions[1].SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-421")), Message("after 421"));
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
            result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
            result.IsTransientFailure.Should().BeTrue();

            (await sessions[2].QuitAsync()).Code.Should().Be(421, "QuitAsync returns the 421 instead");
            sessions[2].IsConnected.Should().BeFalse();
        }
        finally
        {
            foreach (var session in sessions)
            {
                await session.DisposeAsync();
            }
        }
    }
}
