using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>
/// Breaker 20: Exim counts each RSET after a refused transaction as a "nonmail" command and, past
/// smtp_accept_max_nonmail (10 by default), answers the RSET with "554 Too many nonmail commands" and closes the
/// connection without reading what follows. The transactions pipelined after that RSET were never processed: NotSent
/// (retried by the pool on a fresh connection), never Unknown (which nobody retries: a message lost).
/// </summary>
public sealed class Breaker20EximNonmailLimitTests
{
    [Fact]
    public async Task A_batch_with_many_refused_transactions_reports_the_ones_after_Exims_drop_as_NotSent()
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.HelloAsync("client.example.test");
        var messages = Enumerable.Range(0, 40)
            .Select(i => SmtpMessage.FromBytes(
                new SmtpEnvelope("sender@example.test", i % 2 == 0 ? $"unknown{i}@example.test" : TestServers.UniqueRecipient()),
                "Subject: nonmail\r\n\r\nx\r\n"u8.ToArray()))
            .ToList();

        var results = await session.SendBatchAsync(messages);

        results.Should().HaveCount(40);
        results.Should().NotContain(r => r.Outcome == SmtpSendOutcome.Unknown, string.Join("\n", results));
        for (var i = 0; i < 40; i++)
        {
            if (results[i].Outcome == SmtpSendOutcome.NotSent)
            {
                results[i].Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable, results[i].ToString());
                results[i].IsTransientFailure.Should().BeTrue();
            }
            else
            {
                results[i].Outcome.Should().Be(i % 2 == 0 ? SmtpSendOutcome.Refused : SmtpSendOutcome.Accepted, $"message {i}: {results[i]}");
            }
        }

        results.Should().Contain(r => r.Outcome == SmtpSendOutcome.NotSent, "Exim drops the connection after 11 counted RSETs");
    }

    [Fact]
    public async Task Replies_that_came_before_Exim_reset_the_connection_under_a_write_are_read()
    {
        // Written for: each 256 KiB chunk of a transaction with no valid recipient got 503, a protocol error to Exim, which
        // reset the connection after three (smtp_max_synprot_errors) while the client still wrote the chunks that followed.
        // Since a message of several chunks waits for its RCPT replies (EximRefusedChunkedMessageTests), no chunk goes to
        // such a transaction: Exim now ends this batch at its nonmail limit (the RSET after each refused transaction), and
        // the write that finds the connection reset is covered by Breaker20WriteResetTests.
        TestServers.RequireListening(TestServers.EximPort);
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.HelloAsync("client.example.test");
        var body = System.Text.Encoding.ASCII.GetBytes("Subject: big\r\n\r\n" + new string('x', 300_000) + "\r\n");
        var messages = Enumerable.Range(0, 40)
            .Select(i => SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", i % 2 == 0 ? $"unknown{i}@example.test" : TestServers.UniqueRecipient()), body))
            .ToList();

        var results = await session.SendBatchAsync(messages);

        results.Should().HaveCount(40);
        results[0].Outcome.Should().Be(SmtpSendOutcome.Refused, "its replies came before the reset: " + results[0]);
        results[1].Outcome.Should().Be(SmtpSendOutcome.Accepted, "its replies came before the reset: " + results[1]);
        results.Should().NotContain(r => r.Outcome == SmtpSendOutcome.Unknown, "no chunk went to a transaction without recipients: " + string.Join("\n", results));
        session.IsConnected.Should().BeFalse();
    }
}
