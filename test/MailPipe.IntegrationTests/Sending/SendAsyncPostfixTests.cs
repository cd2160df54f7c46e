using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.Tests.Shared;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>Pipelining, chunking and the envelope API against the real Postfix (which offers PIPELINING and CHUNKING).</summary>
public sealed class SendAsyncPostfixTests
{
    public SendAsyncPostfixTests() => TestServers.RequireListening(TestServers.PostfixPort);

    private static async Task<AsyncSmtpSession> OpenAsync(bool chunking = true, bool pipelining = true)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking, UsePipelining = pipelining });
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        (await session.HelloAsync("client.example.test")).Code.Should().Be(250);
        return session;
    }

    [Theory]
    [MemberData(nameof(CorpusModes))]
    public async Task Corpus_is_delivered_byte_exact(string name, bool chunking, bool pipelining)
    {
        var message = Corpus.Read(name);
        var recipient = TestServers.UniqueRecipient();
        await using var session = await OpenAsync(chunking, pipelining);

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipient), message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.FinalReply!.Code.Should().Be(250);
        result.Recipients.Should().ContainSingle().Which.Accepted.Should().BeTrue();
        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        Maildir.StripTraceHeaders(stored).Should().Equal(Corpus.NormalizeLineEnds(message));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Streamed_content_is_delivered_byte_exact(bool chunking)
    {
        var message = Corpus.Read("09-multipart-5mib.eml");
        var recipient = TestServers.UniqueRecipient();
        await using var session = await OpenAsync(chunking);
        await using var stream = new MemoryStream(message);

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipient), stream);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        Maildir.StripTraceHeaders(stored).Should().Equal(Corpus.NormalizeLineEnds(message));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Mixed_recipients_report_exactly_their_replies(bool chunking)
    {
        var good = TestServers.UniqueRecipient();
        await using var session = await OpenAsync(chunking);
        var envelope = new SmtpEnvelope("sender@example.test", good, "unknown-x@example.test", "tempfail@example.test");

        var result = await session.SendAsync(envelope, Encoding.ASCII.GetBytes("Subject: mixed\r\n\r\nbody\r\n"));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 550, 450);
        result.Recipients[1].Reply!.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(5, 1, 1));
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal(good);
        await Maildir.WaitForPostfixAsync(good);
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task No_recipient_accepted_is_refused_and_the_session_stays_usable(bool chunking)
    {
        await using var session = await OpenAsync(chunking);
        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", "unknown-a@example.test", "nosuch-b@example.test"), "Subject: x\r\n\r\ny\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.Recipients.Should().OnlyContain(r => r.Reply!.Code == 550);
        result.IsTransientFailure.Should().BeFalse();

        var recipient = TestServers.UniqueRecipient();
        var next = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipient), "Subject: after\r\n\r\nok\r\n"u8.ToArray());
        next.Outcome.Should().Be(SmtpSendOutcome.Accepted, next.ToString());
    }

    [Theory]
    [InlineData(true, "eod-reject@example.test", 554)]
    [InlineData(false, "eod-reject@example.test", 554)]
    [InlineData(true, "eod-tempfail@example.test", 451)]
    public async Task Refusal_after_the_data_is_refused_with_the_final_reply(bool chunking, string sender, int code)
    {
        await using var session = await OpenAsync(chunking);
        var result = await session.SendAsync(new SmtpEnvelope(sender, TestServers.UniqueRecipient()), "Subject: x\r\n\r\ny\r\n"u8.ToArray());
        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.FinalReply!.Code.Should().Be(code);
        result.IsTransientFailure.Should().Be(code / 100 == 4);
    }

    [Fact]
    public async Task Message_over_the_size_limit_is_not_sent()
    {
        await using var session = await OpenAsync();
        var big = new byte[10485760 + 1];
        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), big);
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        result.MailReply.Should().BeNull("nothing may be sent");
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    [Fact]
    public async Task Declared_size_over_the_limit_is_refused_by_the_server_when_the_check_is_bypassed()
    {
        await using var session = await OpenAsync();
        var envelope = new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()) { MailParameters = "SIZE=20000000" };
        var result = await session.SendAsync(envelope, new NonSeekable(new MemoryStream("Subject: x\r\n\r\ny\r\n"u8.ToArray())));
        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.MailReply!.Code.Should().Be(552);
    }

    [Fact]
    public async Task Smtputf8_address_is_delivered()
    {
        var recipient = $"ünï-{Guid.NewGuid():N}@例え.test";
        await using var session = await OpenAsync();
        var content = Encoding.UTF8.GetBytes("Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCafé ☕\r\n");
        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipient), content);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        Maildir.StripTraceHeaders(stored).Should().Equal(content);
    }

    [Fact]
    public async Task Two_thousand_recipients_complete_without_deadlock_and_each_is_reported()
    {
        var recipients = Enumerable.Range(0, 2000).Select(i => $"r{i}-{Guid.NewGuid():N}@example.test").ToArray();
        await using var session = await OpenAsync();
        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipients), "Subject: many\r\n\r\nhello\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Recipients.Should().HaveCount(2000);
        result.Recipients.Take(1000).Should().OnlyContain(r => r.Reply!.Code == 250);
        result.Recipients.Skip(1000).Should().OnlyContain(r => r.Reply!.Code == 452, "Postfix takes 1000 recipients per transaction");
        await Maildir.WaitForPostfixAsync(recipients[999]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Batch_on_one_connection_gives_every_message_its_own_result(bool chunking)
    {
        await using var session = await OpenAsync(chunking);
        var recipients = Enumerable.Range(0, 25).Select(_ => TestServers.UniqueRecipient()).ToArray();
        var messages = recipients.Select((r, i) => SmtpMessage.FromBytes(
            new SmtpEnvelope(i == 7 ? "eod-reject@example.test" : "sender@example.test", i == 3 ? "unknown-z@example.test" : r),
            Encoding.ASCII.GetBytes($"Subject: batch {i}\r\n\r\nmessage {i}\r\n")));

        var results = await session.SendBatchAsync(messages);

        results.Should().HaveCount(25);
        for (var i = 0; i < 25; i++)
        {
            var expected = i is 3 or 7 ? SmtpSendOutcome.Refused : SmtpSendOutcome.Accepted;
            results[i].Outcome.Should().Be(expected, $"message {i}: {results[i]}");
        }

        var stored = (await Maildir.WaitForPostfixAsync(recipients[24]))[0];
        Maildir.StripTraceHeaders(stored).Should().Equal(Encoding.ASCII.GetBytes("Subject: batch 24\r\n\r\nmessage 24\r\n"));
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    public static TheoryData<string, bool, bool> CorpusModes
    {
        get
        {
            var data = new TheoryData<string, bool, bool>();
            foreach (var name in Corpus.Files.Select(f => Path.GetFileName(f)!))
            {
                data.Add(name, true, true);
                data.Add(name, false, true);
            }

            data.Add("02-dot-lines.eml", false, false);
            data.Add("04-lf-only.eml", true, false);
            return data;
        }
    }

    /// <summary>Hides the length so that no SIZE is declared from it.</summary>
    private sealed class NonSeekable(Stream inner) : ForwardOnlyStream
    {
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    }
}
