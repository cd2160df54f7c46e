using MailPipe.IntegrationTests.Support;
using PoolProxy = MailPipe.Tests.Pooling.FaultProxy;
using RecordingProxy = MailPipe.Resilience.Tests.Support.FaultProxy;

namespace MailPipe.Resilience.Tests.Peer;

/// <summary>
/// The resilient sender's disposal during retries and its batch overload, around the real pooled sender and Postfix
/// (the README's "Disposing the resilient sender ends the messages waiting for a retry at once (ObjectDisposedException,
/// or the merged result when an attempt had written its end of data ...)").
/// </summary>
[Trait("Category", "Integration")]
public sealed class PeerDisposalAndBatchTests
{
    private static ResilientSmtpSender Resilient(int port, TaskCompletionSource<bool> retrying, Action<SmtpSenderOptions>? pool = null) =>
        (ResilientSmtpSender)new SmtpSender(PeerSupport.Options(port, pool)).WithStandardResilience(o =>
        {
            o.Retry.Delay = TimeSpan.FromMinutes(10);
            o.Retry.OnRetry = _ =>
            {
                retrying.TrySetResult(true);
                return ValueTask.CompletedTask;
            };
        });

    private static async Task DisposeAsync(ResilientSmtpSender sender, bool synchronously)
    {
        if (synchronously)
        {
            sender.Dispose();
        }
        else
        {
            await sender.DisposeAsync().AsTask().WaitAsync(PeerSupport.Guard);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Disposed_during_the_delay_after_a_refused_connect_the_caller_gets_ObjectDisposedException_at_once(bool synchronously)
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await proxy.RefuseAsync();
        var retrying = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var sender = Resilient(proxy.Port, retrying);

        var send = sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-dispose")).Message);
        await retrying.Task.WaitAsync(PeerSupport.Guard);
        await DisposeAsync(sender, synchronously);
        var act = () => send.WaitAsync(PeerSupport.Guard);

        await act.Should().ThrowAsync<ObjectDisposedException>();
        await sender.DisposeAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Disposed_during_the_delay_after_a_partial_acceptance_the_caller_gets_the_merged_result_and_nothing_more_is_sent(bool synchronously)
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        var retrying = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var sender = Resilient(proxy.Port, retrying);
        var recipient = TestServers.UniqueRecipient("p18b-dispose-partial");
        var mail = PeerSupport.Mail(PeerSupport.TempFail, recipient);

        var send = sender.SendAsync(mail.Message);
        await retrying.Task.WaitAsync(PeerSupport.Guard);
        await DisposeAsync(sender, synchronously);
        var result = await send.WaitAsync(PeerSupport.Guard);
        await sender.DisposeAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal(recipient);
        result.Recipients[0].Reply!.Code.Should().Be(450);
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task After_disposal_SendAsync_and_SendBatchAsync_throw_ObjectDisposedException_and_the_pooled_sender_is_disposed_too()
    {
        PeerSupport.RequireServers();
        var sender = (ResilientSmtpSender)new SmtpSender(PeerSupport.Options(TestServers.PostfixPort)).WithStandardResilience();
        (await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-before-dispose")).Message).WaitAsync(PeerSupport.Guard)).IsAccepted.Should().BeTrue();

        await sender.DisposeAsync();

        var mail = PeerSupport.Mail(TestServers.UniqueRecipient("p18b-after-dispose"));
        await FluentActions.Awaiting(() => sender.SendAsync(mail.Message)).Should().ThrowAsync<ObjectDisposedException>();
        await FluentActions.Awaiting(() => sender.SendBatchAsync([mail.Message])).Should().ThrowAsync<ObjectDisposedException>();
        await FluentActions.Awaiting(() => sender.InnerSender.SendAsync(mail.Message)).Should().ThrowAsync<ObjectDisposedException>();
    }

    [Fact]
    public async Task Disposed_while_an_attempt_waits_for_the_reply_to_its_final_dot_the_caller_gets_Unknown_and_no_retry()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort) { HoldRepliesAfterEndOfData = _ => true };
        var sender = (ResilientSmtpSender)new SmtpSender(PeerSupport.Options(proxy.Port, o => { o.DisposeTimeout = TimeSpan.FromMilliseconds(200); o.Session = PeerSupport.DataOnly; }))
            .WithStandardResilience(PeerSupport.Fast(3));
        var recipient = TestServers.UniqueRecipient("p18b-dispose-dot");
        var mail = PeerSupport.Mail(recipient);

        var send = sender.SendAsync(mail.Message);
        await proxy.EndOfDataHeld.Task.WaitAsync(PeerSupport.Guard);
        await sender.DisposeAsync().AsTask().WaitAsync(PeerSupport.Guard);
        var result = await send.WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Attempts.Should().Be(1);
        proxy.CountLines($"RCPT TO:<{recipient}>").Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task A_batch_returns_one_result_per_message_in_order_each_retried_only_as_its_own_replies_say()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(PeerSupport.Fast(1));
        var u = Enumerable.Range(0, 4).Select(i => TestServers.UniqueRecipient($"p18b-batch{i}")).ToArray();
        PeerMail[] mails =
        [
            PeerSupport.Mail(PeerSupport.TempFail, u[0]),
            PeerSupport.Mail(u[1]),
            PeerSupport.Mail("nosuch-p18b@example.test"),
            PeerSupport.MailFrom("eod-reject@example.test", u[2]),
            PeerSupport.MailFrom("eod-tempfail@example.test", u[3]),
        ];

        var results = await sender.SendBatchAsync(mails.Select(m => m.Message)).WaitAsync(PeerSupport.Guard);

        results.Select(r => r.Envelope).Should().Equal(mails.Select(m => m.Envelope));
        results.Select(r => r.Outcome).Should().Equal(
            SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused, SmtpSendOutcome.Refused, SmtpSendOutcome.Refused);
        results.Select(r => r.Attempts).Should().Equal(2, 1, 1, 1, 2);
        results[3].FinalReply!.Code.Should().Be(554);
        results[4].FinalReply!.Code.Should().Be(451);
        proxy.CountLines("RCPT TO:<nosuch-p18b@example.test>").Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, u[0], mails[0])).Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, u[1], mails[1])).Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, u[2], mails[3], 0)).Should().Be(0);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, u[3], mails[4], 0)).Should().Be(0);
    }

    [Fact]
    public async Task An_empty_batch_returns_no_results_and_opens_no_connection()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience();

        var results = await sender.SendBatchAsync([]).WaitAsync(PeerSupport.Guard);

        results.Should().BeEmpty();
        proxy.Connections.Should().Be(0);
    }

    [Fact]
    public async Task A_batch_of_many_messages_over_two_connections_delivers_each_once_and_keeps_each_result_with_its_message()
    {
        PeerSupport.RequireServers();
        await using var sender = new SmtpSender(PeerSupport.Options(TestServers.PostfixPort, o => { o.MaxConnections = 2; o.MaxBatchSize = 3; }))
            .WithStandardResilience(PeerSupport.Fast(1));
        var u = Enumerable.Range(0, 10).Select(i => TestServers.UniqueRecipient($"p18b-many{i}")).ToArray();
        var mails = u.Select((r, i) => i % 2 == 0 ? PeerSupport.Mail(r, PeerSupport.TempFail) : PeerSupport.Mail(r)).ToArray();

        var results = await sender.SendBatchAsync(mails.Select(m => m.Message)).WaitAsync(PeerSupport.Guard);

        results.Should().HaveCount(10);
        for (var i = 0; i < u.Length; i++)
        {
            results[i].Envelope.Should().BeSameAs(mails[i].Envelope);
            results[i].Outcome.Should().Be(SmtpSendOutcome.Accepted);
            results[i].Attempts.Should().Be(i % 2 == 0 ? 2 : 1);
            (await PeerSupport.CopiesAsync(PeerServer.Postfix, u[i], mails[i])).Should().Be(1, u[i]);
        }
    }

    [Fact]
    public async Task A_batch_cancelled_during_a_retry_delay_throws_SmtpBatchCanceledException_with_every_message_s_result()
    {
        // One connection: the plain message's result comes before the other's first attempt ends (replies in order), so
        // the cancellation in that message's retry delay finds the first one decided.
        PeerSupport.RequireServers();
        using var cts = new CancellationTokenSource();
        await using var sender = new SmtpSender(PeerSupport.Options(TestServers.PostfixPort, o => o.MaxConnections = 1)).WithStandardResilience(o =>
        {
            o.Retry.Delay = TimeSpan.FromMinutes(10);
            PeerSupport.OnRetry(o, 1, () => cts.CancelAsync());
        });
        string[] u = [TestServers.UniqueRecipient("p18b-bcancel-a"), TestServers.UniqueRecipient("p18b-bcancel-b")];
        PeerMail[] mails = [PeerSupport.Mail(u[0]), PeerSupport.Mail(u[1], PeerSupport.TempFail)];

        var act = () => sender.SendBatchAsync(mails.Select(m => m.Message), cts.Token).WaitAsync(PeerSupport.Guard);

        var thrown = await act.Should().ThrowAsync<SmtpBatchCanceledException>();
        thrown.Which.Results.Should().HaveCount(2);
        thrown.Which.Results[0].Outcome.Should().Be(SmtpSendOutcome.Accepted);
        thrown.Which.Results[1].AcceptedRecipients.Select(r => r.Address).Should().Equal(u[1]);
        thrown.Which.Results[1].Recipients[1].Reply!.Code.Should().Be(450);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, u[0], mails[0])).Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, u[1], mails[1])).Should().Be(1);
    }
}
