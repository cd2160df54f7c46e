using System.Text;
using MailPipe.Tests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>
/// Issue #14 against the scripted in-memory server: MAIL parameters chosen from the MIME structure and the capabilities
/// (BINARYMIME with BDAT, 8BITMIME, 7-bit preparation, SMTPUTF8 or A-labels), the data byte for byte, and a failing
/// writer that never ends the data.
/// </summary>
public class MimeSendScriptedTests
{
    private const string Greeting = "S: 220 mail.example.test ESMTP";

    [Fact]
    public async Task A_binary_part_goes_as_BINARYMIME_in_BDAT_chunks_byte_for_byte_when_the_server_offers_it()
    {
        var message = MimeTestMessages.BinaryAttachment("bob@example.test");
        var expected = MimeTestMessages.ExpectedData(message);
        var data = new List<byte>();
        var script = Ehlo("PIPELINING", "CHUNKING", "BINARYMIME", "8BITMIME")
            .Then("C: MAIL FROM:<sender@example.test> BODY=BINARYMIME", "C: RCPT TO:<bob@example.test>", "S: 250 ok", "S: 250 ok");
        ReadChunks(script, data);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Envelope.Body.Should().Be(SmtpBodyType.BinaryMime);
        data.ToArray().Should().Equal(expected, "BINARYMIME data is the MIME bytes unchanged (NUL, bare CR and LF included)");
        expected.AsSpan().IndexOf((byte)0).Should().BeGreaterThan(0, "the attachment really is binary");
    }

    [Fact]
    public async Task A_binary_part_on_a_session_that_does_not_use_CHUNKING_is_prepared_for_8BITMIME_and_sent_with_DATA()
    {
        var message = MimeTestMessages.BinaryAttachment("bob@example.test");
        var data = new List<byte>();
        var script = Ehlo("PIPELINING", "CHUNKING", "BINARYMIME", "8BITMIME")
            .Then("C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go");
        ReadData(script, data).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { UseChunking = false });

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Envelope.Body.Should().Be(SmtpBodyType.EightBitMime);
        data.ToArray().Should().Equal(MimeTestMessages.ExpectedData(message), "the data is the message as prepared for 8-bit");
        ((MimePart)((Multipart)message.Body!).Last()).ContentTransferEncoding.Should().Be(ContentEncoding.Base64);
    }

    [Fact]
    public async Task An_8bit_part_goes_with_BODY_8BITMIME_and_arrives_as_WriteTo_wrote_it()
    {
        var message = MimeTestMessages.EightBitText("bob@example.test");
        var expected = MimeTestMessages.ExpectedData(message);
        var data = new List<byte>();
        var script = Ehlo("PIPELINING", "8BITMIME").Then("C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go");
        ReadData(script, data).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        data.ToArray().Should().Equal(expected);
    }

    [Fact]
    public async Task Without_8BITMIME_the_message_is_prepared_for_7_bit_and_sent_without_a_BODY_parameter()
    {
        var message = MimeTestMessages.BinaryAttachment("bob@example.test");
        var data = new List<byte>();
        await using var server = SevenBitServerTakingOneMessage(data);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        var reference = MimeTestMessages.BinaryAttachment("bob@example.test");
        reference.MessageId = message.MessageId!;
        ((Multipart)reference.Body!).Boundary = ((Multipart)message.Body!).Boundary!;
        reference.Prepare(EncodingConstraint.SevenBit);
        data.ToArray().Should().Equal(MimeTestMessages.ExpectedData(reference), "the data is what Prepare(SevenBit) makes of the message");
        data.Should().OnlyContain(b => b < 0x80);
        ((MimePart)((Multipart)message.Body!).Last()).ContentTransferEncoding.Should().Be(ContentEncoding.Base64, "the caller's message was prepared in place, as documented");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_UTF8_address_goes_with_SMTPUTF8_when_offered_else_its_domain_as_an_A_label(bool smtpUtf8)
    {
        var message = MimeTestMessages.EightBitText("bob@bücher.example");
        var script = (smtpUtf8 ? Ehlo("PIPELINING", "8BITMIME", "SMTPUTF8") : Ehlo("PIPELINING", "8BITMIME"))
            .Then(
                smtpUtf8 ? "C: MAIL FROM:<sender@example.test> BODY=8BITMIME SMTPUTF8" : "C: MAIL FROM:<sender@example.test> BODY=8BITMIME",
                smtpUtf8 ? "C: RCPT TO:<bob@bücher.example>" : "C: RCPT TO:<bob@xn--bcher-kva.example>",
                "C: DATA",
                "S: 250 ok",
                "S: 250 ok",
                "S: 354 go");
        ReadData(script, []).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task The_SMTPUTF8_flag_of_an_envelope_of_ones_own_is_chosen_per_connection(bool smtpUtf8)
    {
        // ToSmtpMessage(envelope): "its body type and SMTPUTF8 flag are still chosen per connection". An ASCII message
        // whose envelope asks for SMTPUTF8 was NotSent (ExtensionNotSupported) by a server without it.
        var message = MimeTestMessages.EightBitText("bob@example.test");
        var envelope = new SmtpEnvelope("sender@example.test", "bob@example.test") { SmtpUtf8 = true };
        var script = (smtpUtf8 ? Ehlo("PIPELINING", "8BITMIME", "SMTPUTF8") : Ehlo("PIPELINING", "8BITMIME"))
            .Then(
                smtpUtf8 ? "C: MAIL FROM:<sender@example.test> BODY=8BITMIME SMTPUTF8" : "C: MAIL FROM:<sender@example.test> BODY=8BITMIME",
                "C: RCPT TO:<bob@example.test>",
                "C: DATA",
                "S: 250 ok",
                "S: 250 ok",
                "S: 354 go");
        ReadData(script, []).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message.ToSmtpMessage(envelope)).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Envelope.SmtpUtf8.Should().Be(smtpUtf8);
    }

    [Fact]
    public async Task A_non_ASCII_local_part_without_SMTPUTF8_is_NotSent_before_MAIL()
    {
        var message = MimeTestMessages.EightBitText("jürgen@example.test");
        var script = Ehlo("PIPELINING", "8BITMIME").Then("C: QUIT", "S: 221 bye");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await session.QuitAsync().Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
    }

    [Fact]
    public async Task A_domain_without_an_A_label_form_without_SMTPUTF8_is_NotSent_before_MAIL_and_says_why()
    {
        // A label of 70 non-ASCII letters has no A-label (over 63 octets in punycode, RFC 5890): without SMTPUTF8 it
        // cannot be written; NotSent with ExtensionNotSupported, as a non-ASCII local part (was: ContentReadFailed).
        var recipient = "bob@" + new string('ä', 70) + ".test";
        var message = MimeTestMessages.EightBitText(recipient);
        var script = Ehlo("PIPELINING", "8BITMIME").Then("C: QUIT", "S: 221 bye");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await session.QuitAsync().Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var error = result.Exception.Should().BeAssignableTo<SmtpException>().Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        error.Message.Should().Contain("SMTPUTF8");
    }

    [Fact]
    public async Task An_attachment_stream_that_fails_with_a_cancellation_of_its_own_before_MAIL_is_NotSent_ContentReadFailed()
    {
        // A non-text part without an encoding has its bytes searched before MAIL; a stream that fails there with an
        // OperationCanceledException of its own (an HTTP-backed stream's timeout) escaped SendAsync as a
        // TaskCanceledException although the caller cancelled nothing (mid-message, the same failure is ContentReadFailed).
        var message = MimeTestMessages.EightBitText("bob@example.test");
        var text = (MimeEntity)message.Body!;
        var failing = new MimePart("application", "octet-stream")
        {
            Content = new MimeContent(new CancelledReadStream(Encoding.ASCII.GetBytes(new string('a', 100_000)))),
            FileName = "remote.txt",
        };
        message.Body = new Multipart("mixed") { text, failing };
        var script = Ehlo("PIPELINING", "8BITMIME").Then("C: QUIT", "S: 221 bye");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await session.QuitAsync().Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        result.Exception!.ToString().Should().Contain("the remote read timed out");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_attachment_that_fails_mid_message_never_ends_the_data_and_is_NotSent_ContentReadFailed(bool chunking)
    {
        var message = MimeTestMessages.MultipartWithAttachments("bob@example.test", "carol@example.test", "dave@example.test");
        var failing = new MimePart("application", "octet-stream")
        {
            Content = new MimeContent(new BrokenStream(MimeTestMessages.BinaryBytes(2_000_000))),
            ContentTransferEncoding = ContentEncoding.Base64,
            FileName = "broken.bin",
        };
        ((Multipart)message.Body!).Add(failing);
        var script = chunking
            ? Ehlo("PIPELINING", "CHUNKING", "8BITMIME").Then("C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: RCPT TO:<carol@example.test>", "C: RCPT TO:<dave@example.test>", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 250 ok")
            : Ehlo("PIPELINING", "8BITMIME").Then("C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: RCPT TO:<carol@example.test>", "C: RCPT TO:<dave@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 354 go");
        if (chunking)
        {
            script.Do("CHUNKS UNTIL RSET", async (server, ct) =>
            {
                while (true)
                {
                    var line = Encoding.ASCII.GetString(await server.ReadLineAsync(ct) ?? throw new ScriptMismatchException("closed before RSET"));
                    if (line == "RSET\r\n")
                    {
                        await server.SendAsync("250 reset\r\n"u8.ToArray(), ct);
                        return;
                    }

                    var parts = line.TrimEnd().Split(' ');
                    if (parts is not ["BDAT", _])
                    {
                        throw new ScriptMismatchException($"expected BDAT without LAST, or RSET: {line}");
                    }

                    await server.ReadExactlyAsync(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), ct);
                    await server.SendAsync("250 chunk\r\n"u8.ToArray(), ct);
                }
            }).Then("C: QUIT", "S: 221 bye");
        }
        else
        {
            script.ReadUntilClosed();
        }

        await using var server = ScriptedSmtpServer.Start(script);
        var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await session.DisposeAsync();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var exception = result.Exception.Should().BeAssignableTo<SmtpException>().Which;
        exception.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        exception.InnerException.Should().BeOfType<IOException>().Which.Message.Should().Be(BrokenStream.FailureMessage);
        var wire = server.ReceivedText;
        wire.Should().Contain("Two attachments follow.", "the message was partly sent before the attachment broke");
        if (chunking)
        {
            wire.Should().NotContain(" LAST", "no last chunk");
        }
        else
        {
            wire.Should().NotMatchRegex(@"\r\n\.\r\n", "no final dot (a dot line of the content goes dot-stuffed)");
        }
    }

    [Fact]
    public async Task A_7bit_message_to_a_UTF8_mailbox_on_an_SMTPUTF8_server_is_sent_with_its_UTF8_header()
    {
        // The MIME structure is 7-bit (quoted-printable), but the To field holds the UTF-8 mailbox (RFC 6532): the
        // header carries 8-bit octets, which an SMTPUTF8 server (which offers 8BITMIME too) takes.
        var message = MimeTestMessages.EightBitText("jürgen@bücher.example");
        ((TextPart)message.Body!).ContentTransferEncoding = ContentEncoding.QuotedPrintable;
        var data = new List<byte>();
        var script = Ehlo("PIPELINING", "8BITMIME", "SMTPUTF8")
            .Then("C: MAIL FROM:<sender@example.test> BODY=8BITMIME SMTPUTF8", "C: RCPT TO:<jürgen@bücher.example>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go");
        ReadData(script, data).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Exception.Should().BeNull();
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        data.ToArray().Should().Equal(MimeTestMessages.ExpectedData(message));
    }

    [Fact]
    public async Task A_parsed_message_with_a_raw_UTF8_header_and_7bit_parts_goes_with_BODY_8BITMIME_when_offered()
    {
        // Messages loaded from disk often carry raw UTF-8 in a header (RFC 6532 style) over 7-bit parts.
        var raw = "From: sender@example.test\r\nTo: bob@example.test\r\nSubject: Grüße\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\nplain text\r\n";
        var message = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(raw)));
        var data = new List<byte>();
        var script = Ehlo("PIPELINING", "8BITMIME")
            .Then("C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go");
        ReadData(script, data).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Exception.Should().BeNull();
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        data.ToArray().Should().Equal(Encoding.UTF8.GetBytes(raw));
    }

    [Fact]
    public async Task A_retry_after_the_connection_was_lost_inside_the_data_sends_the_message_whole()
    {
        // The attachment's stream was read part of the way by the first send: the retry must start it again (MimeKit
        // takes seekable content streams only).
        var bytes = MimeTestMessages.BinaryBytes(600_000);
        var message = MimeTestMessages.MultipartWithAttachments("bob@example.test", "carol@example.test", "dave@example.test");
        ((Multipart)message.Body!).Add(new MimePart("application", "octet-stream") { Content = new MimeContent(new MemoryStream(bytes, writable: false)), ContentTransferEncoding = ContentEncoding.Base64, FileName = "big.bin" });
        var expected = MimeTestMessages.ExpectedData(message);
        var smtp = message.ToSmtpMessage();
        string[] transaction = ["C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: RCPT TO:<carol@example.test>", "C: RCPT TO:<dave@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 354 go"];

        // The first server takes 200,000 bytes of the data and drops the connection: nothing delivered. NotSent when the
        // drop is seen before the end of data is written; Unknown when the socket's buffers took the whole message first
        // (the client wrote its end of data and cannot know: a loaded machine's timing, CI run of a flake loop).
        var dropping = Ehlo("PIPELINING", "8BITMIME").Then(transaction).Do("READ SOME", (server, ct) => server.ReadExactlyAsync(200_000, ct)).Drop();
        await using (var server = ScriptedSmtpServer.Start(dropping))
        {
            using var session = await ConnectedAsync(server);
            (await session.SendAsync(smtp).Safe()).Outcome.Should().BeOneOf(SmtpSendOutcome.NotSent, SmtpSendOutcome.Unknown);
        }

        var data = new List<byte>();
        await using var second = ScriptedSmtpServer.Start(ReadData(Ehlo("PIPELINING", "8BITMIME").Then(transaction), data).Then("S: 250 queued"));
        using var retrySession = await ConnectedAsync(second);
        var retry = await retrySession.SendAsync(smtp).Safe();
        await second.WaitAsync();

        retry.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        data.ToArray().Should().Equal(expected, "the retry sends the whole message again");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_body_line_over_998_octets_is_re_encoded_so_that_no_line_on_the_wire_is_longer(bool eightBitMime)
    {
        // Minified HTML from BodyBuilder: one long line in a part without a declared encoding. RFC 5321 §4.5.3.1.6
        // allows 998 octets a line; MimeKit's Prepare re-encodes such a part (MailKit's SmtpClient always prepares).
        var html = "<html><body>" + string.Concat(Enumerable.Repeat("<p>Grüße, a long minified line.</p>", 150)) + "</body></html>";
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse("bob@example.test"));
        message.Subject = "long line";
        message.Body = new BodyBuilder { HtmlBody = html }.ToMessageBody();
        var data = new List<byte>();
        var script = eightBitMime
            ? Ehlo("PIPELINING", "8BITMIME").Then("C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            : Ehlo("PIPELINING").Then("C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<bob@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go");
        ReadData(script, data).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        var longest = Encoding.Latin1.GetString(data.ToArray()).Split("\r\n").Max(l => l.Length);
        longest.Should().BeLessThanOrEqualTo(998);
        MimeMessage.Load(new MemoryStream(data.ToArray())).HtmlBody.Should().Be(html, "the content is the same, only its transfer encoding changed");
    }

    [Fact]
    public async Task A_message_without_a_long_line_is_sent_unprepared_and_the_callers_parts_keep_their_transfer_encodings()
    {
        // MimeKit's 998-octet preparation runs only for a message with a longer line: this one's parts stay as they were.
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse("bob@example.test"));
        message.Subject = "short lines";
        var text = new TextPart("plain") { Text = "Grüße\r\n" + string.Concat(Enumerable.Repeat(new string('x', 998) + "\r\n", 3)) };
        text.ContentTransferEncoding = ContentEncoding.Default;
        message.Body = text;
        var data = new List<byte>();
        var script = Ehlo("PIPELINING", "8BITMIME").Then("C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go");
        ReadData(script, data).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        text.ContentTransferEncoding.Should().Be(ContentEncoding.Default, "no preparation ran");
        Encoding.Latin1.GetString(data.ToArray()).Split("\r\n").Max(l => l.Length).Should().Be(998);
    }

    internal static SmtpScript Ehlo(params string[] extensions)
    {
        var lines = new List<string> { Greeting, "C: EHLO client.example.test", "S: 250-mail.example.test" };
        for (var i = 0; i < extensions.Length; i++)
        {
            lines.Add((i == extensions.Length - 1 ? "S: 250 " : "S: 250-") + extensions[i]);
        }

        return SmtpScript.Parse([.. lines]);
    }

    internal static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server, SmtpSessionOptions? options = null)
    {
        var session = new AsyncSmtpSession(options ?? new SmtpSessionOptions { ChunkSize = 16 * 1024 });
        await session.ConnectAsync(server.ClientStream).Safe();
        (await session.EhloAsync("client.example.test").Safe()).Code.Should().Be(250);
        return session;
    }

    /// <summary>A scripted server without 8BITMIME that takes one message for bob@example.test with DATA (no BODY parameter), its data into <paramref name="data"/>.</summary>
    internal static ScriptedSmtpServer SevenBitServerTakingOneMessage(List<byte> data)
    {
        var script = Ehlo("PIPELINING").Then("C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<bob@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go");
        ReadData(script, data).Then("S: 250 queued");
        return ScriptedSmtpServer.Start(script);
    }

    /// <summary>The server reads message data to the final dot, undoing dot-stuffing, into <paramref name="data"/>.</summary>
    internal static SmtpScript ReadData(SmtpScript script, List<byte> data) => script.Do("READ DATA", async (server, ct) =>
    {
        while (true)
        {
            var line = await server.ReadLineAsync(ct) ?? throw new ScriptMismatchException("closed inside DATA");
            if (line.AsSpan().SequenceEqual(".\r\n"u8))
            {
                return;
            }

            data.AddRange(line.Length > 0 && line[0] == (byte)'.' ? line[1..] : line);
        }
    });

    /// <summary>The server reads BDAT chunks until LAST, answering each, into <paramref name="data"/>.</summary>
    private static SmtpScript ReadChunks(SmtpScript script, List<byte> data) => script.Do("READ BDAT", async (server, ct) =>
    {
        while (true)
        {
            var header = Encoding.ASCII.GetString(await server.ReadLineAsync(ct) ?? throw new ScriptMismatchException("closed inside BDAT")).TrimEnd();
            var parts = header.Split(' ');
            if (parts is not (["BDAT", _] or ["BDAT", _, "LAST"]))
            {
                throw new ScriptMismatchException($"expected BDAT: {header}");
            }

            data.AddRange(await server.ReadExactlyAsync(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), ct));
            await server.SendAsync("250 ok\r\n"u8.ToArray(), ct);
            if (parts.Length == 3)
            {
                return;
            }
        }
    });

    /// <summary>Gives its bytes, then fails.</summary>
    private sealed class BrokenStream(byte[] prefix) : MemoryStream(prefix, writable: false)
    {
        public const string FailureMessage = "attachment storage went away";

        public override int Read(byte[] buffer, int offset, int count) => Position >= 300_000 ? throw new IOException(FailureMessage) : base.Read(buffer, offset, count);

        public override int Read(Span<byte> buffer) => Position >= 300_000 ? throw new IOException(FailureMessage) : base.Read(buffer);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Position >= 300_000 ? throw new IOException(FailureMessage) : base.ReadAsync(buffer, offset, count, cancellationToken);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Position >= 300_000 ? throw new IOException(FailureMessage) : base.ReadAsync(buffer, cancellationToken);
    }

    /// <summary>A stream whose reads past its first octets fail as an HTTP-backed stream's timeout does (a TaskCanceledException of its own).</summary>
    private sealed class CancelledReadStream(byte[] content) : MemoryStream(content, writable: false)
    {
        public override int Read(byte[] buffer, int offset, int count) => Position >= 16 ? throw new TaskCanceledException("the remote read timed out") : base.Read(buffer, offset, Math.Min(count, 16));

        public override int Read(Span<byte> buffer)
        {
            var rented = new byte[buffer.Length];
            var read = Read(rented, 0, rented.Length);
            rented.AsSpan(0, read).CopyTo(buffer);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer, offset, count));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));
    }
}
