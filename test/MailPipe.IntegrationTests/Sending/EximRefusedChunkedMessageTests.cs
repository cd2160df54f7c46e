using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>
/// A message of more than one BDAT chunk whose recipients are all refused, pipelined ahead of a good one, against Exim
/// (PIPELINING, CHUNKING). Exim answers every chunk of a transaction without a valid recipient with 503, counts each as a
/// protocol error and resets the connection after three (smtp_max_synprot_errors): the transactions pipelined behind it
/// came back Unknown, never delivered, and could not be retried safely. The sender now waits for the RCPT replies before
/// the first of several chunks, sends no content when every recipient was refused (Refused), and the batch goes on.
/// </summary>
public sealed class EximRefusedChunkedMessageTests
{
    /// <summary>1 MiB: four chunks of the default 256 KiB, more than Exim's three protocol errors.</summary>
    private static readonly byte[] Large = Encoding.ASCII.GetBytes("Subject: large, refused\r\n\r\n" + string.Concat(Enumerable.Repeat(new string('x', 1022) + "\r\n", 1024)));

    [Theory]
    [InlineData("bytes")]
    [InlineData("stream")]
    public async Task A_large_message_to_refused_recipients_only_is_Refused_without_its_content_and_the_next_one_of_the_batch_is_delivered(string source)
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.HelloAsync("client.example.test");
        session.Capabilities.SupportsChunking.Should().BeTrue();
        session.Capabilities.SupportsPipelining.Should().BeTrue();
        var refusedEnvelope = new SmtpEnvelope("sender@example.test", "unknown-a@example.test", "nosuch-b@example.test");
        var recipient = TestServers.UniqueRecipient("bdat-after-refused");
        var id = $"<{Guid.NewGuid():N}@example.test>";
        var small = Encoding.ASCII.GetBytes($"Subject: small, after a refused large one\r\nMessage-Id: {id}\r\n\r\nDelivered.\r\n");
        SmtpMessage[] messages =
        [
            source == "bytes" ? SmtpMessage.FromBytes(refusedEnvelope, Large) : SmtpMessage.FromStream(refusedEnvelope, new MemoryStream(Large)),
            SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", recipient), small),
        ];

        var results = await session.SendBatchAsync(messages);

        results[1].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[1].ToString());
        results[0].Outcome.Should().Be(SmtpSendOutcome.Refused, results[0].ToString());
        results[0].MailReply!.Code.Should().Be(250);
        results[0].Recipients.Select(r => r.Reply?.Code).Should().Equal(550, 550);
        results[0].DataReply.Should().BeNull("no chunk of it was sent");
        results[0].FinalReply.Should().BeNull();
        session.IsConnected.Should().BeTrue("no chunk went to a transaction without recipients, so Exim counted no protocol error");
        (await session.NoopAsync()).Code.Should().Be(250);

        var stored = Encoding.ASCII.GetString(await Maildir.WaitForEximAsync(recipient));
        stored.Should().Contain("Message-Id: " + id);
    }

    [Fact]
    public async Task The_shared_sender_delivers_the_messages_batched_behind_a_large_refused_one()
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.EximPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "pool-test.example.test",
            MaxConnections = 1,
        });
        var recipients = Enumerable.Range(0, 3).Select(_ => TestServers.UniqueRecipient("pool-after-refused")).ToArray();
        SmtpMessage[] messages =
        [
            SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", "unknown-d@example.test"), Large),
            .. recipients.Select(r => SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", r), Encoding.ASCII.GetBytes($"Subject: pooled\r\n\r\nfor {r}\r\n"))),
        ];

        var results = await sender.SendBatchAsync(messages);

        results.Skip(1).Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted, string.Join("\n", results));
        results[0].Outcome.Should().Be(SmtpSendOutcome.Refused, results[0].ToString());
        results[0].DataReply.Should().BeNull();
        foreach (var recipient in recipients)
        {
            Encoding.ASCII.GetString(await Maildir.WaitForEximAsync(recipient)).Should().Contain("for " + recipient);
        }
    }

    [Fact]
    public async Task A_large_message_with_one_recipient_accepted_still_goes_out_in_chunks_and_arrives_whole()
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.HelloAsync("client.example.test");
        var recipient = TestServers.UniqueRecipient("bdat-large");

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", "unknown-c@example.test", recipient), Large);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Recipients.Select(r => r.Reply?.Code).Should().Equal(550, 250);
        Maildir.StripTraceHeaders(await Maildir.WaitForEximAsync(recipient)).Should().Equal(Large);
    }
}
