using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>
/// Breaker13 (session 9): every kind of outcome against the real servers, one after another on ONE session, in each
/// framing (DATA / BDAT, pipelined or not): each result says exactly which recipients were accepted and whether the
/// message was accepted or refused (transiently or not), and what a refusal leaves behind never spoils the next
/// transaction on the same connection.
/// </summary>
public sealed class Breaker13OutcomeMatrixTests
{
    public static TheoryData<string, bool, bool> Modes => new()
    {
        { "postfix", true, true },
        { "postfix", true, false },
        { "postfix", false, true },
        { "postfix", false, false },
        { "exim", true, true },
        { "exim", true, false },
        { "exim", false, false },
        { "aiosmtpd", false, false },
    };

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Each_outcome_is_told_truthfully_and_the_session_goes_on(string server, bool pipelining, bool chunking)
    {
        var port = server switch { "postfix" => TestServers.PostfixPort, "exim" => TestServers.EximPort, _ => TestServers.AiosmtpdPort };
        TestServers.RequireListening(port);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UsePipelining = pipelining, UseChunking = chunking });
        (await session.ConnectAsync(TestServers.Host, port, SmtpTlsMode.None, "client.example.test")).Code.Should().Be(250);
        (session.Capabilities.SupportsChunking && chunking).Should().Be(chunking, "the mode asks for a server that offers CHUNKING");
        var good = new List<string>();

        // Accepted, with one recipient refused permanently and one transiently.
        var ok1 = Unique(good);
        var result = await SendAsync(session, "sender@example.test", ok1, "unknown-b13@example.test", "tempfail@example.test");
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal(ok1);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 550, 450);
        result.FinalReply!.Code.Should().Be(250);

        // Every recipient refused permanently: Refused, not transient; no content sent.
        result = await SendAsync(session, "sender@example.test", "unknown-b13a@example.test", "nosuch-b13@example.test");
        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.IsTransientFailure.Should().BeFalse(result.ToString());
        result.AcceptedRecipients.Should().BeEmpty();
        result.Exception.Should().BeNull();

        // Accepted again right after.
        result = await SendAsync(session, "sender@example.test", Unique(good));
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());

        // Every recipient refused transiently: Refused, transient.
        result = await SendAsync(session, "sender@example.test", "tempfail@example.test");
        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.IsTransientFailure.Should().BeTrue(result.ToString());

        // Refused at the end of data, permanently, then transiently; the recipient was accepted first.
        result = await SendAsync(session, "eod-reject@example.test", Unique([]));
        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.FinalReply!.Code.Should().Be(554, result.ToString());
        result.IsTransientFailure.Should().BeFalse(result.ToString());
        result.Recipients.Should().OnlyContain(r => r.Accepted, "the refusal came at the end of data");

        result = await SendAsync(session, "eod-tempfail@example.test", Unique([]));
        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.FinalReply!.Code.Should().Be(451, result.ToString());
        result.IsTransientFailure.Should().BeTrue(result.ToString());

        // And the connection still delivers, to the right recipients only.
        result = await SendAsync(session, "sender@example.test", Unique(good), "unknown-b13c@example.test");
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
        (await session.QuitAsync()).Code.Should().Be(221);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_batch_of_every_outcome_gets_one_truthful_result_per_message(string server, bool pipelining, bool chunking)
    {
        var port = server switch { "postfix" => TestServers.PostfixPort, "exim" => TestServers.EximPort, _ => TestServers.AiosmtpdPort };
        TestServers.RequireListening(port);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UsePipelining = pipelining, UseChunking = chunking });
        (await session.ConnectAsync(TestServers.Host, port, SmtpTlsMode.None, "client.example.test")).Code.Should().Be(250);
        var good = Enumerable.Range(0, 4).Select(_ => TestServers.UniqueRecipient("b13")).ToArray();
        (string From, string[] To, SmtpSendOutcome Outcome, bool Transient)[] plan =
        [
            ("sender@example.test", [good[0], "unknown-b13e@example.test"], SmtpSendOutcome.Accepted, false),
            ("sender@example.test", ["unknown-b13f@example.test"], SmtpSendOutcome.Refused, false),
            ("eod-reject@example.test", [good[1]], SmtpSendOutcome.Refused, false),
            ("sender@example.test", ["tempfail@example.test"], SmtpSendOutcome.Refused, true),
            ("eod-tempfail@example.test", [good[2]], SmtpSendOutcome.Refused, true),
            ("sender@example.test", [good[3]], SmtpSendOutcome.Accepted, false),
        ];
        var messages = plan.Select((p, i) => SmtpMessage.FromBytes(new SmtpEnvelope(p.From, p.To), Encoding.ASCII.GetBytes($"Subject: b13 batch {i}\r\n\r\nbody {i}\r\n")));

        var results = await session.SendBatchAsync(messages);

        results.Should().HaveCount(plan.Length);
        for (var i = 0; i < plan.Length; i++)
        {
            results[i].Outcome.Should().Be(plan[i].Outcome, $"message {i}: {results[i]}");
            results[i].IsTransientFailure.Should().Be(plan[i].Transient, $"message {i}: {results[i]}");
        }

        results[0].AcceptedRecipients.Select(r => r.Address).Should().Equal(good[0]);
        (await session.QuitAsync()).Code.Should().Be(221);
    }

    /// <summary>The typed DSN parameters, with characters xtext must encode, are taken by both servers that offer DSN, and SMTPUTF8 with them.</summary>
    [Theory]
    [InlineData("postfix", false)]
    [InlineData("postfix", true)]
    [InlineData("exim", false)]
    [InlineData("exim", true)]
    public async Task DSN_parameters_with_xtext_are_accepted_by_real_servers(string server, bool utf8)
    {
        var port = server == "postfix" ? TestServers.PostfixPort : TestServers.EximPort;
        TestServers.RequireListening(port);
        await using var session = new AsyncSmtpSession();
        (await session.ConnectAsync(TestServers.Host, port, SmtpTlsMode.None, "client.example.test")).Code.Should().Be(250);
        session.Capabilities.SupportsDsn.Should().BeTrue();
        var first = TestServers.UniqueRecipient("b13");
        var second = TestServers.UniqueRecipient("b13");
        var envelope = new SmtpEnvelope(utf8 ? "s\u00e9nder@example.test" : "sender@example.test",
        [
            new SmtpRecipient(first) { Notify = DsnNotify.Success | DsnNotify.Failure | DsnNotify.Delay, OriginalRecipient = "a+b=c@example.test" },
            new SmtpRecipient(second) { Notify = DsnNotify.Never, OriginalRecipient = utf8 ? "j\u00f6rg@example.test" : "plain@example.test" },
        ])
        {
            Return = DsnReturn.Headers,
            EnvelopeId = "id +=;\\ ~1",
        };

        var result = await session.SendAsync(envelope, "Subject: b13 dsn\r\n\r\ndsn\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.AcceptedRecipients.Should().HaveCount(2, result.ToString());
    }

    /// <summary>
    /// An LF message under Postfix's SIZE limit as given and over it on the wire (every LF goes out as CRLF): not sent,
    /// before MAIL. SIZE declared its length as given, so it was sent whole and refused only after its 10 MB of data.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_LF_message_over_Postfixs_limit_on_the_wire_is_not_sent(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.None, "client.example.test")).Code.Should().Be(250);
        var limit = session.Capabilities.MaxMessageSize!.Value;
        var content = Encoding.ASCII.GetBytes("Subject: b13 big\n\n" + string.Concat(Enumerable.Repeat("x\n", (int)(limit * 2 / 5))));
        content.Length.Should().BeLessThan((int)limit);

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient("b13")), content);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        result.MailReply.Should().BeNull("nothing was sent");
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    /// <summary>Every recipient refused leaves the server inside the send's transaction; the caller's MAIL after it must not get 503 "nested MAIL".</summary>
    [Theory]
    [InlineData("postfix")]
    [InlineData("exim")]
    [InlineData("aiosmtpd")]
    public async Task MailFromAsync_after_a_refused_send_opens_a_transaction_of_its_own(string server)
    {
        var port = server switch { "postfix" => TestServers.PostfixPort, "exim" => TestServers.EximPort, _ => TestServers.AiosmtpdPort };
        TestServers.RequireListening(port);
        await using var session = new AsyncSmtpSession();
        (await session.ConnectAsync(TestServers.Host, port, SmtpTlsMode.None, "client.example.test")).Code.Should().Be(250);

        (await SendAsync(session, "sender@example.test", "unknown-b13d@example.test")).Outcome.Should().Be(SmtpSendOutcome.Refused);

        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
        var recipient = TestServers.UniqueRecipient("b13");
        (await session.RcptToAsync(recipient)).Code.Should().Be(250);
        (await session.DataAsync()).Code.Should().Be(354);
        (await session.SendMessageDataAsync("Subject: b13 manual\r\n\r\nmanual\r\n"u8.ToArray())).Code.Should().Be(250);
        (await session.QuitAsync()).Code.Should().Be(221);
    }

    public static TheoryData<string, bool, string> Contents
    {
        get
        {
            var data = new TheoryData<string, bool, string>();
            string[] contents =
            [
                "Subject: dots\r\n\r\n.\r\n..\r\n.x\r\n. \r\nend\r\n",
                "Subject: bare\n\nline\rcr\n.\n.\r.\r\nlast without a line end",
                "Subject: long\r\n\r\n" + new string('y', 998) + "\r\n." + new string('z', 997) + "\r\n",
                "Subject: only a dot at the end\r\n\r\n.",
                "",
            ];
            foreach (var server in new[] { "postfix", "exim" })
            {
                foreach (var chunking in new[] { true, false })
                {
                    // Exim stores an empty message with the blank line that ends its (empty) header section: its own doing.
                    foreach (var content in contents.Where(c => c.Length > 0 || server == "postfix"))
                    {
                        data.Add(server, chunking, content);
                    }
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Contents))]
    public async Task Edge_content_arrives_as_given_after_CRLF_normalisation(string server, bool chunking, string content)
    {
        var port = server == "postfix" ? TestServers.PostfixPort : TestServers.EximPort;
        TestServers.RequireListening(port);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking, ChunkSize = 1024 });
        (await session.ConnectAsync(TestServers.Host, port, SmtpTlsMode.None, "client.example.test")).Code.Should().Be(250);
        var recipient = TestServers.UniqueRecipient("b13");
        var bytes = Encoding.ASCII.GetBytes(content);

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipient), bytes);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        var stored = server == "postfix" ? (await Maildir.WaitForPostfixAsync(recipient))[0] : await Maildir.WaitForEximAsync(recipient);
        Encoding.ASCII.GetString(Maildir.StripTraceHeaders(stored)).Should().Be(Encoding.ASCII.GetString(Corpus.NormalizeLineEnds(bytes)));
    }

    private static string Unique(List<string> good)
    {
        var recipient = TestServers.UniqueRecipient("b13");
        good.Add(recipient);
        return recipient;
    }

    private static Task<SmtpSendResult> SendAsync(AsyncSmtpSession session, string from, params string[] to) =>
        session.SendAsync(new SmtpEnvelope(from, to), Encoding.ASCII.GetBytes($"Subject: b13 {to[0]}\r\n\r\nbody\r\n"));
}
