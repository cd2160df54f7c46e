using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// Peer acceptance suite: the outcomes a real server cannot be made to produce on demand (a final reply that never
/// comes, a connection dropped right after the end of data, a server that never greets), with a scripted loopback
/// server; and the checks before MAIL against the real Postfix.
/// </summary>
public sealed class PeerOutcomeTests
{
    private const string From = "peer-outcome@example.test";
    private const string To = "bob@example.test";

    private static byte[] Message(string subject) => PeerSupport.Message(From, subject);

    private static Task<AsyncSmtpSession> ConnectAsync(int port, SmtpSessionOptions? options = null) => PeerSupport.ConnectAsync(port, options);

    [Fact]
    public async Task Session_cancelled_after_the_end_of_data_throws_SmtpOutcomeUnknownException_with_an_Unknown_result()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.HoldFinalReply);
        await using var session = await ConnectAsync(server.Port);
        using var cts = new CancellationTokenSource();

        var send = session.SendAsync(new SmtpEnvelope(From, To), Message("held"), cts.Token);
        await server.EndOfDataReceived;
        await cts.CancelAsync();

        var thrown = (await FluentActions.Awaiting(() => send).Should().ThrowAsync<SmtpOutcomeUnknownException>()).Which;
        thrown.Should().BeAssignableTo<OperationCanceledException>();
        thrown.Result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        thrown.Result.AcceptedRecipients.Select(r => r.Address).Should().Equal(To);
        thrown.Result.FinalReply.Should().BeNull();
        thrown.Result.IsTransientFailure.Should().BeFalse();
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task Session_connection_lost_after_the_end_of_data_is_a_returned_Unknown_result()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.CloseAfterEndOfData);
        await using var session = await ConnectAsync(server.Port);

        var result = await session.SendAsync(new SmtpEnvelope(From, To), Message("dropped"));

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>();
        result.IsTransientFailure.Should().BeFalse("never true for Unknown");
        result.AcceptedRecipients.Should().HaveCount(1);
        session.IsConnected.Should().BeFalse("README: not connected after Unknown");
    }

    [Fact]
    public async Task Session_greeting_never_comes_throws_SmtpException_TimedOut()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.BlackHole);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { ReceiveTimeout = TimeSpan.FromSeconds(1) });

        var act = async () => await session.ConnectAsync(TestServers.Host, server.Port);

        var thrown = (await act.Should().ThrowAsync<SmtpException>()).Which;
        thrown.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task Sender_waiting_longer_than_AcquireTimeout_is_a_transient_NotSent_TimedOut_result()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.BlackHole);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = server.Port,
            TlsMode = SmtpTlsMode.None,
            AcquireTimeout = TimeSpan.FromSeconds(1),
        });

        var result = await sender.SendAsync(new SmtpEnvelope(From, To), Message("black hole"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeTrue();
        var exception = result.Exception.Should().BeOfType<SmtpException>().Which;
        exception.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        exception.Message.Should().Contain("opened", "README: its TimedOut message then says the connection was still being opened");
    }

    [Fact]
    public async Task Sender_cancelled_while_the_message_waits_for_a_connection_throws_a_plain_OperationCanceledException()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.BlackHole);
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = server.Port, TlsMode = SmtpTlsMode.None });
        using var cts = new CancellationTokenSource();

        var send = sender.SendAsync(new SmtpEnvelope(From, To), Message("waiting"), cts.Token);
        await server.ConnectionAccepted;
        await cts.CancelAsync();

        (await FluentActions.Awaiting(() => send).Should().ThrowAsync<OperationCanceledException>())
            .Which.Should().NotBeOfType<SmtpOutcomeUnknownException>();
        server.EndsOfData.Should().Be(0);
    }

    [Fact]
    public async Task Sender_DisposeAsync_fails_a_waiting_message_with_ObjectDisposedException()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.BlackHole);
        var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = server.Port, TlsMode = SmtpTlsMode.None });

        var send = sender.SendAsync(new SmtpEnvelope(From, To), Message("waiting"));
        await server.ConnectionAccepted;
        await sender.DisposeAsync();

        await FluentActions.Awaiting(() => send).Should().ThrowAsync<ObjectDisposedException>();
    }

    [Fact]
    public async Task Sender_Dispose_has_failed_the_waiting_messages_before_it_returns()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.BlackHole);
        var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = server.Port, TlsMode = SmtpTlsMode.None });

        var send = sender.SendAsync(new SmtpEnvelope(From, To), Message("waiting"));
        await server.ConnectionAccepted;
        sender.Dispose();

        send.IsCompleted.Should().BeTrue("README: before Dispose returns ... the messages waiting for a connection have failed with ObjectDisposedException");
        await FluentActions.Awaiting(() => send).Should().ThrowAsync<ObjectDisposedException>();
        await sender.DisposeAsync();
    }

    [Fact]
    public async Task Sender_cancelled_after_the_end_of_data_throws_SmtpOutcomeUnknownException()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.HoldFinalReply);
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = server.Port, TlsMode = SmtpTlsMode.None });
        using var cts = new CancellationTokenSource();

        var send = sender.SendAsync(new SmtpEnvelope(From, To), Message("held"), cts.Token);
        await server.EndOfDataReceived;
        await cts.CancelAsync();

        var thrown = (await FluentActions.Awaiting(() => send).Should().ThrowAsync<SmtpOutcomeUnknownException>()).Which;
        thrown.Result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        server.EndsOfData.Should().Be(1);
    }

    [Fact]
    public async Task Sender_connection_lost_after_the_end_of_data_is_Unknown_and_never_sent_again()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.CloseAfterEndOfData);
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = server.Port, TlsMode = SmtpTlsMode.None });

        var result = await sender.SendAsync(new SmtpEnvelope(From, To), Message("dropped"));

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Attempts.Should().Be(1, "Unknown is never retried");
        result.IsTransientFailure.Should().BeFalse();
        server.EndsOfData.Should().Be(1, "nothing is ever delivered twice because of MailPipe");
    }

    [Fact]
    public async Task Content_over_the_servers_SIZE_limit_is_NotSent_MessageTooLarge_before_MAIL()
    {
        await using var session = await ConnectAsync(TestServers.PostfixPort);
        session.Capabilities.MaxMessageSize.Should().Be(10_485_760);
        var roundTrips = session.RoundTrips;
        var big = new byte[10_485_761];
        big.AsSpan().Fill((byte)'a');

        var result = await session.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-big")), big);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        result.MailReply.Should().BeNull("not sent before MAIL");
        session.RoundTrips.Should().Be(roundTrips);
        session.IsConnected.Should().BeTrue();
    }

    [Fact]
    public async Task Eight_bit_content_declared_seven_bit_is_NotSent_before_MAIL()
    {
        await using var session = await ConnectAsync(TestServers.PostfixPort);
        var roundTrips = session.RoundTrips;
        var content = Encoding.UTF8.GetBytes("Subject: caf\u00e9\r\n\r\nna\u00efve\r\n");

        var result = await session.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-7bit")) { Body = SmtpBodyType.SevenBit }, content);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().NotBeNull();
        session.RoundTrips.Should().Be(roundTrips);
    }

    [Fact]
    public async Task RequireTls_on_a_cleartext_session_is_not_attempted()
    {
        await using var session = await ConnectAsync(TestServers.PostfixPort);
        var roundTrips = session.RoundTrips;

        var result = await session.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-rtls")) { RequireTls = true }, Message("requiretls"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>();
        session.RoundTrips.Should().Be(roundTrips);
    }

    [Fact]
    public async Task A_UTF8_address_to_a_server_without_SMTPUTF8_is_NotSent_ExtensionNotSupported()
    {
        const int NoSmtpUtf8Port = 2544;
        TestServers.RequireListening(NoSmtpUtf8Port);
        await using var session = await ConnectAsync(NoSmtpUtf8Port);

        var result = await session.SendAsync(new SmtpEnvelope(From, "j\u00f6rg@example.test"), Message("utf8"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
    }

    [Fact]
    public async Task A_content_writer_that_throws_is_NotSent_ContentReadFailed_and_never_ended()
    {
        var recipient = TestServers.UniqueRecipient("peer-writer");
        var probe = TestServers.UniqueRecipient("peer-writer-probe");
        var failure = new InvalidOperationException("template failed");
        await using var session = await ConnectAsync(TestServers.PostfixPort);
        var message = SmtpMessage.FromWriter(new SmtpEnvelope(From, recipient), async (stream, ct) =>
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes("Subject: half\r\n\r\nfirst half\r\n"), ct);
            throw failure;
        });

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        var exception = result.Exception.Should().BeOfType<SmtpException>().Which;
        exception.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        exception.InnerException.Should().BeSameAs(failure);

        if (!session.IsConnected)
        {
            await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
            await session.HelloAsync("peer-client.example.test");
        }

        (await session.SendAsync(new SmtpEnvelope(From, probe), Message("probe"))).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await Maildir.WaitForPostfixAsync(probe);
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipient)).Should().BeFalse("never a final dot after a failed writer");
    }
}
