using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Breaker13: SIZE (RFC 1870 §3) is the number of octets sent after 354 with CRLF line ends, not counting dot-stuffing
/// nor the final dot. In-memory content with bare LF, bare CR or no final line end goes out longer than it was given,
/// so declaring its length under-declared the message, and a message over the server's limit on the wire passed the
/// SIZE check, was sent whole and refused only after its data.
/// </summary>
public class DeclaredSizeBreakTests
{
    [Theory]
    [InlineData("a\nb\n", false, 6)]
    [InlineData("a\rb\r", false, 6)]
    [InlineData("a\r\nb", false, 6)]
    [InlineData("", false, 0)]
    [InlineData(".\n..\n", false, 7)]
    [InlineData("a\nb\n", true, 6)]
    [InlineData("x", true, 3)]
    [InlineData("a\r\nb\r\r\n\n\rc", false, 15)]
    public async Task SIZE_declares_the_size_on_the_wire_of_in_memory_content(string content, bool chunking, int expected)
    {
        // One byte per segment: a CR and its LF in different segments are still one pair.
        var bytes = ReadOnlySequenceFactory.OneBytePerSegment(content);
        string[] extensions = chunking ? ["PIPELINING", "SIZE 10000", "CHUNKING"] : ["PIPELINING", "SIZE 10000"];
        var script = Script(Ehlo(extensions), $"C: MAIL FROM:<sender@example.test> SIZE={expected}", "C+ RCPT TO:<one@example.test>");
        if (!chunking)
        {
            script.Expect("DATA", ClientArrival.WithPrevious);
        }

        script.Send("250 ok").Send("550 5.1.1 not here");
        if (chunking)
        {
            script.ReadChunks([], [], "554 5.5.1 no valid recipients");
        }
        else
        {
            script.Send("554 5.5.1 no valid recipients");
        }

        script.Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), bytes).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SIZE_of_a_MemoryStream_is_its_size_on_the_wire_from_where_the_message_starts(bool chunking)
    {
        // 4 bytes before the message; 40 bytes of message, 60 on the wire: 20 LF → CRLF. Then sent whole, from its start.
        var text = string.Concat(Enumerable.Repeat("x\n", 20));
        var stream = new MemoryStream(Encoding.ASCII.GetBytes("skip" + text)) { Position = 4 };
        var message = SmtpMessage.FromStream(Envelope("one@example.test"), stream);
        string[] extensions = chunking ? ["PIPELINING", "SIZE 10000", "CHUNKING"] : ["PIPELINING", "SIZE 10000"];
        var script = Script(Ehlo(extensions), "C: MAIL FROM:<sender@example.test> SIZE=60", "C+ RCPT TO:<one@example.test>");
        script = chunking
            ? script.ExpectBytes(Bdat(text.Replace("\n", "\r\n", StringComparison.Ordinal), last: true), ClientArrival.WithPrevious).Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued")
            : script.Then("C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go").Then(DataLines(text.Replace("\n", "\r\n", StringComparison.Ordinal))).Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(message).Safe()).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Fact]
    public async Task An_LF_message_over_the_limit_on_the_wire_is_NotSent_with_MessageTooLarge_before_MAIL()
    {
        // 60 bytes as given, 80 on the wire (20 LF → CRLF); the server takes 70.
        var content = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("xx\n", 20)));
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING", "SIZE 70"), "C: NOOP", "S: 250 ok"));
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), content).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        result.Exception!.Message.Should().Contain("80");
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "nothing of the message was written");
        await server.WaitAsync();
    }

    [Fact]
    public async Task BINARYMIME_content_is_declared_as_given()
    {
        var content = new byte[] { (byte)'a', 0, (byte)'\n', (byte)'b' };
        var script = Script(
            Ehlo("PIPELINING", "SIZE 10000", "CHUNKING", "BINARYMIME"),
            "C: MAIL FROM:<sender@example.test> SIZE=4 BODY=BINARYMIME",
            "C+ RCPT TO:<one@example.test>",
            "S: 250 ok",
            "S: 550 5.1.1 not here").ReadChunks([], [], "554 5.5.1 no valid recipients").Then(
            "C: NOOP",
            "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(Envelope("one@example.test"), content).Safe()).Outcome.Should().Be(SmtpSendOutcome.Refused);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }
    /// <summary>The size counted equals what the data encoder writes (without dot-stuffing), for any content split anywhere.</summary>
    [Fact]
    public void The_counted_size_is_the_encoders_output_for_random_content_in_random_pieces()
    {
        var random = new Random(13);
        var alphabet = "ab.\r\n"u8.ToArray();
        for (var run = 0; run < 500; run++)
        {
            var content = new byte[random.Next(0, 40)];
            for (var i = 0; i < content.Length; i++)
            {
                content[i] = alphabet[random.Next(alphabet.Length)];
            }

            var encoder = new SmtpDataEncoder { DotStuffing = false };
            var output = new System.Buffers.ArrayBufferWriter<byte>();
            var counter = default(WireSizeCounter);
            for (var at = 0; at < content.Length;)
            {
                var piece = content.AsSpan(at, Math.Min(random.Next(1, 5), content.Length - at));
                encoder.Write(piece, output);
                counter.Add(piece);
                at += piece.Length;
            }

            encoder.CompleteLine(output);
            counter.Total.Should().Be(output.WrittenCount, "content \"{0}\"", SmtpScript.Printable(Encoding.ASCII.GetString(content)));
            SmtpContentRules.DeclaredSize(new System.Buffers.ReadOnlySequence<byte>(content)).Should().Be(output.WrittenCount);
        }
    }
}
