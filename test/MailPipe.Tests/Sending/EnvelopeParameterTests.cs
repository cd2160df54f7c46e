using System.IO.Pipelines;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Extensions as typed options: the MAIL and RCPT parameters that follow from the envelope and the server's
/// capabilities (SIZE, BODY, SMTPUTF8, DSN, REQUIRETLS, raw parameters), and the sends that are not attempted.
/// </summary>
public class EnvelopeParameterTests
{
    /// <summary>
    /// Sends <paramref name="envelope"/> with <paramref name="content"/> to a server offering PIPELINING and
    /// <paramref name="extensions"/>, expecting exactly <paramref name="mailLine"/> and <paramref name="rcptLines"/>;
    /// the server refuses the recipients so that the test is about the envelope only.
    /// </summary>
    private static async Task<SmtpSendResult> SendExpectingAsync(string[] extensions, SmtpEnvelope envelope, byte[] content, string mailLine, params string[] rcptLines)
    {
        var script = Script(Ehlo(["PIPELINING", .. extensions]), $"C: {mailLine}");
        foreach (var rcpt in rcptLines)
        {
            script.Expect(rcpt, ClientArrival.WithPrevious);
        }

        script.Expect("DATA", ClientArrival.WithPrevious).Send("250 ok");
        foreach (var _ in rcptLines)
        {
            script.Send("550 5.1.1 not here");
        }

        script.Send("554 5.5.1 no valid recipients");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(envelope, content).Safe();

        await server.WaitAsync();
        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        return result;
    }

    /// <summary>Expects the send not to be attempted: nothing written (the next command the server reads is NOOP).</summary>
    private static async Task<SmtpSendResult> SendNotAttemptedAsync(string[] extensions, SmtpMessage message, SmtpSessionOptions? options = null)
    {
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo(["PIPELINING", .. extensions]), "C: NOOP", "S: 250 ok"));
        using var session = await ConnectedAsync(server, options);
        var before = session.RoundTrips;

        var result = await session.SendAsync(message).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().NotBeNull();
        result.MailReply.Should().BeNull();
        result.Recipients.Should().OnlyContain(r => r.Reply == null);
        result.IsTransientFailure.Should().BeFalse();
        (session.RoundTrips - before).Should().Be(0);
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "nothing was written for the message");
        await server.WaitAsync();
        return result;
    }

    // ---- SIZE (RFC 1870) ----

    [Fact]
    public async Task SIZE_declares_the_content_length_when_the_server_offers_SIZE()
    {
        await SendExpectingAsync(["SIZE 10000"], Envelope("one@example.test"), Ascii(SmallText), "MAIL FROM:<sender@example.test> SIZE=21", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task SIZE_without_a_limit_still_declares_the_length()
    {
        await SendExpectingAsync(["SIZE"], Envelope("one@example.test"), Ascii(new string('a', 4998) + "\r\n"), "MAIL FROM:<sender@example.test> SIZE=5000", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task The_envelope_Size_overrides_the_content_length()
    {
        var envelope = new SmtpEnvelope(Sender, "one@example.test") { Size = 4242 };
        await SendExpectingAsync(["SIZE 10000"], envelope, Ascii(SmallText), "MAIL FROM:<sender@example.test> SIZE=4242", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task No_SIZE_parameter_when_the_server_does_not_offer_SIZE()
    {
        var envelope = new SmtpEnvelope(Sender, "one@example.test") { Size = 4242 };
        await SendExpectingAsync([], envelope, Ascii(SmallText), "MAIL FROM:<sender@example.test>", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task SIZE_of_a_seekable_stream_is_its_length_from_the_current_position()
    {
        var stream = new MemoryStream([.. new byte[100], .. Ascii(new string('a', 198) + "\r\n")]) { Position = 100 };
        var message = SmtpMessage.FromStream(new SmtpEnvelope(Sender, "one@example.test"), stream);
        message.ContentLength.Should().Be(200);

        await using var server = ScriptedSmtpServer.Start(Script(
            Ehlo("PIPELINING", "SIZE 10000"),
            "C: MAIL FROM:<sender@example.test> SIZE=200",
            "C+ RCPT TO:<one@example.test>",
            "C+ DATA",
            "S: 250 ok",
            "S: 550 no",
            "S: 554 no valid recipients"));
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(message).Safe()).Outcome.Should().Be(SmtpSendOutcome.Refused);
        await server.WaitAsync();
    }

    [Fact]
    public async Task No_SIZE_for_content_of_unknown_length_unless_the_envelope_gives_it()
    {
        var pipe = new Pipe();
        await pipe.Writer.CompleteAsync();
        var message = SmtpMessage.FromPipeReader(new SmtpEnvelope(Sender, "one@example.test"), pipe.Reader);
        message.ContentLength.Should().BeNull();

        await using var server = ScriptedSmtpServer.Start(Script(
            Ehlo("PIPELINING", "SIZE 10000"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ DATA",
            "S: 250 ok",
            "S: 550 no",
            "S: 554 no valid recipients"));
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(message).Safe()).Outcome.Should().Be(SmtpSendOutcome.Refused);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_message_over_the_servers_SIZE_limit_is_NotSent_with_MessageTooLarge()
    {
        var result = await SendNotAttemptedAsync(["SIZE 100"], SmtpMessage.FromBytes(Envelope("one@example.test"), Ascii(new string('a', 99) + "\r\n")));

        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        result.Exception!.Message.Should().Contain("101").And.Contain("100");
    }

    [Fact]
    public async Task A_declared_Size_over_the_limit_is_NotSent_too()
    {
        var envelope = new SmtpEnvelope(Sender, "one@example.test") { Size = 1_000_000 };

        var result = await SendNotAttemptedAsync(["SIZE 100"], SmtpMessage.FromBytes(envelope, Ascii(SmallText)));

        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
    }

    [Fact]
    public async Task A_message_of_exactly_the_limit_is_sent()
    {
        await SendExpectingAsync(["SIZE 21"], Envelope("one@example.test"), Ascii(SmallText), "MAIL FROM:<sender@example.test> SIZE=21", "RCPT TO:<one@example.test>");
    }

    // ---- BODY (RFC 6152) ----

    [Fact]
    public async Task BODY_8BITMIME_for_8bit_content_when_the_server_offers_8BITMIME()
    {
        var content = "Subject: caf\u00e9\r\n\r\nna\u00efve\r\n"u8.ToArray();
        await SendExpectingAsync(["8BITMIME"], Envelope("one@example.test"), content, "MAIL FROM:<sender@example.test> BODY=8BITMIME", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task No_BODY_for_7bit_content_even_when_the_server_offers_8BITMIME()
    {
        await SendExpectingAsync(["8BITMIME"], Envelope("one@example.test"), Ascii(SmallText), "MAIL FROM:<sender@example.test>", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task In_memory_8bit_content_is_NotSent_when_the_server_lacks_8BITMIME_and_the_body_type_is_Auto()
    {
        // RFC 6152 forbids 8-bit data without BODY=8BITMIME; before #17 it went out as is.
        var content = "Subject: caf\u00e9\r\n\r\nx\r\n"u8.ToArray();

        var result = await SendNotAttemptedAsync([], SmtpMessage.FromBytes(Envelope("one@example.test"), content));

        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.Message.Should().Contain("8BITMIME");
    }

    [Fact]
    public async Task Explicit_EightBitMime_sends_BODY_8BITMIME_for_any_content()
    {
        var envelope = new SmtpEnvelope(Sender, "one@example.test") { Body = SmtpBodyType.EightBitMime };
        await SendExpectingAsync(["8BITMIME"], envelope, Ascii(SmallText), "MAIL FROM:<sender@example.test> BODY=8BITMIME", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task Explicit_SevenBit_sends_no_BODY()
    {
        var envelope = new SmtpEnvelope(Sender, "one@example.test") { Body = SmtpBodyType.SevenBit };
        await SendExpectingAsync(["8BITMIME"], envelope, "x\r\n"u8.ToArray(), "MAIL FROM:<sender@example.test>", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task Explicit_SevenBit_with_8bit_content_is_NotSent()
    {
        var envelope = new SmtpEnvelope(Sender, "one@example.test") { Body = SmtpBodyType.SevenBit };

        var result = await SendNotAttemptedAsync(["8BITMIME"], SmtpMessage.FromBytes(envelope, "x\u00e9\r\n"u8.ToArray()));

        result.Exception!.Message.Should().Contain("the envelope declares 7-bit content (SmtpEnvelope.Body = SevenBit)");
    }

    [Fact]
    public async Task Explicit_EightBitMime_without_8BITMIME_is_NotSent_with_ExtensionNotSupported()
    {
        var envelope = new SmtpEnvelope(Sender, "one@example.test") { Body = SmtpBodyType.EightBitMime };

        var result = await SendNotAttemptedAsync(["SIZE 1000"], SmtpMessage.FromBytes(envelope, Ascii(SmallText)));

        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.Message.Should().Contain("8BITMIME");
    }

    // ---- SMTPUTF8 (RFC 6531) ----

    [Fact]
    public async Task A_non_ASCII_recipient_adds_SMTPUTF8_and_goes_out_in_UTF8()
    {
        await SendExpectingAsync(["SMTPUTF8"], Envelope("j\u00f6rg@b\u00fccher.example"), Ascii(SmallText), "MAIL FROM:<sender@example.test> SMTPUTF8", "RCPT TO:<j\u00f6rg@b\u00fccher.example>");
    }

    [Fact]
    public async Task A_non_ASCII_sender_adds_SMTPUTF8()
    {
        var envelope = new SmtpEnvelope("\u7528\u6237@\u4f8b\u5b50.example", "one@example.test");
        await SendExpectingAsync(["SMTPUTF8"], envelope, Ascii(SmallText), "MAIL FROM:<\u7528\u6237@\u4f8b\u5b50.example> SMTPUTF8", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task SmtpUtf8_asks_for_SMTPUTF8_with_ASCII_addresses()
    {
        var envelope = new SmtpEnvelope(Sender, "one@example.test") { SmtpUtf8 = true };
        await SendExpectingAsync(["SMTPUTF8"], envelope, Ascii(SmallText), "MAIL FROM:<sender@example.test> SMTPUTF8", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task No_SMTPUTF8_for_ASCII_addresses()
    {
        await SendExpectingAsync(["SMTPUTF8"], Envelope("one@example.test"), Ascii(SmallText), "MAIL FROM:<sender@example.test>", "RCPT TO:<one@example.test>");
    }

    [Theory]
    [InlineData("j\u00f6rg@example.test", "one@example.test")]
    [InlineData("sender@example.test", "\u00fc@example.test")]
    public async Task A_non_ASCII_address_without_SMTPUTF8_is_NotSent_with_ExtensionNotSupported(string sender, string recipient)
    {
        var result = await SendNotAttemptedAsync(["8BITMIME"], SmtpMessage.FromBytes(new SmtpEnvelope(sender, recipient), Ascii(SmallText)));

        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.Message.Should().Contain("SMTPUTF8");
    }

    // ---- DSN (RFC 3461) ----

    [Fact]
    public async Task DSN_parameters_go_out_when_the_server_offers_DSN()
    {
        var envelope = new SmtpEnvelope(Sender, [
            new SmtpRecipient("one@example.test") { Notify = DsnNotify.Success | DsnNotify.Failure, OriginalRecipient = "orig+tag@example.test" },
            new SmtpRecipient("two@example.test") { Notify = DsnNotify.Never },
            new SmtpRecipient("three@example.test") { Notify = DsnNotify.Delay | DsnNotify.Failure | DsnNotify.Success },
            new SmtpRecipient("four@example.test"),
        ])
        {
            Return = DsnReturn.Headers,
            EnvelopeId = "id+1=2 ~", // printable US-ASCII only (RFC 3461 §4.4): a 'ü' here is an ArgumentOutOfRangeException since breaker10
        };

        await SendExpectingAsync(
            ["DSN"],
            envelope,
            Ascii(SmallText),
            "MAIL FROM:<sender@example.test> RET=HDRS ENVID=id+2B1+3D2+20~",
            "RCPT TO:<one@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Btag@example.test",
            "RCPT TO:<two@example.test> NOTIFY=NEVER",
            "RCPT TO:<three@example.test> NOTIFY=SUCCESS,FAILURE,DELAY",
            "RCPT TO:<four@example.test>");
    }

    [Fact]
    public async Task RET_FULL()
    {
        var envelope = new SmtpEnvelope(Sender, "one@example.test") { Return = DsnReturn.Full };
        await SendExpectingAsync(["DSN"], envelope, Ascii(SmallText), "MAIL FROM:<sender@example.test> RET=FULL", "RCPT TO:<one@example.test>");
    }

    [Fact]
    public async Task DSN_parameters_are_omitted_when_the_server_does_not_offer_DSN()
    {
        var envelope = new SmtpEnvelope(Sender, [new SmtpRecipient("one@example.test") { Notify = DsnNotify.Never, OriginalRecipient = "orig@example.test" }])
        {
            Return = DsnReturn.Full,
            EnvelopeId = "envelope-1",
        };

        await SendExpectingAsync(["8BITMIME"], envelope, Ascii(SmallText), "MAIL FROM:<sender@example.test>", "RCPT TO:<one@example.test>");
    }

    // ---- REQUIRETLS (RFC 8689) ----

    [Theory]
    [InlineData("REQUIRETLS")]
    [InlineData("8BITMIME")]
    public async Task REQUIRETLS_without_TLS_is_NotSent(string extension)
    {
        var envelope = new SmtpEnvelope(Sender, "one@example.test") { RequireTls = true };

        var result = await SendNotAttemptedAsync([extension], SmtpMessage.FromBytes(envelope, Ascii(SmallText)));

        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.Message.Should().Contain("REQUIRETLS");
    }

    // ---- Raw parameters ----

    [Fact]
    public async Task Raw_MAIL_and_RCPT_parameters_are_appended_after_the_typed_ones()
    {
        var envelope = new SmtpEnvelope(Sender, [
            new SmtpRecipient("one@example.test") { Notify = DsnNotify.Failure, Parameters = "  X-RCPT=1 " },
            new SmtpRecipient("two@example.test") { Parameters = "X-OTHER=yes" },
        ])
        {
            Return = DsnReturn.Headers,
            MailParameters = " MT-PRIORITY=3  HOLDFOR=60 ",
        };

        await SendExpectingAsync(
            ["SIZE 1000", "8BITMIME", "DSN"],
            envelope,
            "x\u00e9\r\n"u8.ToArray(),
            "MAIL FROM:<sender@example.test> SIZE=5 BODY=8BITMIME RET=HDRS MT-PRIORITY=3  HOLDFOR=60",
            "RCPT TO:<one@example.test> NOTIFY=FAILURE X-RCPT=1",
            "RCPT TO:<two@example.test> X-OTHER=yes");
    }

    [Fact]
    public async Task Every_typed_parameter_together_in_order()
    {
        var envelope = new SmtpEnvelope("j\u00f6rg@example.test", [new SmtpRecipient("one@example.test") { OriginalRecipient = "one@example.test" }])
        {
            Return = DsnReturn.Full,
            EnvelopeId = "e1",
            MailParameters = "X-Y=z",
        };

        await SendExpectingAsync(
            ["SIZE", "8BITMIME", "SMTPUTF8", "DSN"],
            envelope,
            "\u00e9\r\n"u8.ToArray(),
            "MAIL FROM:<j\u00f6rg@example.test> SIZE=4 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=e1 X-Y=z",
            "RCPT TO:<one@example.test> ORCPT=rfc822;one@example.test");
    }

    private static readonly Dictionary<string, Func<SmtpEnvelope>> InjectingEnvelopes = new()
    {
        ["MailParameters CRLF"] = () => new SmtpEnvelope(Sender, "one@example.test") { MailParameters = "X=1\r\nRSET" },
        ["MailParameters LF"] = () => new SmtpEnvelope(Sender, "one@example.test") { MailParameters = "X=1\nRSET" },
        ["MailParameters NUL"] = () => new SmtpEnvelope(Sender, "one@example.test") { MailParameters = "X=1\0" },
        ["EnvelopeId CR"] = () => new SmtpEnvelope(Sender, "one@example.test") { EnvelopeId = "a\rb" },
        ["Recipient Parameters CRLF"] = () => new SmtpEnvelope(Sender, [new SmtpRecipient("one@example.test") { Parameters = "X=1\r\nDATA" }]),
        ["Second recipient Parameters LF"] = () => new SmtpEnvelope(Sender, [new SmtpRecipient("one@example.test"), new SmtpRecipient("two@example.test") { Parameters = "\nQUIT" }]),
        ["OriginalRecipient LF"] = () => new SmtpEnvelope(Sender, [new SmtpRecipient("one@example.test") { OriginalRecipient = "x\ny" }]),
    };

    public static TheoryData<string> InjectionCases => [.. InjectingEnvelopes.Keys];

    [Theory]
    [MemberData(nameof(InjectionCases))]
    public async Task CR_or_LF_in_a_raw_parameter_throws_ArgumentException_before_any_byte(string what)
    {
        var envelope = InjectingEnvelopes[what]();
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING", "DSN"), "C: NOOP", "S: 250 ok"));
        using var session = await ConnectedAsync(server);
        var sentBefore = server.ClientStream.BytesWritten;

        await FluentActions.Awaiting(() => session.SendAsync(envelope, Ascii(SmallText)).Safe()).Should().ThrowAsync<ArgumentException>(what);

        server.ClientStream.BytesWritten.Should().Be(sentBefore);
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "the session is still usable and nothing was written");
        await server.WaitAsync();
    }

    /// <summary>
    /// Breaker probe: typed parameters out of their range went on the wire as they were: <c>SIZE=-1</c>,
    /// <c>NOTIFY=</c> with nothing after it (an undefined flag), <c>NOTIFY=NEVER</c> for NEVER with SUCCESS (the other
    /// flags dropped silently), <c>RET=HDRS</c> for an undefined <see cref="DsnReturn"/>; the server's 501 came back as
    /// a refusal of the message instead of the caller's mistake.
    /// </summary>
    [Theory]
    [InlineData("Size")]
    [InlineData("Body")]
    [InlineData("Return")]
    [InlineData("Notify")]
    [InlineData("Notify NEVER with SUCCESS")]
    [InlineData("EnvelopeId not ASCII")] // Breaker10: Postfix answered MAIL with 501 5.5.4 Bad ENVID parameter syntax, a refusal of the message
    [InlineData("EnvelopeId with a tab")]
    [InlineData("EnvelopeId over 100 characters")] // the CLI's --envid refuses it too
    public async Task A_typed_parameter_out_of_range_throws_ArgumentException_before_any_byte(string what)
    {
        var envelope = what switch
        {
            "EnvelopeId not ASCII" => new SmtpEnvelope(Sender, "one@example.test") { EnvelopeId = "idé" },
            "EnvelopeId with a tab" => new SmtpEnvelope(Sender, "one@example.test") { EnvelopeId = "a\tb" },
            "EnvelopeId over 100 characters" => new SmtpEnvelope(Sender, "one@example.test") { EnvelopeId = new string('e', 101) },
            "Size" => new SmtpEnvelope(Sender, "one@example.test") { Size = -1 },
            "Body" => new SmtpEnvelope(Sender, "one@example.test") { Body = (SmtpBodyType)9 },
            "Return" => new SmtpEnvelope(Sender, "one@example.test") { Return = (DsnReturn)5 },
            "Notify" => new SmtpEnvelope(Sender, [new SmtpRecipient("one@example.test") { Notify = (DsnNotify)64 }]),
            _ => new SmtpEnvelope(Sender, [new SmtpRecipient("one@example.test") { Notify = DsnNotify.Never | DsnNotify.Success }]),
        };
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING", "DSN", "SIZE", "8BITMIME"), "C: NOOP", "S: 250 ok"));
        using var session = await ConnectedAsync(server);
        var sentBefore = server.ClientStream.BytesWritten;

        var thrown = await FluentActions.Awaiting(() => session.SendAsync(envelope, Ascii(SmallText)).Safe()).Should().ThrowAsync<ArgumentException>(what);

        thrown.Which.ParamName.Should().Be(what.Split(' ')[0]);
        server.ClientStream.BytesWritten.Should().Be(sentBefore);
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "nothing was written");
        await server.WaitAsync();
    }

    [Fact]
    public async Task CR_or_LF_in_a_raw_parameter_throws_even_when_the_server_lacks_DSN()
    {
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("8BITMIME"), "C: NOOP", "S: 250 ok"));
        using var session = await ConnectedAsync(server);
        var envelope = new SmtpEnvelope(Sender, [new SmtpRecipient("one@example.test") { OriginalRecipient = "x\r\ny" }]);

        await FluentActions.Awaiting(() => session.SendAsync(envelope, Ascii(SmallText)).Safe()).Should().ThrowAsync<ArgumentException>();

        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }
}
