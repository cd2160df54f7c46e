using System.Net;
using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;
using static MailPipe.MimeKit.Tests.Peer.PeerMimeServers;

namespace MailPipe.MimeKit.Tests.Peer;

/// <summary>
/// More of MailPipe.MimeKit's promises on the real servers: a folded Bcc of many mailboxes and an older block's
/// Resent-Bcc never reach the wire, batches choose per message, a cancelled pooled send keeps a BDAT connection and
/// replaces a DATA one, a 7-bit server's preparation changes the caller's message but not its identity, submission
/// with STARTTLS and AUTH, a message over the server's SIZE is a result, a UTF-8 Reply-To needs only 8BITMIME.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PeerMimeMoreTests
{
    private static MimeMessage Simple(string to, string subject = "peer more")
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = subject;
        message.MessageId = $"{Guid.NewGuid():N}@example.test";
        message.Body = new TextPart("plain") { Text = "peer more body" };
        return message;
    }

    [Theory]
    [InlineData(Session)]
    [InlineData(Pool)]
    public async Task A_Bcc_of_thirty_mailboxes_folded_over_many_lines_reaches_each_and_none_of_it_is_on_the_wire(string via)
    {
        var to = TestServers.UniqueRecipient("peer-fold-to");
        var message = Simple(to);
        var hidden = Enumerable.Range(0, 30).Select(i => TestServers.UniqueRecipient($"peer-fold-{i}")).ToList();
        foreach (var address in hidden)
        {
            message.Bcc.Add(new MailboxAddress("Hidden Person " + address[..16], address));
        }

        var result = await SendAsync(Postfix, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.AcceptedRecipients.Should().HaveCount(31);
        var expected = MimeTestMessages.ExpectedData(message);
        foreach (var address in new[] { to, hidden[0], hidden[29] })
        {
            var stored = await StoredAsync(Postfix, address);
            stored.Should().Equal(expected);
            var text = Encoding.Latin1.GetString(stored);
            text.Should().NotContain("Hidden Person").And.NotContain("peer-fold-1").And.NotContain("\r\nBcc");
        }
    }

    [Fact]
    public async Task A_message_resent_twice_has_neither_blocks_Resent_Bcc_on_the_wire_and_goes_to_the_newest_block_only()
    {
        var original = TestServers.UniqueRecipient("peer-r2-orig");
        var olderTo = TestServers.UniqueRecipient("peer-r2-oldto");
        var olderBcc = TestServers.UniqueRecipient("peer-r2-oldbcc");
        var newerTo = TestServers.UniqueRecipient("peer-r2-newto");
        var raw = $"Resent-From: second@example.test\r\nResent-To: {newerTo}\r\nResent-Date: Sat, 05 Dec 2026 13:00:00 +0000\r\n"
            + $"Resent-From: first@example.test\r\nResent-To: {olderTo}\r\nResent-Bcc: {olderBcc}\r\nResent-Date: Sat, 05 Dec 2026 12:30:00 +0000\r\n"
            + $"From: author@example.test\r\nTo: {original}\r\nSubject: resent twice\r\nMessage-Id: <{Guid.NewGuid():N}@example.test>\r\n\r\nbody\r\n";
        var message = MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(raw)));

        var result = await SendAsync(Postfix, Pool, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Envelope.ReversePath.Should().Be("second@example.test");
        result.Recipients.Select(r => r.Recipient.Address).Should().Equal(newerTo);
        var stored = Encoding.Latin1.GetString(await StoredAsync(Postfix, newerTo));
        stored.Should().NotContain("Resent-Bcc").And.NotContain(olderBcc, "the Resent-Bcc fields of the message's own header are not sent");
        stored.Should().Contain($"Resent-To: {olderTo}", "the older block stays, but for its Resent-Bcc");
        foreach (var notAgain in new[] { original, olderTo, olderBcc })
        {
            Directory.Exists(Path.Combine(TestServers.PostfixMaildir, notAgain)).Should().BeFalse(notAgain);
        }
    }

    [Theory]
    [InlineData(Session)]
    [InlineData(Pool)]
    public async Task A_batch_to_smtp_sink_refuses_only_the_message_with_a_UTF8_local_part_and_sends_the_others_in_order(string via)
    {
        TestServers.RequireListening(TestServers.SinkPort);
        var first = TestServers.UniqueRecipient("peer-batch-1");
        var third = TestServers.UniqueRecipient("peer-batch-3");
        var messages = new[] { Simple(first), Simple($"zoë-{Guid.NewGuid():N}@example.test"), Simple(third) };

        IReadOnlyList<SmtpSendResult> results;
        if (via == Session)
        {
            await using var session = new AsyncSmtpSession();
            await session.ConnectAsync(TestServers.Host, TestServers.SinkPort, SmtpTlsMode.None, "client.peer.test");
            results = await session.SendBatchAsync(messages);
        }
        else
        {
            await using var sender = NewSender(TestServers.SinkPort);
            results = await sender.SendBatchAsync(messages);
        }

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.Accepted);
        results[1].Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        (await SinkAsync(first)).Message.Should().Equal(MimeTestMessages.ExpectedData(messages[0]));
        (await SinkAsync(third)).Message.Should().Equal(MimeTestMessages.ExpectedData(messages[2]));
    }

    [Theory]
    [InlineData(Postfix, 1)]
    [InlineData(Aiosmtpd, 2)]
    public async Task A_pooled_send_cancelled_while_MimeKit_writes_keeps_a_BDAT_connection_and_replaces_a_DATA_one(string server, int opened)
    {
        var to = TestServers.UniqueRecipient("peer-poolcancel");
        var message = Simple(to);
        var gate = new Gate(MimeTestMessages.BinaryBytes(300_000), 100_000);
        message.Body = new Multipart("mixed")
        {
            message.Body!,
            new MimePart("application", "octet-stream") { Content = new MimeContent(gate), ContentTransferEncoding = ContentEncoding.Base64, FileName = "slow.bin" },
        };
        await using var sender = NewSender(Port(server));
        using var cts = new CancellationTokenSource();

        var send = sender.SendAsync(message, cts.Token);
        await gate.Waiting.WaitAsync(TimeSpan.FromSeconds(60));
        await cts.CancelAsync();
        var cancelled = async () => await send.WaitAsync(TimeSpan.FromSeconds(60));
        await cancelled.Should().ThrowAsync<OperationCanceledException>();
        gate.Release();
        var after = await sender.SendAsync(Simple(to, "after the cancelled one"));

        after.Outcome.Should().Be(SmtpSendOutcome.Accepted, after.ToString());
        sender.GetStatistics().Opened.Should().Be(opened, server == Postfix ? "with BDAT the transaction is reset with RSET and the connection kept" : "with DATA the only way out is closing the connection");
        Encoding.UTF8.GetString(await StoredAsync(server, to)).Should().Contain("Subject: after the cancelled one");
        if (server == Postfix)
        {
            (await Maildir.WaitForPostfixAsync(to)).Should().ContainSingle("the cancelled message was never ended");
        }
    }

    [Fact]
    public async Task Through_the_pool_to_a_server_without_8BITMIME_the_callers_message_is_prepared_keeps_its_identity_and_arrives_7bit()
    {
        const int NoEightBitMimePort = 2543;
        TestServers.RequireListening(NoEightBitMimePort);
        var to = TestServers.UniqueRecipient("peer-7bit");
        var message = MimeTestMessages.EightBitText(to);
        var id = message.MessageId;
        var text = ((TextPart)message.Body!).Text;

        var result = await SendAsync("2543", Pool, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Envelope.Body.Should().Be(SmtpBodyType.SevenBit);
        ((TextPart)message.Body!).ContentTransferEncoding.Should().BeOneOf(ContentEncoding.QuotedPrintable, ContentEncoding.Base64);
        message.MessageId.Should().Be(id);
        var stored = await StoredAsync(Postfix, to);
        stored.Should().OnlyContain(b => b < 0x80);
        stored.Should().Equal(MimeTestMessages.ExpectedData(message));
        ((TextPart)Reparse(stored).Body!).Text.Should().Be(text);
    }

    [Fact]
    public async Task Through_submission_with_STARTTLS_and_AUTH_a_multipart_message_arrives_as_WriteTo_wrote_it()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var to = TestServers.UniqueRecipient("peer-sub");
        var message = MimeTestMessages.MultipartWithAttachments(to, TestServers.UniqueRecipient("peer-sub-cc"), TestServers.UniqueRecipient("peer-sub-bcc"));
        var options = new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixSubmissionPort,
            TlsMode = SmtpTlsMode.StartTlsRequired,
            Credentials = new NetworkCredential(TestServers.User, TestServers.Password),
            EhloName = "client.peer.test",
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await using var sender = new SmtpSender(options);

        var result = await sender.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        (await StoredAsync(Postfix, to)).Should().Equal(MimeTestMessages.ExpectedData(message));
    }

    [Theory]
    [InlineData(Session)]
    [InlineData(Pool)]
    public async Task A_message_over_the_servers_SIZE_is_NotSent_MessageTooLarge_in_the_result_and_is_not_delivered(string via)
    {
        var to = TestServers.UniqueRecipient("peer-big");
        var message = Simple(to);
        var builder = new BodyBuilder { TextBody = "big" };
        builder.Attachments.Add("big.bin", MimeTestMessages.BinaryBytes(9_000_000), new ContentType("application", "octet-stream"));
        message.Body = builder.ToMessageBody();

        var result = await SendAsync(Postfix, via, message);

        // Written as it goes, its size is not known before MAIL: the data is counted and stopped at the server's SIZE.
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        var probe = Simple(to, "after the big one");
        (await SendAsync(Postfix, via, probe)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await Maildir.WaitForPostfixAsync(to)).Should().ContainSingle().Which.Should().NotBeEmpty();
    }

    [Theory]
    [InlineData(Session)]
    [InlineData(Pool)]
    public async Task A_UTF8_mailbox_in_Reply_To_goes_to_smtp_sink_with_8BITMIME_and_without_SMTPUTF8(string via)
    {
        var to = TestServers.UniqueRecipient("peer-replyto");
        var message = Simple(to);
        message.ReplyTo.Add(new MailboxAddress("Zoë", "zoë@bücher.example"));
        var expected = MimeTestMessages.ExpectedData(message);

        var result = await SendAsync(Sink, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Envelope.SmtpUtf8.Should().BeFalse("the server does not offer SMTPUTF8; the field needs 8BITMIME only");
        var dump = await SinkAsync(to);
        dump.MailArgs.Should().Contain("BODY=8BITMIME").And.NotContain("SMTPUTF8");
        dump.Message.Should().Equal(expected);
    }

    /// <summary>A seekable in-memory stream whose reads past <c>stopAt</c> wait until <see cref="Release"/> or their token is cancelled.</summary>
    private sealed class Gate(byte[] content, int stopAt) : MemoryStream(content, writable: false)
    {
        private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Waiting => _waiting.Task;

        public void Release() => _released.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Position >= stopAt)
            {
                _waiting.TrySetResult();
                await _released.Task.WaitAsync(cancellationToken);
            }

            return await base.ReadAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
