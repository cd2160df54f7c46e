using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>Peer acceptance suite: smaller promises of the sender's and the session's docs.</summary>
public sealed class PeerMiscTests
{
    private const string From = "peer-misc@example.test";

    private static byte[] Message(string subject) => PeerSupport.Message(From, subject);

    private static SmtpSender PlainPostfixSender() =>
        new(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None });

    [Fact]
    public async Task A_NotSent_result_still_has_one_recipient_entry_per_envelope_recipient_without_a_reply()
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = 1, TlsMode = SmtpTlsMode.None });
        var envelope = new SmtpEnvelope(From, "a@example.test", "b@example.test");

        var result = await sender.SendAsync(envelope, Message("x"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Envelope.Should().BeSameAs(envelope);
        result.Recipients.Select(r => r.Recipient).Should().Equal(envelope.Recipients);
        result.Recipients.Should().OnlyContain(r => r.Reply == null && !r.Accepted);
        result.AcceptedRecipients.Should().BeEmpty();
        result.RefusedRecipients.Should().HaveCount(2, "a recipient whose RCPT got no reply counts as refused");
        result.MailReply.Should().BeNull();
    }

    [Fact]
    public async Task A_message_whose_own_token_is_cancelled_is_a_NotSent_result_from_the_sender()
    {
        await using var sender = PlainPostfixSender();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        var message = SmtpMessage.FromBytes(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-own")), Message("own token")).WithCancellation(cts.Token);

        var result = await sender.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<OperationCanceledException>();
        result.Attempts.Should().Be(1);
    }

    [Fact]
    public async Task Eight_bit_content_declared_seven_bit_is_NotSent_by_the_sender_and_not_retried()
    {
        await using var sender = PlainPostfixSender();
        var content = Encoding.UTF8.GetBytes("Subject: caf\u00e9\r\n\r\nna\u00efve\r\n");

        var result = await sender.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-s7")) { Body = SmtpBodyType.SevenBit }, content);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeFalse("sending the same message again cannot succeed");
        result.Attempts.Should().Be(1);
    }

    [Fact]
    public async Task An_unreadable_stream_is_an_ArgumentException_from_the_sender_and_the_session()
    {
        var unreadable = new MemoryStream();
        await unreadable.DisposeAsync();
        await using var sender = PlainPostfixSender();
        await using var session = new AsyncSmtpSession();

        await FluentActions.Awaiting(() => sender.SendAsync(new SmtpEnvelope(From, "bob@example.test"), unreadable)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => session.SendAsync(new SmtpEnvelope(From, "bob@example.test"), unreadable)).Should().ThrowAsync<ArgumentException>();
        sender.GetStatistics().Opened.Should().Be(0);
    }

    [Fact]
    public async Task Statistics_count_messages_and_connections()
    {
        await using var sender = PlainPostfixSender();

        var results = await sender.SendBatchAsync(Enumerable.Range(0, 5)
            .Select(i => SmtpMessage.FromBytes(new SmtpEnvelope(From, TestServers.UniqueRecipient($"peer-stat{i}")), Message($"stat {i}"))).ToArray());

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        var statistics = sender.GetStatistics();
        statistics.Messages.Should().Be(5);
        statistics.Opened.Should().BeInRange(1, 4, "never more than MaxConnections");
        statistics.PendingRequests.Should().Be(0);
        statistics.OpenFailures.Should().Be(0);
    }

    [Fact]
    public async Task The_session_counts_round_trips_one_per_pipelined_chunked_transaction()
    {
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.HelloAsync("peer-client.example.test");
        session.Capabilities.SupportsPipelining.Should().BeTrue();
        var before = session.RoundTrips;

        var result = await session.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-rt")), Message("round trips"));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(1, "README: with PIPELINING + CHUNKING one transaction costs one round trip");
    }

    [Fact]
    public async Task A_sender_batch_with_one_bad_envelope_throws_and_sends_none_of_its_messages()
    {
        await using var sender = PlainPostfixSender();
        var good = SmtpMessage.FromBytes(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-sbad1")), Message("good"));
        var bad = SmtpMessage.FromBytes(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-sbad2")) { EnvelopeId = "bad\u0001id" }, Message("bad"));

        await FluentActions.Awaiting(() => sender.SendBatchAsync([good, bad])).Should().ThrowAsync<ArgumentException>();

        var statistics = sender.GetStatistics();
        statistics.Messages.Should().Be(0, "each message is checked before anything is sent");
        statistics.Opened.Should().Be(0);
    }

    [Fact]
    public async Task A_streaming_batch_list_with_a_bad_message_throws_ArgumentException_and_sends_nothing()
    {
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.HelloAsync("peer-client.example.test");
        var before = session.RoundTrips;
        var messages = new[]
        {
            SmtpMessage.FromBytes(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-stbad1")), Message("good")),
            SmtpMessage.FromBytes(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-stbad2")) { Size = -1 }, Message("bad")),
        };

        var act = async () =>
        {
            await foreach (var result in session.SendBatchStreamingAsync(messages))
            {
                result.Should().BeNull("no result: the list is checked whole first");
            }
        };

        await act.Should().ThrowAsync<ArgumentException>();
        session.RoundTrips.Should().Be(before, "nothing was sent");
        session.IsConnected.Should().BeTrue();
    }

    [Fact]
    public async Task A_raw_command_gets_its_reply_returned_and_a_raw_QUIT_closes_the_connection()
    {
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.HelloAsync("peer-client.example.test");

        await session.SendCommandAsync("XFOO arg");
        var reply = await session.ReceiveReplyAsync();
        reply.IsPermanentNegative.Should().BeTrue(reply.ToString());
        session.IsConnected.Should().BeTrue();

        await FluentActions.Awaiting(() => session.SendCommandAsync("NOOP\r\nQUIT")).Should().ThrowAsync<ArgumentException>();

        await session.SendCommandAsync("QUIT");
        (await session.ReceiveReplyAsync()).Code.Should().Be(221);
        session.IsConnected.Should().BeFalse("a 221 to a QUIT sent this way closes the connection");
    }
}
