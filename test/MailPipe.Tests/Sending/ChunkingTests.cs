using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>BDAT framing (RFC 3030 §2) and BINARYMIME (§3): exact headers and chunk bytes, normalisation, chunk sizes.</summary>
public class ChunkingTests
{
    private static SmtpMessage Message(string source, SmtpEnvelope envelope, byte[] content)
    {
        switch (source)
        {
            case "bytes":
                return SmtpMessage.FromBytes(envelope, content);
            case "sequence":
                return SmtpMessage.FromSequence(envelope, ReadOnlySequenceFactory.Chunked(content, Enumerable.Repeat(333, content.Length / 333)));
            case "stream":
                return SmtpMessage.FromStream(envelope, new MemoryStream(content));
            default:
                var pipe = new Pipe();
                pipe.Writer.Write(content);
                pipe.Writer.Complete();
                return SmtpMessage.FromPipeReader(envelope, pipe.Reader);
        }
    }

    [Fact]
    public async Task BDAT_LAST_carries_the_content_normalised_to_CRLF_without_dot_stuffing_and_with_a_final_CRLF()
    {
        const string content = "Subject: x\n.leading dot\r\n..two dots\rbare cr\r\n.\r\nend";
        const string wire = "Subject: x\r\n.leading dot\r\n..two dots\r\nbare cr\r\n.\r\nend\r\n";
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
            .ExpectRaw($"BDAT {wire.Length} LAST\r\n{wire}", ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(content)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "nothing follows the last chunk: no dot, no extra CRLF");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Content_that_already_ends_with_CRLF_gets_no_second_one()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
            .ExpectRaw("BDAT 21 LAST\r\n" + SmallText, ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("bytes")]
    [InlineData("sequence")]
    [InlineData("stream")]
    [InlineData("pipe")]
    public async Task Content_longer_than_ChunkSize_is_split_into_chunks_of_ChunkSize(string source)
    {
        var content = Encoding.ASCII.GetBytes(Lines(50, 50));
        content.Should().HaveCount(2500);
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
            .ExpectBytes(Bdat(content.AsSpan(0, 1024), last: false), ClientArrival.AfterReplies)
            .ExpectBytes(Bdat(content.AsSpan(1024, 1024), last: false), ClientArrival.WithPrevious)
            .ExpectBytes(Bdat(content.AsSpan(2048), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 2.0.0 chunk 1", "S: 250 2.0.0 chunk 2", "S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = 1024 });
        var before = session.RoundTrips;

        var result = await session.SendAsync(Message(source, Envelope("one@example.test"), content)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.FinalReply!.Text.Should().Be("queued");
        result.DataReply.Should().BeNull();
        (session.RoundTrips - before).Should().Be(2, "the envelope's replies are waited for before the first of several chunks; then every chunk goes in one pipelined flush");
        await server.WaitAsync();
    }

    /// <summary>
    /// Breaker10: the chunk buffer was allocated at ChunkSize + 1024 bytes before the first byte: int.MaxValue overflowed
    /// (NotSent, "the connection was closed", after a retry in the pool), int.MaxValue - 1024 failed the allocation
    /// (NotSent without a reason), 1 GiB took 1 GiB per connection for a message of 21 bytes.
    /// </summary>
    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(int.MaxValue - 1024)]
    public async Task A_huge_ChunkSize_sends_a_small_message_in_one_chunk(int chunkSize)
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
            .ExpectRaw("BDAT 21 LAST\r\n" + SmallText, ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = chunkSize });

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.ToString());
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Content_of_exactly_a_multiple_of_ChunkSize_ends_with_its_last_full_chunk_as_BDAT_LAST(int chunks)
    {
        // It ended with an empty BDAT 0 LAST after the last full chunk; one chunk's worth also cost a round trip (the
        // envelope's replies were waited for before "the first of several" chunks).
        var content = Encoding.ASCII.GetBytes(Lines(16 * chunks, 64));
        content.Should().HaveCount(1024 * chunks);
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>");
        if (chunks == 1)
        {
            script.ExpectBytes(Bdat(content, last: true), ClientArrival.WithPrevious).Then("S: 250 ok", "S: 250 ok");
        }
        else
        {
            script.Then("S: 250 ok", "S: 250 ok");
            for (var i = 0; i < chunks; i++)
            {
                // A chunk that is not the last one waits for the envelope's replies before it goes out.
                script.ExpectBytes(Bdat(content.AsSpan(1024 * i, 1024), last: i == chunks - 1), i == 0 ? ClientArrival.AfterReplies : ClientArrival.WithPrevious);
            }

            for (var i = 1; i < chunks; i++)
            {
                script.Send("250 2.0.0 chunk ok");
            }
        }

        script.Then("S: 250 2.0.0 queued", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = 1024 });
        var before = session.RoundTrips;

        var result = await session.SendAsync(Envelope("one@example.test"), content).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.FinalReply!.Text.Should().Be("queued");
        (session.RoundTrips - before).Should().Be(chunks == 1 ? 1 : 2);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("stream")]
    [InlineData("pipe")]
    public async Task Streamed_content_of_exactly_ChunkSize_is_one_BDAT_LAST_pipelined_with_its_envelope(string source)
    {
        var content = Encoding.ASCII.GetBytes(Lines(16, 64));
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
            .ExpectBytes(Bdat(content, last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = 1024 });

        var result = await session.SendAsync(Message(source, Envelope("one@example.test"), content)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Without_PIPELINING_each_chunk_waits_for_its_reply()
    {
        var content = Encoding.ASCII.GetBytes(Lines(50, 50));
        var script = Script(Ehlo("CHUNKING"), "C> MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 250 ok")
            .ExpectBytes(Bdat(content.AsSpan(0, 1024), last: false), ClientArrival.AfterReplies)
            .Send("250 2.0.0 chunk 1")
            .ExpectBytes(Bdat(content.AsSpan(1024, 1024), last: false), ClientArrival.AfterReplies)
            .Send("250 2.0.0 chunk 2")
            .ExpectBytes(Bdat(content.AsSpan(2048), last: true), ClientArrival.AfterReplies)
            .Send("250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = 1024 });
        var before = session.RoundTrips;

        var result = await session.SendAsync(Envelope("one@example.test"), content).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(5);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Without_PIPELINING_a_refused_chunk_stops_the_chunks_and_the_next_transaction_starts_with_RSET()
    {
        var content = Encoding.ASCII.GetBytes(Lines(50, 50));
        var script = Script(Ehlo("CHUNKING"), "C> MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 250 ok")
            .ExpectBytes(Bdat(content.AsSpan(0, 1024), last: false), ClientArrival.AfterReplies)
            .Then(
                "S: 552 5.3.4 message too big for this mailbox",
                "C> RSET",
                "S: 250 2.0.0 reset",
                "C> MAIL FROM:<sender@example.test>",
                "S: 250 ok",
                "C> RCPT TO:<two@example.test>",
                "S: 250 ok")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.AfterReplies)
            .Send("250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = 1024 });

        var refused = await session.SendAsync(Envelope("one@example.test"), content).Safe();

        refused.Outcome.Should().Be(SmtpSendOutcome.Refused);
        refused.DataReply!.Code.Should().Be(552);
        refused.FinalReply.Should().BeNull();
        refused.IsTransientFailure.Should().BeFalse();

        var next = await session.SendAsync(Envelope("two@example.test"), Ascii(SmallText)).Safe();
        next.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_PIPELINING_a_refused_chunk_is_kept_as_the_DataReply_and_the_message_is_Refused()
    {
        var content = Encoding.ASCII.GetBytes(Lines(50, 50));
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
            .ExpectBytes(Bdat(content.AsSpan(0, 1024), last: false), ClientArrival.AfterReplies)
            .ExpectBytes(Bdat(content.AsSpan(1024, 1024), last: false), ClientArrival.WithPrevious)
            .ExpectBytes(Bdat(content.AsSpan(2048), last: true), ClientArrival.WithPrevious)
            .Then("S: 452 4.3.1 out of memory", "S: 503 5.5.1 previous chunk failed", "S: 503 5.5.1 previous chunk failed");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = 1024 });

        var result = await session.SendAsync(Envelope("one@example.test"), content).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.DataReply!.Code.Should().Be(452, "the first refused chunk");
        result.FinalReply!.Code.Should().Be(503);
        result.IsTransientFailure.Should().BeTrue("the chunk was refused with 4yz; the 503s only follow from it");
        session.IsConnected.Should().BeTrue();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("bytes")]
    [InlineData("stream")]
    [InlineData("pipe")]
    public async Task Normalisation_across_chunk_boundaries_keeps_every_line_end_whole(string source)
    {
        // A CR as the last byte of a chunk-sized piece and its LF in the next; bare LFs and bare CRs throughout.
        var text = new StringBuilder();
        text.Append('a', 1023).Append("\r\n");
        for (var i = 0; text.Length < 5000; i++)
        {
            text.Append("line ").Append(i).Append(i % 3 == 0 ? "\n" : i % 3 == 1 ? "\r" : "\r\n");
        }

        text.Append("no final line end");
        var content = Encoding.ASCII.GetBytes(text.ToString());
        var expected = Encoding.ASCII.GetBytes(text.ToString().Replace("\r\n", "\n").Replace('\r', '\n').Replace("\n", "\r\n") + "\r\n");
        List<int> sizes = [];
        List<byte> received = [];
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
            .ReadChunks(sizes, received);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = 1024 });

        var result = await session.SendAsync(Message(source, Envelope("one@example.test"), content)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
        received.ToArray().Should().Equal(expected);
        sizes.Count.Should().BeGreaterThan(4);
        sizes.SkipLast(1).Should().OnlyContain(size => size >= 1024, "a chunk goes out once it holds ChunkSize bytes");
    }

    [Fact]
    public async Task BODY_BINARYMIME_sends_the_bytes_unchanged()
    {
        byte[] content = [0x00, 0xFF, (byte)'\n', (byte)'.', (byte)'\r', (byte)'x', 0xC3, 0x28, (byte)'\r', (byte)'\n', (byte)'.', (byte)'\r'];
        var script = Script(Ehlo("PIPELINING", "SIZE 1000", "CHUNKING", "BINARYMIME"), $"C: MAIL FROM:<sender@example.test> SIZE={content.Length} BODY=BINARYMIME", "C+ RCPT TO:<one@example.test>")
            .ExpectBytes(Bdat(content, last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(new SmtpEnvelope(Sender, "one@example.test") { Body = SmtpBodyType.BinaryMime }, content).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "no CRLF is added to binary content");
        await server.WaitAsync();
    }

    [Fact]
    public async Task BODY_BINARYMIME_content_longer_than_ChunkSize_is_split_exactly()
    {
        var content = new byte[2500];
        new Random(42).NextBytes(content);
        var script = Script(Ehlo("PIPELINING", "CHUNKING", "BINARYMIME"), "C: MAIL FROM:<sender@example.test> BODY=BINARYMIME", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
            .ExpectBytes(Bdat(content.AsSpan(0, 1024), last: false), ClientArrival.AfterReplies)
            .ExpectBytes(Bdat(content.AsSpan(1024, 1024), last: false), ClientArrival.WithPrevious)
            .ExpectBytes(Bdat(content.AsSpan(2048), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = 1024 });

        var result = await session.SendAsync(new SmtpEnvelope(Sender, "one@example.test") { Body = SmtpBodyType.BinaryMime }, content).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("PIPELINING,CHUNKING", true)]
    [InlineData("PIPELINING,BINARYMIME", true)]
    [InlineData("PIPELINING,CHUNKING,BINARYMIME", false)]
    [InlineData("CHUNKING", true)]
    public async Task BODY_BINARYMIME_is_not_sent_without_BINARYMIME_and_CHUNKING(string extensions, bool useChunking)
    {
        var script = Script(Ehlo(extensions.Split(',')), "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { UseChunking = useChunking });
        var before = session.RoundTrips;

        var result = await session.SendAsync(new SmtpEnvelope(Sender, "one@example.test") { Body = SmtpBodyType.BinaryMime }, new byte[] { 0, 1, 2 }).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.IsTransientFailure.Should().BeFalse();
        result.MailReply.Should().BeNull();
        result.Recipients.Should().OnlyContain(r => r.Reply == null);
        (session.RoundTrips - before).Should().Be(0);
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "nothing was written for the message");
        await server.WaitAsync();
    }
}
