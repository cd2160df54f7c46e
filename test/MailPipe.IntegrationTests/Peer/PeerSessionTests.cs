using System.Buffers;
using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.Tests.Shared;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// Peer acceptance suite: AsyncSmtpSession against the real Postfix (2525, the special recipients of
/// build/servers/README.md), as README.md's quick start and the XML docs describe it.
/// </summary>
public sealed class PeerSessionTests
{
    private const string Sender = "peer@example.test";
    private const string Tempfail = "tempfail@example.test";

    private static byte[] Message(string subject) => PeerSupport.Message(Sender, subject, messageId: true);

    private static async Task<AsyncSmtpSession> ConnectAsync(int? port = null)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions());
        var greeting = await session.ConnectAsync(TestServers.Host, port ?? TestServers.PostfixPort);
        greeting!.Code.Should().Be(220);
        (await session.HelloAsync("peer-client.example.test")).Code.Should().Be(250);
        return session;
    }

    [Fact]
    public async Task The_quick_start_sends_a_stream_and_the_message_arrives_as_sent()
    {
        var recipient = TestServers.UniqueRecipient("peer-qs");
        var second = TestServers.UniqueRecipient("peer-qs2");
        var bytes = Message("quick start");
        var session = await ConnectAsync();
        await using (session)
        {
            var envelope = new SmtpEnvelope(Sender, recipient, second);
            await using var content = new MemoryStream(bytes);
            var result = await session.SendAsync(envelope, content);

            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
            result.RefusedRecipients.Should().BeEmpty();
            result.AcceptedRecipients.Select(r => r.Address).Should().Equal(recipient, second);
            result.FinalReply!.IsPositiveCompletion.Should().BeTrue();
            session.IsConnected.Should().BeTrue();
            (await session.QuitAsync()).Code.Should().Be(221);
            session.IsConnected.Should().BeFalse();

            var quitAgain = () => session.QuitAsync();
            await quitAgain.Should().ThrowAsync<InvalidOperationException>("README: QuitAsync on a closed session throws InvalidOperationException");
        }

        Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(recipient))[0]).Should().Equal(bytes);
        Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(second))[0]).Should().Equal(bytes);
    }

    [Fact]
    public async Task Refused_recipients_are_returned_in_envelope_order_and_the_message_goes_to_the_accepted_one()
    {
        var good = TestServers.UniqueRecipient("peer-mixed");
        var unknown = $"unknown-{Guid.NewGuid():N}@example.test";
        var bytes = Message("mixed");
        await using var session = await ConnectAsync();

        var result = await session.SendAsync(new SmtpEnvelope(Sender, unknown, good, Tempfail), bytes);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Recipients.Select(r => r.Recipient.Address).Should().Equal(unknown, good, Tempfail);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(550, 250, 450);
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal(good);
        result.RefusedRecipients.Select(r => r.Recipient.Address).Should().Equal(unknown, Tempfail);
        result.Recipients[2].Reply!.IsTransientNegative.Should().BeTrue();
        result.Exception.Should().BeNull();
        session.IsConnected.Should().BeTrue();

        Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(good))[0]).Should().Equal(bytes);
    }

    [Fact]
    public async Task Every_recipient_refused_is_a_returned_Refused_result_transient_for_450_and_permanent_for_550()
    {
        await using var session = await ConnectAsync();

        var transient = await session.SendAsync(new SmtpEnvelope(Sender, Tempfail), Message("tempfail"));
        transient.Outcome.Should().Be(SmtpSendOutcome.Refused, transient.ToString());
        transient.IsTransientFailure.Should().BeTrue();
        transient.Recipients.Single().Reply!.Code.Should().Be(450);
        transient.AcceptedRecipients.Should().BeEmpty();
        transient.Exception.Should().BeNull();

        var permanent = await session.SendAsync(new SmtpEnvelope(Sender, $"nosuch-{Guid.NewGuid():N}@example.test"), Message("nosuch"));
        permanent.Outcome.Should().Be(SmtpSendOutcome.Refused, permanent.ToString());
        permanent.IsTransientFailure.Should().BeFalse();

        session.IsConnected.Should().BeTrue("a refusal is data, not a broken connection");
        var ok = await session.SendAsync(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("peer-after")), Message("after refusals"));
        ok.Outcome.Should().Be(SmtpSendOutcome.Accepted, ok.ToString());
    }

    [Theory]
    [InlineData("eod-reject@example.test", 554, false)]
    [InlineData("eod-tempfail@example.test", 451, true)]
    public async Task A_refusal_at_the_end_of_data_is_Refused_with_the_final_reply(string reversePath, int code, bool transient)
    {
        await using var session = await ConnectAsync();

        var result = await session.SendAsync(new SmtpEnvelope(reversePath, TestServers.UniqueRecipient("peer-eod")), Message("eod"));

        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.FinalReply!.Code.Should().Be(code);
        result.IsTransientFailure.Should().Be(transient);
        result.AcceptedRecipients.Should().HaveCount(1, "the recipient was accepted; the message was refused");
        session.IsConnected.Should().BeTrue();
    }

    [Fact]
    public async Task Command_by_command_a_5yz_is_returned_not_thrown()
    {
        await using var session = await ConnectAsync();

        (await session.MailFromAsync(Sender, "SIZE=1024")).Code.Should().Be(250);
        var refused = await session.RcptToAsync($"unknown-{Guid.NewGuid():N}@example.test");
        refused.IsPermanentNegative.Should().BeTrue();
        refused.Code.Should().Be(550);
        session.LastReply.Should().BeSameAs(refused);
        var temp = await session.RcptToAsync(Tempfail);
        temp.Code.Should().Be(450);
        (await session.RcptToAsync(TestServers.UniqueRecipient("peer-cmd"))).Code.Should().Be(250);
        (await session.DataAsync()).Code.Should().Be(354);
        await session.WriteMessageDataAsync(Encoding.ASCII.GetBytes("Subject: command by command\n\n.leading dot"));
        (await session.EndMessageDataAsync()).Code.Should().Be(250);
        (await session.RsetAsync()).Code.Should().Be(250);
    }

    public static TheoryData<string, Func<SmtpEnvelope>> BadEnvelopes() => new()
    {
        { "CRLF in a recipient", () => new SmtpEnvelope(Sender, "bob@example.test\r\nRCPT TO:<eve@example.test>") },
        { "a bare local part", () => new SmtpEnvelope(Sender, "jdoe") },
        { "NUL in the reverse-path", () => new SmtpEnvelope("a\0b@example.test", "bob@example.test") },
        { "no recipient", () => new SmtpEnvelope(Sender) },
        { "CR in MAIL parameters", () => new SmtpEnvelope(Sender, "bob@example.test") { MailParameters = "X=1\rRSET" } },
        { "LF in RCPT parameters", () => new SmtpEnvelope(Sender, [new SmtpRecipient("bob@example.test") { Parameters = "X=1\nRSET" }]) },
    };

    [Theory]
    [MemberData(nameof(BadEnvelopes))]
    public async Task A_bad_envelope_is_an_ArgumentException_and_nothing_is_sent(string why, Func<SmtpEnvelope> make)
    {
        await using var session = await ConnectAsync();
        var roundTrips = session.RoundTrips;

        var act = async () => await session.SendAsync(make(), Message("bad"));

        await act.Should().ThrowAsync<ArgumentException>(why);
        session.RoundTrips.Should().Be(roundTrips, "nothing was written");
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250, "the connection is untouched");
    }

    [Fact]
    public async Task A_negative_declared_size_is_an_ArgumentOutOfRangeException_when_sent_and_nothing_is_sent()
    {
        await using var session = await ConnectAsync();
        var envelope = new SmtpEnvelope(Sender, TestServers.UniqueRecipient("peer-size")) { Size = -1 };
        var roundTrips = session.RoundTrips;

        var act = async () => await session.SendAsync(envelope, Message("size"));

        await act.Should().ThrowAsync<ArgumentOutOfRangeException>();
        session.RoundTrips.Should().Be(roundTrips);
        (await session.MailFromAsync(Sender)).Code.Should().Be(250, "no MAIL went out before: a second MAIL would be 503");
    }

    [Fact]
    public async Task A_command_argument_with_CRLF_is_an_ArgumentException_before_a_byte_is_written()
    {
        await using var session = await ConnectAsync();

        var act = async () => await session.MailFromAsync("a@example.test>\r\nRCPT TO:<b@example.test");
        await act.Should().ThrowAsync<ArgumentException>();
        var param = async () => await session.RcptToAsync("b@example.test", "NOTIFY=NEVER\r\nDATA");
        await param.Should().ThrowAsync<ArgumentException>();

        (await session.MailFromAsync(Sender)).Code.Should().Be(250, "the refused MAIL was never sent");
    }

    [Fact]
    public async Task A_token_cancelled_before_the_call_throws_and_keeps_the_connection()
    {
        await using var session = await ConnectAsync();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        var roundTrips = session.RoundTrips;

        var send = async () => await session.SendAsync(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("peer-pre")), Message("pre"), cts.Token);
        await send.Should().ThrowAsync<OperationCanceledException>();
        var noop = async () => await session.NoopAsync(cts.Token);
        await noop.Should().ThrowAsync<OperationCanceledException>();

        session.IsConnected.Should().BeTrue("a token already cancelled when a call starts leaves the connection open");
        session.RoundTrips.Should().Be(roundTrips);
        var result = await session.SendAsync(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("peer-pre2")), Message("after pre-cancel"));
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
    }

    [Fact]
    public async Task Cancelling_while_the_content_is_written_throws_a_plain_OperationCanceledException_closes_and_allows_a_reconnect()
    {
        var recipient = TestServers.UniqueRecipient("peer-mid");
        var session = await ConnectAsync();
        await using (session)
        {
            using var cts = new CancellationTokenSource();
            var message = SmtpMessage.FromWriter(new SmtpEnvelope(Sender, recipient), async (stream, ct) =>
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes("Subject: cancelled mid-content\r\n\r\n"), ct);
                await cts.CancelAsync();
                await stream.WriteAsync(Encoding.ASCII.GetBytes("the rest\r\n"), ct);
            });

            var act = async () => await session.SendAsync(message, cts.Token);

            var thrown = (await act.Should().ThrowAsync<OperationCanceledException>()).Which;
            thrown.Should().NotBeOfType<SmtpOutcomeUnknownException>("the end of data was never written");
            session.IsConnected.Should().BeFalse("cancelling an operation under way closes the connection");

            // README: "the same object can ConnectAsync again".
            (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
            (await session.HelloAsync("peer-client.example.test")).Code.Should().Be(250);
            var probe = TestServers.UniqueRecipient("peer-mid-after");
            var after = await session.SendAsync(new SmtpEnvelope(Sender, probe), Message("after mid-content cancel"));
            after.Outcome.Should().Be(SmtpSendOutcome.Accepted, after.ToString());
            await Maildir.WaitForPostfixAsync(probe);
        }

        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipient)).Should().BeFalse("a cancelled message is never ended, so never delivered (checked after a later message on the same server arrived)");
    }

    [Fact]
    public async Task Cancelling_after_the_call_returned_changes_nothing()
    {
        await using var session = await ConnectAsync();
        using var cts = new CancellationTokenSource();

        var result = await session.SendAsync(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("peer-postcancel")), Message("post"), cts.Token);
        await cts.CancelAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    [Fact]
    public async Task A_batch_returns_one_result_per_message_in_order()
    {
        var first = TestServers.UniqueRecipient("peer-b1");
        var third = TestServers.UniqueRecipient("peer-b3");
        var messages = new[]
        {
            SmtpMessage.FromBytes(new SmtpEnvelope(Sender, first), Message("batch 1")),
            SmtpMessage.FromBytes(new SmtpEnvelope(Sender, Tempfail), Message("batch 2")),
            SmtpMessage.FromSequence(new SmtpEnvelope("eod-reject@example.test", TestServers.UniqueRecipient("peer-b3r")), new ReadOnlySequence<byte>(Message("batch 3"))),
            SmtpMessage.FromStream(new SmtpEnvelope(Sender, third), new MemoryStream(Message("batch 4"))),
        };
        await using var session = await ConnectAsync();

        var results = await session.SendBatchAsync(messages);

        results.Should().HaveCount(4);
        results.Select(r => r.Envelope).Should().Equal(messages.Select(m => m.Envelope));
        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused, SmtpSendOutcome.Refused, SmtpSendOutcome.Accepted);
        results[2].FinalReply!.Code.Should().Be(554);
        await Maildir.WaitForPostfixAsync(first);
        await Maildir.WaitForPostfixAsync(third);
    }

    [Fact]
    public async Task A_batch_list_with_a_bad_message_is_checked_whole_and_nothing_is_sent()
    {
        await using var session = await ConnectAsync();
        var good = SmtpMessage.FromBytes(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("peer-bad1")), Message("never"));
        var bad = SmtpMessage.FromBytes(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("peer-bad2")) { Size = -5 }, Message("bad"));
        var roundTrips = session.RoundTrips;

        var act = async () => await session.SendBatchAsync(new[] { good, bad });

        // The XML doc of SendBatchAsync(IEnumerable): ArgumentException, nothing was sent (SmtpBatchArgumentException is the
        // IAsyncEnumerable's, checked message by message).
        await act.Should().ThrowAsync<ArgumentOutOfRangeException>();
        session.RoundTrips.Should().Be(roundTrips, "a list is checked whole before anything is sent");
        session.IsConnected.Should().BeTrue();

        var nulls = async () => await session.SendBatchAsync(new SmtpMessage[] { good, null! });
        await nulls.Should().ThrowAsync<ArgumentException>();
        session.RoundTrips.Should().Be(roundTrips);
        (await session.MailFromAsync(Sender)).Code.Should().Be(250, "no MAIL of the batch went out");
    }

    [Fact]
    public async Task A_batch_with_a_token_cancelled_before_the_call_sends_nothing_and_keeps_the_connection()
    {
        await using var session = await ConnectAsync();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        var roundTrips = session.RoundTrips;
        var messages = new[] { SmtpMessage.FromBytes(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("peer-bc")), Message("never")) };

        var act = async () => await session.SendBatchAsync(messages, cts.Token);

        var thrown = (await act.Should().ThrowAsync<SmtpBatchCanceledException>()).Which;
        thrown.Results.Where(r => r.Outcome != SmtpSendOutcome.NotSent).Should().BeEmpty("no message was taken, or each taken one is NotSent");
        session.IsConnected.Should().BeTrue("a token already cancelled when the call starts sends nothing and keeps it");
        session.RoundTrips.Should().Be(roundTrips);
    }

    [Fact]
    public async Task A_non_seekable_stream_sent_twice_is_NotSent_ContentNotReplayable_the_second_time()
    {
        await using var session = await ConnectAsync();
        var message = SmtpMessage.FromStream(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("peer-once")), new OneWayStream(Message("once")));

        (await session.SendAsync(message)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        var again = await session.SendAsync(message);

        again.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        again.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentNotReplayable);
        session.IsConnected.Should().BeTrue();
    }

    [Fact]
    public async Task After_DisposeAsync_the_session_is_closed_and_every_operation_throws_ObjectDisposedException()
    {
        var session = await ConnectAsync();
        await session.DisposeAsync();
        await session.DisposeAsync(); // idempotent

        session.IsConnected.Should().BeFalse();
        var connect = async () => await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await connect.Should().ThrowAsync<ObjectDisposedException>();
        var send = async () => await session.SendAsync(new SmtpEnvelope(Sender, "bob@example.test"), Message("x"));
        await send.Should().ThrowAsync<ObjectDisposedException>();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_second_disposal_keeps_the_session_disposed(bool syncFirst)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions());
        if (syncFirst)
        {
            session.Dispose();
        }
        else
        {
            await session.DisposeAsync();
        }

        await session.DisposeAsync();

        var connect = async () => await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await connect.Should().ThrowAsync<ObjectDisposedException>("Dispose: from now on every operation throws ObjectDisposedException");
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task Sending_before_connecting_is_an_InvalidOperationException()
    {
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());

        var act = async () => await session.SendAsync(new SmtpEnvelope(Sender, "bob@example.test"), Message("x"));

        await act.Should().ThrowAsync<InvalidOperationException>();
    }

    [Fact]
    public async Task A_refused_connect_throws_SmtpException_ConnectionRefused()
    {
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());

        var act = async () => await session.ConnectAsync(TestServers.Host, 1);

        var thrown = (await act.Should().ThrowAsync<SmtpException>()).Which;
        thrown.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        thrown.IsTransient.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
    }

    [Theory]
    [InlineData(2526)]
    [InlineData(2527)]
    [InlineData(2528)]
    public async Task The_same_send_works_against_Exim_aiosmtpd_and_smtp_sink(int port)
    {
        TestServers.RequireListening(port);
        await using var session = await ConnectAsync(port);

        var result = await session.SendAsync(new SmtpEnvelope(Sender, TestServers.UniqueRecipient("peer-other")), Message("other server"));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        (await session.QuitAsync()).Code.Should().Be(221);
    }

    /// <summary>A stream that cannot seek (a network stream, say).</summary>
    private sealed class OneWayStream(byte[] bytes) : ForwardOnlyStream
    {
        private readonly MemoryStream _inner = new(bytes);

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
    }
}
