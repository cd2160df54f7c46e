using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// Peer acceptance suite: the shared sender's cancellation and disposal while messages wait or are being written
/// (README "Cancellation" and "Disposal"), and a session batch cancelled part way.
/// </summary>
public sealed class PeerCancellationTests
{
    private const string From = "peer-cancel@example.test";

    private static byte[] Message(string subject) => PeerSupport.Message(From, subject, messageId: true);

    private static SmtpMessage Msg(string recipient, string subject) => SmtpMessage.FromBytes(new SmtpEnvelope(From, recipient), Message(subject));

    [Fact]
    public async Task A_batch_whose_sender_is_disposed_while_it_waits_returns_NotSent_results_with_the_ObjectDisposedException()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.BlackHole);
        var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = server.Port, TlsMode = SmtpTlsMode.None });
        var messages = Enumerable.Range(0, 3).Select(i => Msg($"r{i}@example.test", $"d{i}")).ToArray();

        var batch = sender.SendBatchAsync(messages);
        await server.ConnectionAccepted;
        await sender.DisposeAsync();

        var results = await batch;
        results.Select(r => r.Envelope).Should().Equal(messages.Select(m => m.Envelope));
        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.NotSent && r.Exception is ObjectDisposedException);
    }

    [Fact]
    public async Task A_batch_cancelled_while_it_waits_for_a_connection_throws_SmtpBatchCanceledException_with_every_result_NotSent()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.BlackHole);
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = server.Port, TlsMode = SmtpTlsMode.None });
        using var cts = new CancellationTokenSource();
        var messages = Enumerable.Range(0, 3).Select(i => Msg($"r{i}@example.test", $"c{i}")).ToArray();

        var batch = sender.SendBatchAsync(messages, cts.Token);
        await server.ConnectionAccepted;
        await cts.CancelAsync();

        var thrown = (await FluentActions.Awaiting(() => batch).Should().ThrowAsync<SmtpBatchCanceledException>()).Which;
        thrown.Results.Select(r => r.Envelope).Should().Equal(messages.Select(m => m.Envelope));
        thrown.Results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.NotSent);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_send_cancelled_while_its_content_is_written_is_never_ended_BDAT_keeps_the_connection_DATA_closes_it(bool chunking)
    {
        var recipient = TestServers.UniqueRecipient("peer-cw");
        var probe = TestServers.UniqueRecipient("peer-cw-probe");
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            TlsMode = SmtpTlsMode.None,
            MaxConnections = 1,
            Session = new SmtpSessionOptions { UseChunking = chunking },
        });
        (await sender.SendAsync(Msg(TestServers.UniqueRecipient("peer-cw-warm"), "warm up"))).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        using var cts = new CancellationTokenSource();
        var message = SmtpMessage.FromWriter(new SmtpEnvelope(From, recipient), async (stream, ct) =>
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes("Subject: cancelled while written\r\n\r\n" + new string('x', 300_000) + "\r\n"), ct);
            await cts.CancelAsync();
            await stream.WriteAsync(Encoding.ASCII.GetBytes("the rest\r\n"), ct);
        });

        var act = () => sender.SendAsync(message, cts.Token);

        (await act.Should().ThrowAsync<OperationCanceledException>()).Which.Should().NotBeOfType<SmtpOutcomeUnknownException>();
        (await sender.SendAsync(Msg(probe, "probe"))).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        sender.GetStatistics().Opened.Should().Be(chunking ? 1 : 2, chunking ? "with BDAT the transaction is reset and the connection kept" : "with DATA the only way out is closing the connection");
        await Maildir.WaitForPostfixAsync(probe);
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipient)).Should().BeFalse("a cancelled message is never ended");
    }

    [Fact]
    public async Task A_non_seekable_stream_sent_twice_through_the_sender_is_NotSent_ContentNotReplayable_the_second_time()
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None });
        var pipe = new System.IO.Pipelines.Pipe();
        await pipe.Writer.WriteAsync(Message("pipe once"));
        await pipe.Writer.CompleteAsync();
        var message = SmtpMessage.FromPipeReader(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-pipe")), pipe.Reader);

        (await sender.SendAsync(message)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        var again = await sender.SendAsync(message);

        again.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        again.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentNotReplayable);
    }

    [Fact]
    public async Task A_session_batch_cancelled_by_its_sequence_part_way_throws_SmtpBatchCanceledException_with_a_result_per_message_taken()
    {
        using var cts = new CancellationTokenSource();
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.HelloAsync("peer-client.example.test");

        async IAsyncEnumerable<SmtpMessage> Messages()
        {
            yield return Msg(TestServers.UniqueRecipient("peer-sc1"), "sc1");
            yield return Msg(TestServers.UniqueRecipient("peer-sc2"), "sc2");
            await cts.CancelAsync();
            await Task.Delay(Timeout.Infinite, cts.Token);
            yield return Msg(TestServers.UniqueRecipient("peer-sc3"), "never");
        }

        var act = async () => await session.SendBatchAsync(Messages(), cts.Token);

        var thrown = (await act.Should().ThrowAsync<SmtpBatchCanceledException>()).Which;
        thrown.Results.Should().HaveCount(2, "one result per message taken");
        thrown.Results.Should().OnlyContain(r => r.Outcome != SmtpSendOutcome.Refused);
        session.IsConnected.Should().BeFalse("the connection is closed, as for every cancellation of an operation under way");
    }

    [Fact]
    public async Task An_empty_batch_returns_no_results()
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None });

        (await sender.SendBatchAsync([])).Should().BeEmpty();
        sender.GetStatistics().Opened.Should().Be(0);
    }
}
