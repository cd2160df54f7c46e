using MailPipe.IntegrationTests.Support;
using Polly;
using RecordingProxy = MailPipe.Resilience.Tests.Support.FaultProxy;

namespace MailPipe.Resilience.Tests.Peer;

/// <summary>
/// What a retry resends, from the README: "each retry goes only to the recipients still to do: the ones refused with a
/// 4yz reply ... never again to a recipient that already accepted", one merged result with each recipient's deciding
/// reply and <c>Attempts</c>; checked on the wire (a recording proxy) and in each real server's store.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PeerRetryScopeTests
{
    [Theory]
    [InlineData(PeerServer.Postfix, 0)]
    [InlineData(PeerServer.Postfix, 2)]
    [InlineData(PeerServer.Exim, 0)]
    [InlineData(PeerServer.Exim, 2)]
    [InlineData(PeerServer.Aiosmtpd, 0)]
    [InlineData(PeerServer.Aiosmtpd, 2)]
    public async Task Each_retry_goes_only_to_the_450_recipient_and_the_others_get_one_copy(PeerServer server, int retries)
    {
        TestServers.RequireListening(PeerSupport.Port(server));
        await using var proxy = new RecordingProxy(PeerSupport.Port(server));
        string[] unique = [TestServers.UniqueRecipient("p18b-scope-a"), TestServers.UniqueRecipient("p18b-scope-b")];
        var mail = PeerSupport.Mail(unique[0], PeerSupport.TempFail, unique[1]);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(PeerSupport.Fast(retries));

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(retries + 1);
        result.Recipients.Select(r => r.Recipient.Address).Should().Equal(unique[0], PeerSupport.TempFail, unique[1]);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 450, 250);
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(retries + 1, proxy.ClientTranscript);
        proxy.CountLines($"RCPT TO:<{unique[0]}>").Should().Be(1, proxy.ClientTranscript);
        proxy.CountLines($"RCPT TO:<{unique[1]}>").Should().Be(1, proxy.ClientTranscript);
        (await PeerSupport.CopiesAsync(server, unique[0], mail)).Should().Be(1);
        (await PeerSupport.CopiesAsync(server, unique[1], mail)).Should().Be(1);
    }

    [Fact]
    public async Task A_message_whose_only_recipient_answers_450_every_time_is_Refused_transiently_after_every_attempt()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        var mail = PeerSupport.Mail(PeerSupport.TempFail);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(PeerSupport.Fast(2));

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.IsTransientFailure.Should().BeTrue("a 450 may succeed later");
        result.Attempts.Should().Be(3);
        result.Recipients.Single().Reply!.Code.Should().Be(450);
    }

    [Fact]
    public async Task A_550_recipient_is_asked_once_a_450_recipient_again_and_the_merged_result_keeps_each_deciding_reply()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        var unique = TestServers.UniqueRecipient("p18b-mixed");
        const string Unknown = "nosuch-p18b@example.test";
        var mail = PeerSupport.Mail(PeerSupport.TempFail, Unknown, unique);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(PeerSupport.Fast(1));

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(2);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(450, 550, 250);
        result.RefusedRecipients.Select(r => r.Recipient.Address).Should().Equal(PeerSupport.TempFail, Unknown);
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal(unique);
        proxy.CountLines($"RCPT TO:<{Unknown}>").Should().Be(1, proxy.ClientTranscript);
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(2, proxy.ClientTranscript);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, unique, mail)).Should().Be(1);
    }

    [Fact]
    public async Task SendWithRetryAsync_on_the_plain_pooled_sender_retries_only_the_remaining_recipient()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        var unique = TestServers.UniqueRecipient("p18b-sendwithretry");
        var mail = PeerSupport.Mail(PeerSupport.TempFail, unique);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port));
        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { MaxRetryAttempts = 1, Delay = TimeSpan.Zero, ThrottledDelay = TimeSpan.Zero });

        var result = await sender.SendWithRetryAsync(mail.Message, pipeline).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(2);
        proxy.CountLines($"RCPT TO:<{unique}>").Should().Be(1, proxy.ClientTranscript);
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(2, proxy.ClientTranscript);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, unique, mail)).Should().Be(1);
    }

    [Fact]
    public async Task Around_a_bare_session_the_delegate_gets_the_whole_envelope_then_only_the_recipient_still_to_do()
    {
        TestServers.RequireListening(TestServers.EximPort);
        var unique = TestServers.UniqueRecipient("p18b-bare");
        var mail = PeerSupport.Mail(unique, PeerSupport.TempFail);
        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { MaxRetryAttempts = 2, Delay = TimeSpan.Zero, ThrottledDelay = TimeSpan.Zero });
        await using var session = new AsyncSmtpSession();
        var envelopes = new List<string[]>();

        var result = await pipeline.SendWithRetryAsync(mail.Message, async (attempt, token) =>
        {
            envelopes.Add([.. attempt.Envelope.Recipients.Select(r => r.Address)]);
            if (!session.IsConnected)
            {
                await session.ConnectAsync(TestServers.Host, TestServers.EximPort, SmtpTlsMode.None, "peer18b.example.test", token);
            }

            return await session.SendAsync(attempt, token);
        }).WaitAsync(PeerSupport.Guard);

        envelopes.Should().HaveCount(3);
        envelopes[0].Should().Equal(unique, PeerSupport.TempFail);
        envelopes[1].Should().Equal(PeerSupport.TempFail);
        envelopes[2].Should().Equal(PeerSupport.TempFail);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(3);
        result.Envelope.Recipients.Select(r => r.Address).Should().Equal(unique, PeerSupport.TempFail);
        (await PeerSupport.CopiesAsync(PeerServer.Exim, unique, mail)).Should().Be(1);
    }

    [Fact]
    public async Task A_451_to_the_end_of_data_leaves_every_recipient_to_do_and_the_retry_asks_them_all_again()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        var unique = TestServers.UniqueRecipient("p18b-eodtemp");
        var mail = PeerSupport.MailFrom("eod-tempfail@example.test", unique, PeerSupport.TempFail);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(PeerSupport.Fast(1));

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        // The 451 to the end of data refused the message for every recipient: both are still to do, and asked again.
        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.Attempts.Should().Be(2);
        result.IsTransientFailure.Should().BeTrue();
        proxy.CountLines($"RCPT TO:<{unique}>").Should().Be(2, proxy.ClientTranscript);
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(2, proxy.ClientTranscript);
        proxy.CountLines("Message-Id: " + mail.MessageId).Should().Be(2);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, unique, mail, 0)).Should().Be(0);
    }
}
