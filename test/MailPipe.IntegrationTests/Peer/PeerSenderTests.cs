using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.IntegrationTests.Tls;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// Peer acceptance suite: the shared sender (SmtpSender / ISmtpSender) against the real servers, as README.md's
/// "The shared sender" section and the XML docs describe it: results not exceptions, validation before queueing,
/// cancellation, disposal and batches.
/// </summary>
public sealed class PeerSenderTests
{
    private const string From = "peer-sender@example.test";
    private const string Tempfail = "tempfail@example.test";

    private static byte[] Message(string subject) => PeerSupport.Message(From, subject, messageId: true, body: "Peer acceptance test of the sender.");

    /// <summary>The README's example: STARTTLS required, AUTH, against Postfix 2525.</summary>
    private static SmtpSender PostfixSender(NetworkCredential? credentials = null, int maxConnections = 4) => new(new SmtpSenderOptions
    {
        Host = TestServers.Host,
        Port = TestServers.PostfixPort,
        TlsMode = SmtpTlsMode.StartTlsRequired,
        Tls = TlsTestSupport.TrustTestCertificate(),
        Credentials = credentials ?? new NetworkCredential(TestServers.User, TestServers.Password),
        MaxConnections = maxConnections,
        EhloName = "peer-sender.example.test",
    });

    [Fact]
    public async Task The_README_sender_example_delivers_over_STARTTLS_with_AUTH()
    {
        var recipient = TestServers.UniqueRecipient("peer-s");
        var bytes = Message("sender example");
        await using var sender = PostfixSender();

        var result = await sender.SendAsync(new SmtpEnvelope(From, recipient), bytes);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(1);
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal(recipient);
        Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(recipient))[0]).Should().Equal(bytes);
        sender.GetStatistics().Opened.Should().Be(1);
    }

    [Fact]
    public async Task Implicit_TLS_on_4650_delivers()
    {
        var recipient = TestServers.UniqueRecipient("peer-465");
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixTlsPort,
            TlsMode = SmtpTlsMode.Implicit,
            Tls = TlsTestSupport.TrustTestCertificate(),
            Credentials = new NetworkCredential(TestServers.User, TestServers.Password),
        });

        var result = await sender.SendAsync(new SmtpEnvelope(From, recipient), Message("implicit"));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        await Maildir.WaitForPostfixAsync(recipient);
    }

    [Fact]
    public async Task Every_content_overload_of_ISmtpSender_sends()
    {
        var recipients = Enumerable.Range(0, 4).Select(i => TestServers.UniqueRecipient($"peer-ov{i}")).ToArray();
        await using ISmtpSender sender = PostfixSender();
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Message("pipe"));
        await pipe.Writer.CompleteAsync();

        var results = new[]
        {
            await sender.SendAsync(new SmtpEnvelope(From, recipients[0]), Message("bytes")),
            await sender.SendAsync(new SmtpEnvelope(From, recipients[1]), new ReadOnlySequence<byte>(Message("sequence"))),
            await sender.SendAsync(new SmtpEnvelope(From, recipients[2]), new MemoryStream(Message("stream"))),
            await sender.SendAsync(new SmtpEnvelope(From, recipients[3]), pipe.Reader),
        };

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        foreach (var recipient in recipients)
        {
            await Maildir.WaitForPostfixAsync(recipient);
        }
    }

    [Fact]
    public async Task Refusals_are_results_with_the_recipients_that_accepted()
    {
        var good = TestServers.UniqueRecipient("peer-sm");
        await using var sender = PostfixSender();

        var mixed = await sender.SendAsync(new SmtpEnvelope(From, good, Tempfail), Message("mixed"));
        var allTemp = await sender.SendAsync(new SmtpEnvelope(From, Tempfail), Message("temp"));
        var eod = await sender.SendAsync(new SmtpEnvelope("eod-reject@example.test", TestServers.UniqueRecipient("peer-seod")), Message("eod"));

        mixed.Outcome.Should().Be(SmtpSendOutcome.Accepted, mixed.ToString());
        mixed.AcceptedRecipients.Select(r => r.Address).Should().Equal(good);
        mixed.RefusedRecipients.Single().Reply!.Code.Should().Be(450);
        allTemp.Outcome.Should().Be(SmtpSendOutcome.Refused);
        allTemp.IsTransientFailure.Should().BeTrue();
        allTemp.Attempts.Should().Be(1, "a refusal is not retried on a fresh connection");
        eod.Outcome.Should().Be(SmtpSendOutcome.Refused);
        eod.FinalReply!.Code.Should().Be(554);
        eod.IsTransientFailure.Should().BeFalse();
        await Maildir.WaitForPostfixAsync(good);
    }

    [Fact]
    public async Task A_refused_connect_is_a_transient_NotSent_result_not_an_exception()
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = 1, TlsMode = SmtpTlsMode.None });

        var result = await sender.SendAsync(new SmtpEnvelope(From, "bob@example.test"), Message("refused connect"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeTrue();
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        sender.GetStatistics().OpenFailures.Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task A_wrong_password_is_a_NotSent_result_with_AuthenticationError()
    {
        await using var sender = PostfixSender(new NetworkCredential(TestServers.User, "wrong-password"));

        var result = await sender.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-auth")), Message("bad password"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
    }

    [Fact]
    public async Task StartTlsRequired_against_a_server_without_STARTTLS_is_NotSent_never_a_cleartext_send()
    {
        TestServers.RequireListening(TestServers.SinkPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.SinkPort });

        var result = await sender.SendAsync(new SmtpEnvelope(From, "bob@example.test"), Message("no tls"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.StartTlsNotOffered);
    }

    [Fact]
    public async Task Bad_arguments_throw_before_anything_is_queued()
    {
        await using var sender = PostfixSender();

        await FluentActions.Awaiting(() => sender.SendAsync(null!)).Should().ThrowAsync<ArgumentNullException>();
        await FluentActions.Awaiting(() => sender.SendAsync(null!, Message("x"))).Should().ThrowAsync<ArgumentNullException>();
        await FluentActions.Awaiting(() => sender.SendAsync(new SmtpEnvelope(From, "bob@example.test"), (Stream)null!)).Should().ThrowAsync<ArgumentNullException>();
        await FluentActions.Awaiting(() => sender.SendAsync(new SmtpEnvelope(From, "bob@example.test") { Size = -1 }, Message("x")))
            .Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => sender.SendAsync(new SmtpEnvelope(From, "bob@example.test") { EnvelopeId = new string('a', 101) }, Message("x")))
            .Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => sender.SendBatchAsync(null!)).Should().ThrowAsync<ArgumentNullException>();
        await FluentActions.Awaiting(() => sender.SendBatchAsync([SmtpMessage.FromBytes(new SmtpEnvelope(From, "bob@example.test"), Message("x")), null!]))
            .Should().ThrowAsync<ArgumentNullException>();

        var statistics = sender.GetStatistics();
        statistics.Opened.Should().Be(0, "nothing was queued, so no connection was opened");
        statistics.Messages.Should().Be(0);
    }

    [Fact]
    public async Task A_token_cancelled_before_SendAsync_throws_and_opens_nothing()
    {
        await using var sender = PostfixSender();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        var act = () => sender.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-sc")), Message("x"), cts.Token);

        (await act.Should().ThrowAsync<OperationCanceledException>()).Which.Should().NotBeOfType<SmtpOutcomeUnknownException>();
        sender.GetStatistics().Messages.Should().Be(0);
    }

    [Fact]
    public async Task A_batch_with_a_cancelled_token_throws_SmtpBatchCanceledException_with_one_NotSent_result_per_message()
    {
        await using var sender = PostfixSender();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        var messages = Enumerable.Range(0, 3)
            .Select(i => SmtpMessage.FromBytes(new SmtpEnvelope(From, TestServers.UniqueRecipient($"peer-sbc{i}")), Message($"c{i}")))
            .ToArray();

        var act = () => sender.SendBatchAsync(messages, cts.Token);

        var thrown = (await act.Should().ThrowAsync<SmtpBatchCanceledException>()).Which;
        thrown.Results.Should().HaveCount(3);
        thrown.Results.Select(r => r.Envelope).Should().Equal(messages.Select(m => m.Envelope));
        thrown.Results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.NotSent);
    }

    [Fact]
    public async Task A_batch_returns_one_result_per_message_in_order()
    {
        var ok1 = TestServers.UniqueRecipient("peer-sb1");
        var ok2 = TestServers.UniqueRecipient("peer-sb2");
        var messages = new[]
        {
            SmtpMessage.FromBytes(new SmtpEnvelope(From, Tempfail), Message("b0")),
            SmtpMessage.FromBytes(new SmtpEnvelope(From, ok1), Message("b1")),
            SmtpMessage.FromBytes(new SmtpEnvelope(From, $"unknown-{Guid.NewGuid():N}@example.test"), Message("b2")),
            SmtpMessage.FromBytes(new SmtpEnvelope(From, ok2), Message("b3")),
        };
        await using var sender = PostfixSender(maxConnections: 1);

        var results = await sender.SendBatchAsync(messages);

        results.Select(r => r.Envelope).Should().Equal(messages.Select(m => m.Envelope));
        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Refused, SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused, SmtpSendOutcome.Accepted);
        results[0].IsTransientFailure.Should().BeTrue();
        results[2].IsTransientFailure.Should().BeFalse();
        await Maildir.WaitForPostfixAsync(ok1);
        await Maildir.WaitForPostfixAsync(ok2);
    }

    [Fact]
    public async Task After_DisposeAsync_sends_throw_ObjectDisposedException_and_disposal_is_idempotent()
    {
        var sender = PostfixSender();
        var result = await sender.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-sd")), Message("before dispose"));
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);

        await sender.DisposeAsync();
        await sender.DisposeAsync();
        sender.Dispose();

        await FluentActions.Awaiting(() => sender.SendAsync(new SmtpEnvelope(From, "bob@example.test"), Message("x")))
            .Should().ThrowAsync<ObjectDisposedException>();
        await FluentActions.Awaiting(() => sender.SendBatchAsync([SmtpMessage.FromBytes(new SmtpEnvelope(From, "bob@example.test"), Message("x"))]))
            .Should().ThrowAsync<ObjectDisposedException>();
        var statistics = sender.GetStatistics();
        (statistics.Idle + statistics.InUse + statistics.Opening).Should().Be(0, "DisposeAsync completes when every connection is closed");
    }

    [Fact]
    public async Task Dispose_returns_at_once_and_a_later_DisposeAsync_waits_for_the_same_disposal()
    {
        var sender = PostfixSender();
        (await sender.SendAsync(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-sdd")), Message("x"))).Outcome.Should().Be(SmtpSendOutcome.Accepted);

        sender.Dispose();
        await FluentActions.Awaiting(() => sender.SendAsync(new SmtpEnvelope(From, "bob@example.test"), Message("x")))
            .Should().ThrowAsync<ObjectDisposedException>("before Dispose returns, new sends throw ObjectDisposedException");
        await sender.DisposeAsync();

        var statistics = sender.GetStatistics();
        (statistics.Idle + statistics.InUse + statistics.Opening).Should().Be(0);
    }

    [Theory]
    [InlineData(2526)]
    [InlineData(2527)]
    [InlineData(2528)]
    public async Task A_sender_without_TLS_delivers_to_Exim_aiosmtpd_and_smtp_sink(int port)
    {
        TestServers.RequireListening(port);
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = port, TlsMode = SmtpTlsMode.None });

        var results = await sender.SendBatchAsync(Enumerable.Range(0, 3)
            .Select(i => SmtpMessage.FromBytes(new SmtpEnvelope(From, TestServers.UniqueRecipient($"peer-o{i}")), Message($"other {i}"))).ToArray());

        results.Should().HaveCount(3).And.OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
    }
}
