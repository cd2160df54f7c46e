using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.Tests.Pooling;
using MailPipe.Tests.Shared;
using MailPipe.Tests.Support;
using PoolProxy = MailPipe.Tests.Pooling.FaultProxy;
using RecordingProxy = MailPipe.Resilience.Tests.Support.FaultProxy;

namespace MailPipe.Resilience.Tests.Peer;

/// <summary>
/// The shared sender's failure model under faults of the path to the real Postfix (the root README's "Failure model",
/// "Pool hygiene and retry"), alone and under MailPipe.Resilience: a server restart while connections are idle costs
/// no caller a failed send; a connection lost before the end of data is sent again (once, or by the pipeline), after
/// it is Unknown and never resent; content is replayed as it was.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PeerPoolFaultTests
{
    [Theory]
    [InlineData(false, null)]
    [InlineData(false, "421 4.4.2 peer18b idle timeout")]
    [InlineData(true, null)]
    [InlineData(true, "421 4.3.2 peer18b shutting down")]
    public async Task Idle_connections_closed_by_the_server_or_a_restart_cost_the_next_message_no_attempt(bool restart, string? reply)
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port));
        var first = PeerSupport.Mail(TestServers.UniqueRecipient("p18b-idle-a"));
        (await sender.SendAsync(first.Message).WaitAsync(PeerSupport.Guard)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await PeerSupport.WaitUntilIdleAsync(sender);

        if (restart)
        {
            await proxy.GoDownAsync(reply);
            proxy.Accept();
        }
        else
        {
            await proxy.CloseAllAsync(reply);
        }

        var recipient = TestServers.UniqueRecipient("p18b-idle-b");
        var second = PeerSupport.Mail(recipient);
        var result = await sender.SendAsync(second.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(1, "a stale idle connection is replaced without costing the message an attempt");
        proxy.Connections.Should().Be(2);
        sender.GetStatistics().Opened.Should().Be(2);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, second)).Should().Be(1);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("421 4.4.2 peer18b idle timeout")]
    public async Task A_connection_the_server_closed_before_the_next_message_joined_its_batch_never_makes_that_message_Unknown(string? reply)
    {
        // Right after a result the connection is still in its batch (it ends a moment later) and takes the next message
        // without the idle check. The server's close (its FIN, or a 421 then FIN) is already there before a byte of the
        // next transaction is written: that message cannot have been delivered, and must not come back Unknown.
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port, o => o.MaxConnections = 1));
        for (var i = 0; i < 8; i++)
        {
            (await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-inbatch-a")).Message).WaitAsync(PeerSupport.Guard)).IsAccepted.Should().BeTrue();
            await proxy.CloseAllAsync(reply);
            var recipient = TestServers.UniqueRecipient("p18b-inbatch-b");
            var mail = PeerSupport.Mail(recipient);

            var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, $"round {i}: {result}");
            result.Attempts.Should().BeLessThanOrEqualTo(2);
            (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
        }
    }

    [Fact]
    public async Task Back_to_back_messages_to_a_healthy_server_keep_using_one_connection()
    {
        // The check of the server's close between a batch's transactions closes no healthy connection.
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port, o => o.MaxConnections = 1));

        for (var i = 0; i < 6; i++)
        {
            var result = await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-reuse")).Message).WaitAsync(PeerSupport.Guard);
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
            result.Attempts.Should().Be(1);
        }

        proxy.Connections.Should().Be(1);
        sender.GetStatistics().Discarded.Should().Be(0);
    }

    [Fact]
    public async Task An_unsolicited_421_on_an_idle_connection_makes_the_next_message_use_a_new_one()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port));
        (await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-unsol-a")).Message).WaitAsync(PeerSupport.Guard)).IsAccepted.Should().BeTrue();

        await proxy.InjectAllAsync("421 4.4.2 peer18b idle timeout, closing");
        var recipient = TestServers.UniqueRecipient("p18b-unsol-b");
        var mail = PeerSupport.Mail(recipient);
        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(1);
        proxy.Connections.Should().Be(2, "a connection with an unsolicited reply waiting is never lent again");
        sender.GetStatistics().Discarded.Should().BeGreaterThanOrEqualTo(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task A_server_that_refuses_connections_gives_a_transient_NotSent_ConnectionRefused_and_the_sender_works_once_it_is_back()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await proxy.RefuseAsync();
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port));

        var refused = await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-down")).Message).WaitAsync(PeerSupport.Guard);

        refused.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        refused.IsTransientFailure.Should().BeTrue();
        refused.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        sender.GetStatistics().OpenFailures.Should().BeGreaterThanOrEqualTo(1);

        proxy.Accept();
        var recipient = TestServers.UniqueRecipient("p18b-back");
        var mail = PeerSupport.Mail(recipient);
        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task A_server_down_at_the_first_attempt_and_back_for_the_retry_gets_the_message_once()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await proxy.RefuseAsync();
        var configure = PeerSupport.Fast(2);
        TaskCompletionSource? retrying = null;
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(o =>
        {
            configure(o);
            retrying = PeerSupport.OnRetry(o, 1, () =>
            {
                proxy.Accept();
                return Task.CompletedTask;
            });
        });
        var recipient = TestServers.UniqueRecipient("p18b-restart");
        var mail = PeerSupport.Mail(recipient);

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        retrying!.Task.IsCompleted.Should().BeTrue();
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(2);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_drop_after_the_final_dot_is_Unknown_and_not_resent_by_the_pool(bool chunking)
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port, o => o.Session = new SmtpSessionOptions { UseChunking = chunking }));
        var recipient = TestServers.UniqueRecipient("p18b-dot-pool");
        var mail = PeerSupport.Mail(recipient);
        proxy.DropNext(DropPoint.AfterFinalDot);

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Attempts.Should().Be(1, "Unknown is never retried");
        result.IsTransientFailure.Should().BeFalse("an unknown outcome is not 'safe to try later'");
        proxy.Connections.Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1, "the server got the end of data and delivered it");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_drop_after_the_final_dot_is_Unknown_and_never_retried_by_the_standard_pipeline(bool chunking)
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port, o => o.Session = new SmtpSessionOptions { UseChunking = chunking }))
            .WithStandardResilience(PeerSupport.Fast(3));
        var recipient = TestServers.UniqueRecipient("p18b-dot-std");
        var mail = PeerSupport.Mail(recipient);
        proxy.DropNext(DropPoint.AfterFinalDot);

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Attempts.Should().Be(1);
        proxy.Connections.Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Theory]
    [InlineData(PeerServer.Exim)]
    [InlineData(PeerServer.Aiosmtpd)]
    public async Task A_drop_after_the_final_dot_at_other_servers_is_Unknown_and_delivered_once(PeerServer server)
    {
        TestServers.RequireListening(PeerSupport.Port(server));
        await using var proxy = new PoolProxy(PeerSupport.Port(server));
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(PeerSupport.Fast(3));
        var recipient = TestServers.UniqueRecipient("p18b-dot-other");
        var mail = PeerSupport.Mail(recipient);
        proxy.DropNext(DropPoint.AfterFinalDot);

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Attempts.Should().Be(1);
        proxy.Connections.Should().Be(1);
        (await PeerSupport.CopiesAsync(server, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task After_an_unknown_attempt_only_its_450_recipient_is_asked_again_and_the_others_are_never_resent()
    {
        // README: "When the unknown attempt comes first, its 4yz recipients (not in its transaction) are retried".
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort)
        {
            DropWhen = n => n == 1,
            DropMarker = "\r\n.\r\n",
        };
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port, o => o.Session = PeerSupport.DataOnly)).WithStandardResilience(PeerSupport.Fast(2));
        var recipient = TestServers.UniqueRecipient("p18b-unknown-4yz");
        var mail = PeerSupport.Mail(recipient, PeerSupport.TempFail);

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Attempts.Should().Be(3);
        result.Recipients[0].Reply!.Code.Should().Be(250, "the unknown attempt's recipient keeps its 250 to RCPT");
        result.Recipients[1].Reply!.Code.Should().Be(450);
        proxy.CountLines($"RCPT TO:<{recipient}>").Should().Be(1, proxy.ClientTranscript);
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(3, proxy.ClientTranscript);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail, 0)).Should().Be(0, "the dot never reached the server, and the message was not resent");
    }

    [Fact]
    public async Task With_RetryUnknownOutcome_a_drop_after_the_final_dot_is_resent_and_the_server_has_two_copies_as_documented()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port))
            .WithStandardResilience(PeerSupport.Fast(3, o => o.Retry.RetryUnknownOutcome = true));
        var recipient = TestServers.UniqueRecipient("p18b-dot-optin");
        var mail = PeerSupport.Mail(recipient);
        proxy.DropNext(DropPoint.AfterFinalDot);

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(2);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail, 2)).Should().Be(2, "the opt-in trades a possible duplicate for delivery");
    }

    [Theory]
    [InlineData(true, 1, 2)]
    [InlineData(false, 0, 1)]
    public async Task A_DATA_connection_lost_before_MAIL_is_sent_once_more_on_a_fresh_connection_only_with_RetryOnFreshConnection(bool retryOnFresh, int copies, int attempts)
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port, o => { o.RetryOnFreshConnection = retryOnFresh; o.Session = PeerSupport.DataOnly; }));
        var recipient = TestServers.UniqueRecipient("p18b-fresh");
        var mail = PeerSupport.Mail(recipient);
        proxy.DropNext(DropPoint.BeforeNthMail);

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Attempts.Should().Be(attempts);
        if (retryOnFresh)
        {
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        }
        else
        {
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
            result.IsTransientFailure.Should().BeTrue();
        }

        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail, copies)).Should().Be(copies);
    }

    [Fact]
    public async Task A_batch_on_one_connection_cut_before_its_second_transaction_delivers_every_message_exactly_once()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port, o => { o.MaxConnections = 1; o.Session = PeerSupport.DataOnly; }));
        var recipients = Enumerable.Range(0, 4).Select(i => TestServers.UniqueRecipient($"p18b-cut{i}")).ToArray();
        var mails = recipients.Select(r => PeerSupport.Mail(r)).ToArray();
        proxy.DropNext(DropPoint.BeforeNthMail, 2);

        var results = await sender.SendBatchAsync(mails.Select(m => m.Message)).WaitAsync(PeerSupport.Guard);

        // The first message's end of data reached the server before the cut: Accepted, or Unknown when its reply was cut.
        results[0].Outcome.Should().BeOneOf(SmtpSendOutcome.Accepted, SmtpSendOutcome.Unknown);
        results[0].Attempts.Should().Be(1);
        results.Skip(1).Select(r => r.Outcome).Should().AllBeEquivalentTo(SmtpSendOutcome.Accepted, string.Join("\n", results));
        results.Max(r => r.Attempts).Should().BeLessThanOrEqualTo(2);

        for (var i = 0; i < mails.Length; i++)
        {
            (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipients[i], mails[i])).Should().Be(1, recipients[i]);
        }
    }

    public static TheoryData<string> ContentKinds => ["bytes", "sequence", "seekable stream at an offset", "writer", "forward-only stream"];

    [Theory]
    [MemberData(nameof(ContentKinds))]
    public async Task A_pipeline_retry_after_a_connection_lost_before_MAIL_sends_the_same_content(string kind)
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port, o => { o.RetryOnFreshConnection = false; o.Session = PeerSupport.DataOnly; }))
            .WithStandardResilience(PeerSupport.Fast(2));
        var recipient = TestServers.UniqueRecipient("p18b-replay");
        var mail = PeerSupport.Mail(recipient);
        var message = Content(kind, mail);
        proxy.DropNext(DropPoint.BeforeNthMail);

        var result = await sender.SendAsync(message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(2);
        (await PeerSupport.StoredAsync(recipient, mail)).Should().Equal(mail.Content);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task A_forward_only_stream_already_sent_to_one_recipient_cannot_be_replayed_for_the_450_one_and_the_merged_result_says_who_has_it()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(PeerSupport.Fast(3));
        var recipient = TestServers.UniqueRecipient("p18b-fwd");
        var mail = PeerSupport.Mail(recipient, PeerSupport.TempFail);

        var result = await sender.SendAsync(SmtpMessage.FromStream(mail.Envelope, new Forward(mail.Content))).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Recipients.Select(r => r.Reply?.Code).Should().Equal(250, 450);
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(1, "ContentNotReplayable is permanent: nothing more is sent");
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    private static SmtpMessage Content(string kind, PeerMail mail)
    {
        switch (kind)
        {
            case "bytes":
                return mail.Message;
            case "sequence":
                return SmtpMessage.FromSequence(mail.Envelope, ReadOnlySequenceFactory.Chunked(mail.Content, Enumerable.Repeat(37, mail.Content.Length / 37)));
            case "seekable stream at an offset":
                var prefix = Encoding.ASCII.GetBytes("IGNORED PREFIX");
                var stream = new MemoryStream([.. prefix, .. mail.Content]) { Position = prefix.Length };
                return SmtpMessage.FromStream(mail.Envelope, stream);
            case "writer":
                return SmtpMessage.FromWriter(mail.Envelope, async (target, token) => await target.WriteAsync(mail.Content, token));
            default:
                return SmtpMessage.FromStream(mail.Envelope, new Forward(mail.Content));
        }
    }

    private sealed class Forward(byte[] content) : ForwardOnlyStream
    {
        private int _position;

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(count, content.Length - _position);
            content.AsSpan(_position, n).CopyTo(buffer.AsSpan(offset, n));
            _position += n;
            return n;
        }
    }
}
