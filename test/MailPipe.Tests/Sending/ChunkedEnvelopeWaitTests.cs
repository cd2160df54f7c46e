using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// With PIPELINING and CHUNKING, a message of more than one chunk waits for its MAIL and RCPT replies before its first
/// chunk, and sends no content when every recipient (or MAIL) was refused: Exim answers each chunk of a transaction
/// without a valid recipient with 503, counts it as a protocol error and resets the connection after three, taking
/// the transactions pipelined behind with it (Unknown, never delivered). A message of one chunk stays fully pipelined.
/// </summary>
public class ChunkedEnvelopeWaitTests
{
    /// <summary>2,500 bytes: two chunks of 1,024 and a last one with ChunkSize = 1024.</summary>
    private static readonly byte[] Large = Encoding.ASCII.GetBytes(Lines(50, 50));

    private static SmtpSessionOptions Options => new() { ChunkSize = 1024 };

    private static SmtpMessage LargeMessage(string source, SmtpEnvelope envelope) =>
        source == "stream" ? SmtpMessage.FromStream(envelope, new MemoryStream(Large)) : SmtpMessage.FromBytes(envelope, Large);

    [Theory]
    [InlineData("bytes")]
    [InlineData("stream")]
    public async Task The_first_chunk_of_several_waits_for_the_RCPT_replies_and_the_rest_follow_pipelined(string source)
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
            .ExpectBytes(Bdat(Large.AsSpan(0, 1024), last: false), ClientArrival.AfterReplies)
            .ExpectBytes(Bdat(Large.AsSpan(1024, 1024), last: false), ClientArrival.WithPrevious)
            .ExpectBytes(Bdat(Large.AsSpan(2048), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 2.0.0 chunk 1", "S: 250 2.0.0 chunk 2", "S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, Options);
        var before = session.RoundTrips;

        var result = await session.SendAsync(LargeMessage(source, Envelope("one@example.test"))).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.FinalReply!.Text.Should().Be("queued");
        (session.RoundTrips - before).Should().Be(2, "the envelope's replies, then the chunks");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_message_of_one_chunk_stays_pipelined_with_its_envelope()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
            .ExpectRaw("BDAT 21 LAST\r\n" + SmallText, ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, Options);
        var before = session.RoundTrips;

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(1);
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("bytes")]
    [InlineData("stream")]
    public async Task A_large_message_whose_recipients_are_all_refused_sends_no_chunk_and_the_batch_goes_on(string source)
    {
        // The transaction before it is answered in the same wait (queue order); the one after starts with RSET.
        var script = Script(
                Ehlo("PIPELINING", "CHUNKING"),
                "C: MAIL FROM:<sender@example.test>",
                "C+ RCPT TO:<m0@example.test>")
            .ExpectRaw($"BDAT {Content(0).Length} LAST\r\n{Content(0)}", ClientArrival.WithPrevious)
            .Then(
                "C+ RSET",
                "C+ MAIL FROM:<sender@example.test>",
                "C+ RCPT TO:<unknown-a@example.test>",
                "C+ RCPT TO:<unknown-b@example.test>",
                "S: 250 ok",
                "S: 250 ok",
                "S: 250 2.0.0 queued 0",
                "S: 250 reset",
                "S: 250 ok",
                "S: 550 no such user a",
                "S: 550 no such user b",
                "C> RSET",
                "C+ MAIL FROM:<sender@example.test>",
                "C+ RCPT TO:<m2@example.test>")
            .ExpectRaw($"BDAT {Content(2).Length} LAST\r\n{Content(2)}", ClientArrival.WithPrevious)
            .Then("S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 2", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, Options);

        var results = await session.SendBatchAsync([Message(0), LargeMessage(source, Envelope("unknown-a@example.test", "unknown-b@example.test")), Message(2)]).Safe();

        results[0].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[0].ToString());
        results[1].Outcome.Should().Be(SmtpSendOutcome.Refused, results[1].ToString());
        results[1].Recipients.Select(r => r.Reply!.Text).Should().Equal("no such user a", "no such user b");
        results[1].DataReply.Should().BeNull();
        results[1].FinalReply.Should().BeNull();
        results[1].Exception.Should().BeNull();
        results[2].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[2].ToString());
        results[2].FinalReply!.Text.Should().Be("queued 2");
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "no chunk of the refused message is left on the wire");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_large_message_whose_MAIL_is_refused_sends_no_chunk()
    {
        var script = Script(
                Ehlo("PIPELINING", "CHUNKING"),
                "C: MAIL FROM:<sender@example.test>",
                "C+ RCPT TO:<one@example.test>",
                "S: 550 sender refused",
                "S: 503 no valid MAIL",
                "C> RSET",
                "S: 250 reset");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, Options);

        var result = await session.SendAsync(Envelope("one@example.test"), Large).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.MailReply!.Code.Should().Be(550);
        result.DataReply.Should().BeNull();
        (await session.RsetAsync().Safe()).Code.Should().Be(250, "RSET comes next, not a chunk");
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_the_concurrent_reader_the_first_chunk_still_waits_for_the_RCPT_replies()
    {
        // MAIL and 70 RCPTs: more replies than the writer reads itself, so a concurrent reader reads them.
        var (script, recipients) = SeventyRecipients(lastAccepted: true);
        script.ExpectBytes(Bdat(Large.AsSpan(0, 1024), last: false), ClientArrival.AfterReplies)
            .ExpectBytes(Bdat(Large.AsSpan(1024, 1024), last: false), ClientArrival.WithPrevious)
            .ExpectBytes(Bdat(Large.AsSpan(2048), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 2.0.0 chunk 1", "S: 250 2.0.0 chunk 2", "S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, Options);

        var result = await session.SendAsync(Envelope(recipients), Large).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.AcceptedRecipients.Should().ContainSingle().Which.Address.Should().Be("r69@example.test");
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_the_concurrent_reader_every_recipient_refused_sends_no_chunk()
    {
        var (script, recipients) = SeventyRecipients(lastAccepted: false);
        script.Then("C> RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<two@example.test>")
            .ExpectRaw("BDAT 21 LAST\r\n" + SmallText, ClientArrival.WithPrevious)
            .Then("S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, Options);

        var results = await session.SendBatchAsync([SmtpMessage.FromBytes(Envelope(recipients), Large), SmtpMessage.FromBytes(Envelope("two@example.test"), Ascii(SmallText))]).Safe();

        results[0].Outcome.Should().Be(SmtpSendOutcome.Refused, results[0].ToString());
        results[0].Recipients.Should().OnlyContain(r => r.Reply!.Code == 550);
        results[1].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[1].ToString());
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_connection_lost_while_the_first_chunk_waits_leaves_the_message_NotSent_not_Unknown()
    {
        var script = Script(
                Ehlo("PIPELINING", "CHUNKING"),
                "C: MAIL FROM:<sender@example.test>",
                "C+ RCPT TO:<one@example.test>",
                "S: 250 ok",
                "DROP");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, Options);

        var result = await session.SendAsync(Envelope("one@example.test"), Large).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>();
        result.IsTransientFailure.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    /// <summary>A CHUNKING server's script to the replies of MAIL (250) and 70 pipelined RCPTs (550, the last one 250 when <paramref name="lastAccepted"/>).</summary>
    private static (SmtpScript Script, string[] Recipients) SeventyRecipients(bool lastAccepted)
    {
        var recipients = Enumerable.Range(0, 70).Select(i => $"r{i}@example.test").ToArray();
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>");
        foreach (var recipient in recipients)
        {
            script.Expect($"RCPT TO:<{recipient}>", ClientArrival.WithPrevious);
        }

        script.Send("250 ok");
        for (var i = 0; i < recipients.Length; i++)
        {
            script.Send(lastAccepted && i == recipients.Length - 1 ? "250 ok" : "550 no such user");
        }

        return (script, recipients);
    }
}
