using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>Breaker 20: the seed's members as an application calls them, against the real servers; long recipient lists; a session closed under a batch.</summary>
public sealed class Breaker20ProbeTests
{
    private static async Task<AsyncSmtpSession> OpenAsync(int port, SmtpSessionOptions? options = null)
    {
        TestServers.RequireListening(port);
        var session = new AsyncSmtpSession(options);
        await session.ConnectAsync(TestServers.Host, port);
        (await session.HelloAsync("client.example.test")).Code.Should().Be(250);
        return session;
    }

    [Theory]
    [InlineData(2525)]
    [InlineData(2526)]
    [InlineData(2527)]
    public async Task Command_by_command_negative_replies_are_returned_and_the_session_goes_on(int port)
    {
        await using var session = await OpenAsync(port);
        var good = TestServers.UniqueRecipient();

        var reply = await session.RcptToAsync(good);
        reply.IsPermanentNegative.Should().BeTrue(reply.ToString());
        session.LastReply.Should().BeSameAs(reply);

        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
        reply = await session.MailFromAsync("sender@example.test");
        reply.IsPermanentNegative.Should().BeTrue("nested MAIL: " + reply);

        reply = await session.RcptToAsync("unknown-b20@example.test");
        reply.Code.Should().Be(550);
        reply = await session.RcptToAsync("tempfail@example.test");
        reply.Code.Should().Be(450, reply.ToString());
        reply.IsTransientNegative.Should().BeTrue();

        reply = await session.DataAsync();
        reply.IsNegative.Should().BeTrue("DATA with no valid recipient: " + reply);
        session.IsConnected.Should().BeTrue();

        (await session.RsetAsync()).Code.Should().Be(250);
        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
        (await session.RcptToAsync(good)).Code.Should().Be(250);
        (await session.DataAsync()).Code.Should().Be(354);
        await session.WriteMessageDataAsync("Subject: b20\n\n.leading dot\r"u8.ToArray());
        await session.WriteMessageDataAsync("\nlast line without end"u8.ToArray());
        reply = await session.EndMessageDataAsync();
        reply.Code.Should().Be(250, reply.ToString());
        (await session.NoopAsync()).Code.Should().Be(250);
        (await session.QuitAsync()).Code.Should().Be(221);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task Postfix_recipient_limit_452_is_returned_and_rset_recovers()
    {
        await using var session = await OpenAsync(TestServers.PostfixPort);
        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
        for (var i = 0; i < 1000; i++)
        {
            (await session.RcptToAsync($"r{i}-{Guid.NewGuid():N}@example.test")).Code.Should().Be(250);
        }

        var reply = await session.RcptToAsync(TestServers.UniqueRecipient());
        reply.Code.Should().Be(452, reply.ToString());
        reply.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(4, 5, 3));
        (await session.RsetAsync()).Code.Should().Be(250);
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    [Fact]
    public async Task Three_hundred_recipients_to_aiosmtpd_report_exactly_which_were_accepted()
    {
        await using var session = await OpenAsync(TestServers.AiosmtpdPort);
        var recipients = Enumerable.Range(0, 300).Select(i => i % 3 == 1 ? $"unknown{i}@example.test" : i == 7 ? "tempfail@example.test" : TestServers.UniqueRecipient()).ToArray();
        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipients), "Subject: many\r\n\r\nx\r\n"u8.ToArray());
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Recipients.Should().HaveCount(300);
        for (var i = 0; i < 300; i++)
        {
            result.Recipients[i].Recipient.Address.Should().Be(recipients[i]);
            result.Recipients[i].Accepted.Should().Be(i % 3 != 1 && i != 7, $"recipient {i}");
        }
    }

    [Theory]
    [InlineData(2525, true)]
    [InlineData(2525, false)]
    [InlineData(2527, false)]
    public async Task Session_disposed_while_a_batch_is_under_way(int port, bool dispose)
    {
        var session = await OpenAsync(port);
        var writerStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), "Subject: first\r\n\r\nx\r\n"u8.ToArray());
        var held = SmtpMessage.FromWriter(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), async (stream, ct) =>
        {
            writerStarted.TrySetResult();
            await gate.Task.WaitAsync(ct);
            await stream.WriteAsync("Subject: held\r\n\r\nx\r\n"u8.ToArray(), ct);
        });
        var rest = Enumerable.Range(0, 3).Select(i => SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), "Subject: rest\r\n\r\nx\r\n"u8.ToArray()));
        var batch = session.SendBatchAsync([first, held, .. rest]);
        await writerStarted.Task.WaitAsync(TimeSpan.FromMinutes(1));
        if (dispose)
        {
            session.Dispose();
        }
        else
        {
            await session.DisconnectAsync();
        }

        gate.SetResult();
        IReadOnlyList<SmtpSendResult>? results = null;
        Exception? thrown = null;
        try
        {
            results = await batch;
        }
        catch (Exception ex)
        {
            thrown = ex;
        }

        thrown.Should().BeNull();
        results.Should().HaveCount(5);
        results![0].Outcome.Should().BeOneOf(SmtpSendOutcome.Accepted, SmtpSendOutcome.Unknown);
        if (results[0].Outcome == SmtpSendOutcome.Unknown)
        {
            // Its end of data was written: the reason given must not say that nothing of it was delivered.
            results[0].Exception!.Message.Should().NotContain("nothing of it was delivered", results[0].ToString());
        }

        results![1].Outcome.Should().Be(SmtpSendOutcome.NotSent, results[1].ToString() + " / " + results[1].Exception);
        results.Skip(2).Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.NotSent);
    }
}
