using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;
using static MailPipe.MimeKit.Tests.Peer.PeerMimeServers;

namespace MailPipe.MimeKit.Tests.Peer;

/// <summary>
/// Peer acceptance of MailPipe.MimeKit's "Failures" against the real servers: negative replies are results, never
/// exceptions (with every recipient's reply), a server without SMTPUTF8 gets a non-ASCII local part refused before MAIL
/// with the connection going on, a broken attachment is <c>NotSent</c>/<c>ContentReadFailed</c> with MimeKit's
/// exception inside and nothing delivered, and the caller's cancellation throws and delivers nothing.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PeerMimeFailureTests
{
    public static TheoryData<string, string> RefusingServers()
    {
        var data = new TheoryData<string, string>();
        foreach (var server in new[] { Postfix, Exim, Aiosmtpd })
        {
            data.Add(server, Session);
            data.Add(server, Pool);
        }

        return data;
    }

    private static MimeMessage Simple(string from, params string[] to)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(from));
        foreach (var address in to)
        {
            message.To.Add(MailboxAddress.Parse(address));
        }

        message.Subject = "peer failure";
        message.MessageId = $"{Guid.NewGuid():N}@example.test";
        message.Body = new TextPart("plain") { Text = "peer failure body" };
        return message;
    }

    [Theory]
    [MemberData(nameof(RefusingServers))]
    public async Task A_recipient_refused_with_550_and_one_with_450_are_results_and_the_accepted_one_gets_the_message(string server, string via)
    {
        var good = TestServers.UniqueRecipient("peer-partial");
        var unknown = "unknown-" + Guid.NewGuid().ToString("N") + "@example.test";
        var message = Simple("sender@example.test", unknown, good, "tempfail@example.test");

        var result = await SendAsync(server, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Exception.Should().BeNull();
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal(good);
        result.RefusedRecipients.Select(r => (r.Recipient.Address, r.Reply!.Code)).Should().Equal((unknown, 550), ("tempfail@example.test", 450));
        (await StoredAsync(server, good)).Should().Equal(MimeTestMessages.ExpectedData(message));
    }

    [Theory]
    [MemberData(nameof(RefusingServers))]
    public async Task Every_recipient_refused_is_Refused_with_each_reply_transient_only_when_every_refusal_is(string server, string via)
    {
        var nosuch = "nosuch-" + Guid.NewGuid().ToString("N") + "@example.test";

        var mixed = await SendAsync(server, via, Simple("sender@example.test", "tempfail@example.test", nosuch));
        var transient = await SendAsync(server, via, Simple("sender@example.test", "tempfail@example.test"));

        mixed.Outcome.Should().Be(SmtpSendOutcome.Refused, mixed.ToString());
        mixed.Exception.Should().BeNull();
        mixed.MailReply!.IsPositiveCompletion.Should().BeTrue();
        mixed.Recipients.Select(r => r.Reply!.Code).Should().Equal(450, 550);
        mixed.IsTransientFailure.Should().BeFalse("one 5yz among the recipients makes the refusal permanent");
        transient.Outcome.Should().Be(SmtpSendOutcome.Refused, transient.ToString());
        transient.Recipients.Should().ContainSingle().Which.Reply!.Code.Should().Be(450);
        transient.IsTransientFailure.Should().BeTrue();
    }

    [Theory]
    [MemberData(nameof(RefusingServers))]
    public async Task A_refusal_after_the_end_of_data_is_Refused_with_the_data_reply(string server, string via)
    {
        foreach (var (from, code) in new[] { ("eod-reject@example.test", 554), ("eod-tempfail@example.test", 451) })
        {
            var result = await SendAsync(server, via, Simple(from, TestServers.UniqueRecipient("peer-eod")));

            result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
            result.Recipients.Should().OnlyContain(r => r.Accepted);
            result.FinalReply!.Code.Should().Be(code, "the reply to the end of data");
            result.IsTransientFailure.Should().Be(code == 451);
        }
    }

    [Theory]
    [InlineData(Session)]
    [InlineData(Pool)]
    public async Task Without_SMTPUTF8_a_non_ASCII_local_part_is_NotSent_before_MAIL_and_the_next_message_goes_to_smtp_sink(string via)
    {
        TestServers.RequireListening(TestServers.SinkPort);
        var next = TestServers.UniqueRecipient("peer-after-utf8");
        var message = Simple("sender@example.test", TestServers.UniqueRecipient("peer-ascii"));
        message.Cc.Add(new MailboxAddress("Zoë", "zoë-" + Guid.NewGuid().ToString("N") + "@example.test"));
        SmtpSendResult refused;
        SmtpSendResult after;
        if (via == Session)
        {
            await using var session = new AsyncSmtpSession();
            await session.ConnectAsync(TestServers.Host, TestServers.SinkPort, SmtpTlsMode.None, "client.peer.test");
            refused = await session.SendAsync(message);
            session.IsConnected.Should().BeTrue("the connection goes on");
            after = await session.SendAsync(Simple("sender@example.test", next));
        }
        else
        {
            await using var sender = NewSender(TestServers.SinkPort);
            refused = await sender.SendAsync(message);
            after = await sender.SendAsync(Simple("sender@example.test", next));
        }

        refused.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        refused.MailReply.Should().BeNull("nothing was sent: not even MAIL");
        refused.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        after.Outcome.Should().Be(SmtpSendOutcome.Accepted, after.ToString());
        (await SinkAsync(next)).MailArgs.Should().StartWith("<sender@example.test>");
    }

    [Theory]
    [InlineData(Exim, Session)]
    [InlineData(Aiosmtpd, Session)]
    [InlineData(Aiosmtpd, Pool)]
    [InlineData(Sink, Pool)]
    public async Task An_attachment_that_breaks_mid_message_is_NotSent_ContentReadFailed_with_MimeKits_exception_and_nothing_arrives(string server, string via)
    {
        var to = TestServers.UniqueRecipient("peer-broken");
        var message = Simple("sender@example.test", to);
        var body = new Multipart("mixed") { message.Body! };
        body.Add(new MimePart("application", "octet-stream")
        {
            Content = new MimeContent(new MimeKit.Tests.Integration.FailAfterStream(MimeTestMessages.BinaryBytes(2_000_000), 600_000)),
            ContentTransferEncoding = ContentEncoding.Base64,
            FileName = "broken.bin",
        });
        message.Body = body;

        var result = await SendAsync(server, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        var error = result.Exception.Should().BeOfType<SmtpException>().Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        Flatten(error).Should().Contain(e => e is IOException && e.Message == "disk gone", "MimeKit's exception is inside");

        // The next message to the same recipient is the only one stored.
        var probe = Simple("sender@example.test", to);
        probe.Subject = "after the broken one";
        (await SendAsync(server, via, probe)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        Encoding.UTF8.GetString(await StoredAsync(server, to)).Should().Contain("Subject: after the broken one");
        if (server == Aiosmtpd)
        {
            Directory.GetFiles(TestServers.AiosmtpdMessages, "*.json").Count(f => File.ReadAllText(f).Contains(to, StringComparison.Ordinal)).Should().Be(1);
        }
    }

    [Theory]
    [InlineData(Postfix, Session)]
    [InlineData(Postfix, Pool)]
    [InlineData(Aiosmtpd, Session)]
    [InlineData(Aiosmtpd, Pool)]
    public async Task An_already_cancelled_token_throws_OperationCanceledException_and_nothing_is_delivered(string server, string via)
    {
        var to = TestServers.UniqueRecipient("peer-precancel");
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        var send = () => SendAsync(server, via, Simple("sender@example.test", to), cts.Token);

        await send.Should().ThrowAsync<OperationCanceledException>();
        var probe = Simple("sender@example.test", to);
        probe.Subject = "after the cancelled one";
        (await SendAsync(server, via, probe)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        Encoding.UTF8.GetString(await StoredAsync(server, to)).Should().Contain("Subject: after the cancelled one");
    }

    [Theory]
    [InlineData(Postfix, Session)]
    [InlineData(Postfix, Pool)]
    [InlineData(Exim, Pool)]
    [InlineData(Aiosmtpd, Session)]
    [InlineData(Aiosmtpd, Pool)]
    public async Task Cancelling_while_MimeKit_waits_on_a_base64_attachment_throws_and_never_ends_the_message(string server, string via)
    {
        var to = TestServers.UniqueRecipient("peer-cancel");
        var message = Simple("sender@example.test", to);
        var gate = new GatedStream(MimeTestMessages.BinaryBytes(400_000), 100_000);
        message.Body = new Multipart("mixed")
        {
            message.Body!,
            new MimePart("application", "octet-stream") { Content = new MimeContent(gate), ContentTransferEncoding = ContentEncoding.Base64, FileName = "slow.bin" },
        };
        using var cts = new CancellationTokenSource();

        var send = SendAsync(server, via, message, cts.Token);
        await gate.Waiting.WaitAsync(TimeSpan.FromSeconds(60));
        await cts.CancelAsync();
        Exception? thrown = null;
        try
        {
            await send.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (Exception ex)
        {
            thrown = ex;
        }
        finally
        {
            gate.Release();
        }

        thrown.Should().BeAssignableTo<OperationCanceledException>().And.NotBeOfType<SmtpOutcomeUnknownException>("the end of data was never written");
        var probe = Simple("sender@example.test", to);
        probe.Subject = "after the cancelled one";
        (await SendAsync(server, via, probe)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        Encoding.UTF8.GetString(await StoredAsync(server, to)).Should().Contain("Subject: after the cancelled one");
        if (server == Postfix)
        {
            (await Maildir.WaitForPostfixAsync(to)).Should().ContainSingle();
        }
    }

    [Fact]
    public async Task A_message_without_recipients_is_an_ArgumentException_and_the_session_stays_usable()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.AiosmtpdPort, SmtpTlsMode.None, "client.peer.test");
        var empty = Simple("sender@example.test");
        var to = TestServers.UniqueRecipient("peer-noto");

        var send = () => session.SendAsync(empty);

        await send.Should().ThrowAsync<ArgumentException>();
        (await session.SendAsync(Simple("sender@example.test", to))).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await StoredAsync(Aiosmtpd, to)).Should().NotBeEmpty();
    }

    private static IEnumerable<Exception> Flatten(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            yield return e;
        }
    }

    /// <summary>A seekable in-memory stream whose reads past <c>stopAt</c> wait until <see cref="Release"/> or their token is cancelled.</summary>
    private sealed class GatedStream(byte[] content, int stopAt) : MemoryStream(content, writable: false)
    {
        private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Waiting => _waiting.Task;

        public void Release() => _released.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Position >= stopAt && Position > 0)
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
