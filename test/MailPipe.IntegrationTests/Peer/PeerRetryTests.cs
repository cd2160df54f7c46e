using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.Tests.Shared;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// Peer acceptance suite: README "Pool hygiene and retry": a message NotSent because its connection failed under it is
/// sent once more on a fresh connection (Attempts 2) when that cannot send a fragment; a stale idle connection costs no
/// caller a failed send; and the session's DisposeAsync during a send.
/// </summary>
public sealed class PeerRetryTests
{
    private const string From = "peer-retry@example.test";
    private const string To = "bob@example.test";

    private static byte[] Message(string subject) => PeerSupport.Message(From, subject);

    private static SmtpSender Sender(PeerScriptedServer server, bool retry = true) => new(new SmtpSenderOptions
    {
        Host = TestServers.Host,
        Port = server.Port,
        TlsMode = SmtpTlsMode.None,
        RetryOnFreshConnection = retry,
        MaxConnections = 1,
    });

    [Fact]
    public async Task A_message_whose_connection_failed_before_its_content_is_sent_once_more_with_Attempts_2()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.DropFirstConnectionAtMail);
        await using var sender = Sender(server);

        var result = await sender.SendAsync(new SmtpEnvelope(From, To), Message("retried"));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(2);
        server.EndsOfData.Should().Be(1, "sent whole once");
        sender.GetStatistics().Retries.Should().Be(1);
    }

    [Fact]
    public async Task Without_RetryOnFreshConnection_it_is_NotSent_after_one_attempt()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.DropFirstConnectionAtMail);
        await using var sender = Sender(server, retry: false);

        var result = await sender.SendAsync(new SmtpEnvelope(From, To), Message("not retried"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Attempts.Should().Be(1);
        result.IsTransientFailure.Should().BeTrue();
        server.EndsOfData.Should().Be(0);
    }

    [Fact]
    public async Task A_stream_not_a_byte_of_which_was_read_is_retried_too()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.DropFirstConnectionAtMail);
        await using var sender = Sender(server);

        var result = await sender.SendAsync(new SmtpEnvelope(From, To), new NonSeekable(Message("stream")));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(2);
    }

    [Fact]
    public async Task A_connection_the_server_closed_while_idle_costs_no_caller_a_failed_send()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.CloseAfterEachMessage);
        await using var sender = Sender(server);

        for (var i = 0; i < 3; i++)
        {
            var result = await sender.SendAsync(new SmtpEnvelope(From, To), Message($"stale {i}"));
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        }

        server.EndsOfData.Should().Be(3, "each message sent whole once");
    }

    [Fact]
    public async Task Session_DisposeAsync_during_a_send_ends_it_with_a_result_and_leaves_the_session_disposed()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.HoldFinalReply);
        var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, server.Port);
        await session.HelloAsync("peer-client.example.test");

        var send = session.SendAsync(new SmtpEnvelope(From, To), Message("held"));
        await server.EndOfDataReceived;
        await session.DisposeAsync();

        (await send).Outcome.Should().Be(SmtpSendOutcome.Unknown);
        session.IsConnected.Should().BeFalse();
        await FluentActions.Awaiting(() => session.NoopAsync()).Should().ThrowAsync<ObjectDisposedException>();
    }

    [Fact]
    public async Task Session_a_second_DisposeAsync_during_the_first_completes_only_when_the_connection_is_closed()
    {
        var server = new PeerScriptedServer(PeerScriptedServer.Mode.HoldQuit);
        await using var serverScope = server;
        var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, server.Port);
        await session.HelloAsync("peer-client.example.test");

        var first = session.DisposeAsync().AsTask();
        await server.QuitReceived;
        var second = session.DisposeAsync().AsTask();

        second.IsCompleted.Should().BeFalse("DisposeAsync returns a task that completes when the connection is closed, and the first one is still waiting for the reply to its QUIT");
        await server.DisposeAsync(); // the server goes away: the QUIT ends, the connection is closed
        await second;
        session.IsConnected.Should().BeFalse();
        await first;
    }

    private sealed class NonSeekable(byte[] bytes) : ForwardOnlyStream
    {
        private readonly MemoryStream _inner = new(bytes);

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
    }
}
