using System.Runtime.CompilerServices;
using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// Peer acceptance suite: SmtpEnvelope and SmtpMessage as their XML docs describe them, and the batch calls of the
/// session (async sequences, streaming, per-message cancellation) against the real Postfix.
/// </summary>
public sealed class PeerMessageAndBatchTests
{
    private const string From = "peer-batch@example.test";

    private static byte[] Message(string subject) => PeerSupport.Message(From, subject, messageId: true);

    private static SmtpMessage Msg(string recipient, string subject) => SmtpMessage.FromBytes(new SmtpEnvelope(From, recipient), Message(subject));

    private static async Task<AsyncSmtpSession> ConnectAsync()
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions());
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        (await session.HelloAsync("peer-client.example.test")).Code.Should().Be(250);
        return session;
    }

    [Fact]
    public void An_envelope_takes_angle_brackets_the_null_reverse_path_and_Postmaster_and_compares_by_value()
    {
        var envelope = new SmtpEnvelope("", "<bob@example.test>", "Postmaster");

        envelope.ReversePath.Should().BeEmpty();
        envelope.Recipients.Select(r => r.Address).Should().Equal("bob@example.test", "Postmaster");
        envelope.Body.Should().Be(SmtpBodyType.Auto);
        envelope.Size.Should().BeNull();
        envelope.RequireTls.Should().BeFalse();
        envelope.SmtpUtf8.Should().BeFalse();
        envelope.Should().Be(new SmtpEnvelope("", "bob@example.test", "Postmaster"));
        envelope.GetHashCode().Should().Be(new SmtpEnvelope("", "bob@example.test", "Postmaster").GetHashCode());
        envelope.Should().NotBe(new SmtpEnvelope("", "Postmaster", "bob@example.test"), "the order of the RCPT commands matters");

        FluentActions.Invoking(() => new SmtpEnvelope("Postmaster", "bob@example.test")).Should().Throw<ArgumentException>("Postmaster alone is for a recipient only");
        FluentActions.Invoking(() => new SmtpEnvelope(null!, "bob@example.test")).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => new SmtpEnvelope(From, (IEnumerable<SmtpRecipient>)null!)).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => new SmtpEnvelope(From, [new SmtpRecipient("bob@example.test"), null!])).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => new SmtpRecipient("bob<x>@example.test")).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => SmtpRecipient.FromString("")).Should().Throw<ArgumentException>();
    }

    [Fact]
    public void A_message_knows_its_content_length_when_it_can()
    {
        var envelope = new SmtpEnvelope(From, "bob@example.test");
        var stream = new MemoryStream(new byte[100]) { Position = 30 };

        SmtpMessage.FromBytes(envelope, new byte[42]).ContentLength.Should().Be(42);
        SmtpMessage.FromStream(envelope, stream).ContentLength.Should().Be(70, "from its position when the message was made");
        SmtpMessage.FromWriter(envelope, (_, _) => Task.CompletedTask).ContentLength.Should().BeNull();
        SmtpMessage.FromBytes(envelope, new byte[1]).Envelope.Should().BeSameAs(envelope);

        var unreadable = new MemoryStream();
        unreadable.Dispose();
        FluentActions.Invoking(() => SmtpMessage.FromStream(envelope, unreadable)).Should().Throw<ArgumentException>("the stream cannot be read");
    }

    [Fact]
    public void WithRecipients_keeps_a_subsequence_and_refuses_anything_else()
    {
        var message = SmtpMessage.FromBytes(new SmtpEnvelope(From, "a@example.test", "b@example.test", "c@example.test"), Message("x"));

        var copy = message.WithRecipients([new SmtpRecipient("a@example.test"), new SmtpRecipient("c@example.test")]);

        copy.Envelope.Recipients.Select(r => r.Address).Should().Equal("a@example.test", "c@example.test");
        copy.Envelope.ReversePath.Should().Be(From);
        message.Envelope.Recipients.Should().HaveCount(3, "a copy");
        FluentActions.Invoking(() => message.WithRecipients([])).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => message.WithRecipients([new SmtpRecipient("z@example.test")])).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => message.WithRecipients([new SmtpRecipient("c@example.test"), new SmtpRecipient("a@example.test")])).Should().Throw<ArgumentException>("envelope order");
        FluentActions.Invoking(() => message.WithRecipients(null!)).Should().Throw<ArgumentNullException>();
    }

    [Fact]
    public async Task A_seekable_stream_message_sent_twice_is_sent_whole_twice()
    {
        var recipient = TestServers.UniqueRecipient("peer-twice");
        var bytes = Message("twice");
        var message = SmtpMessage.FromStream(new SmtpEnvelope(From, recipient), new MemoryStream(bytes));
        await using var session = await ConnectAsync();

        (await session.SendAsync(message)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await session.SendAsync(message)).Outcome.Should().Be(SmtpSendOutcome.Accepted);

        var stored = await Maildir.WaitForPostfixAsync(recipient, 2);
        stored.Select(Maildir.StripTraceHeaders).Should().AllSatisfy(s => s.Should().Equal(bytes));
    }

    [Fact]
    public async Task A_message_whose_own_token_is_cancelled_is_NotSent_and_the_others_of_the_batch_go_on()
    {
        var first = TestServers.UniqueRecipient("peer-wc1");
        var third = TestServers.UniqueRecipient("peer-wc3");
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await using var session = await ConnectAsync();

        var results = await session.SendBatchAsync(
        [
            Msg(first, "wc1"),
            Msg(TestServers.UniqueRecipient("peer-wc2"), "wc2").WithCancellation(cts.Token),
            Msg(third, "wc3"),
        ]);

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.Accepted);
        results[1].Exception.Should().BeAssignableTo<OperationCanceledException>();
        session.IsConnected.Should().BeTrue();
        await Maildir.WaitForPostfixAsync(first);
        await Maildir.WaitForPostfixAsync(third);
    }

    [Fact]
    public async Task An_async_sequence_with_a_bad_message_finishes_the_ones_before_and_throws_SmtpBatchArgumentException()
    {
        var first = TestServers.UniqueRecipient("peer-as1");
        await using var session = await ConnectAsync();

        async IAsyncEnumerable<SmtpMessage> Messages()
        {
            yield return Msg(first, "as1");
            await Task.Yield();
            yield return SmtpMessage.FromBytes(new SmtpEnvelope(From, TestServers.UniqueRecipient("peer-as2")) { Size = -1 }, Message("as2"));
            yield return Msg(TestServers.UniqueRecipient("peer-as3"), "as3");
        }

        var act = async () => await session.SendBatchAsync(Messages());

        var thrown = (await act.Should().ThrowAsync<SmtpBatchArgumentException>()).Which;
        thrown.Should().BeAssignableTo<ArgumentException>();
        thrown.Results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent);
        await Maildir.WaitForPostfixAsync(first);
    }

    [Fact]
    public async Task An_async_sequence_that_throws_finishes_the_messages_taken_and_throws_SmtpBatchSequenceException()
    {
        var first = TestServers.UniqueRecipient("peer-sq1");
        var failure = new InvalidOperationException("database read failed");
        await using var session = await ConnectAsync();

        async IAsyncEnumerable<SmtpMessage> Messages()
        {
            yield return Msg(first, "sq1");
            await Task.Yield();
            throw failure;
        }

        var act = async () => await session.SendBatchAsync(Messages());

        var thrown = (await act.Should().ThrowAsync<SmtpBatchSequenceException>()).Which;
        thrown.InnerException.Should().BeSameAs(failure);
        thrown.Results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted);
        await Maildir.WaitForPostfixAsync(first);
    }

    [Fact]
    public async Task SendBatchStreamingAsync_yields_the_results_in_message_order()
    {
        var recipients = Enumerable.Range(0, 3).Select(i => TestServers.UniqueRecipient($"peer-st{i}")).ToArray();
        var messages = new[] { Msg(recipients[0], "st0"), Msg("tempfail@example.test", "st-temp"), Msg(recipients[1], "st1"), Msg(recipients[2], "st2") };
        await using var session = await ConnectAsync();

        var results = new List<SmtpSendResult>();
        await foreach (var result in session.SendBatchStreamingAsync(messages))
        {
            results.Add(result);
        }

        results.Select(r => r.Envelope).Should().Equal(messages.Select(m => m.Envelope));
        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused, SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted);
    }

    [Fact]
    public async Task Leaving_SendBatchStreamingAsync_early_takes_no_more_messages_and_leaves_the_session_usable()
    {
        var taken = 0;
        var first = TestServers.UniqueRecipient("peer-br0");
        await using var session = await ConnectAsync();

        async IAsyncEnumerable<SmtpMessage> Messages([EnumeratorCancellation] CancellationToken ct = default)
        {
            for (var i = 0; i < 1000; i++)
            {
                Interlocked.Increment(ref taken);
                yield return Msg(i == 0 ? first : TestServers.UniqueRecipient($"peer-br{i}"), $"br{i}");
                await Task.Yield();
            }
        }

        await foreach (var result in session.SendBatchStreamingAsync(Messages()))
        {
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
            break;
        }

        taken.Should().BeLessThan(1000, "leaving early takes no more messages");
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250, "the messages taken were finished, never half-sent");
        await Maildir.WaitForPostfixAsync(first);
    }

    [Fact]
    public async Task The_sender_closes_a_connection_after_MaxMessagesPerConnection_and_opens_a_new_one()
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            TlsMode = SmtpTlsMode.None,
            MaxMessagesPerConnection = 1,
            MaxConnections = 1,
        });

        (await sender.SendAsync(Msg(TestServers.UniqueRecipient("peer-mm1"), "mm1"))).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await sender.SendAsync(Msg(TestServers.UniqueRecipient("peer-mm2"), "mm2"))).Outcome.Should().Be(SmtpSendOutcome.Accepted);

        sender.GetStatistics().Opened.Should().Be(2);
    }

    [Fact]
    public async Task Without_an_EhloName_the_sender_says_a_qualified_name_or_the_address_literal()
    {
        var recipient = TestServers.UniqueRecipient("peer-ehlo");
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None });

        (await sender.SendAsync(Msg(recipient, "ehlo"))).Outcome.Should().Be(SmtpSendOutcome.Accepted);

        var stored = Encoding.ASCII.GetString((await Maildir.WaitForPostfixAsync(recipient))[0]);
        var received = stored.Split("\r\n").First(l => l.StartsWith("Received: from ", StringComparison.Ordinal));
        var helo = received["Received: from ".Length..].Split(' ')[0];
        (helo == "[127.0.0.1]" || (helo.Contains('.', StringComparison.Ordinal) && !helo.StartsWith("localhost", StringComparison.OrdinalIgnoreCase)))
            .Should().BeTrue($"EHLO {helo} is the machine's FQDN or [local address]");
    }
}
