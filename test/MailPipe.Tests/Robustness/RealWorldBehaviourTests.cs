using System.Net;
using System.Security.Cryptography;
using System.Text;
using MailPipe.Authentication;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Robustness;

/// <summary>The twelve real-world behaviours of issue #17, each proved against the scripted server (or a loopback socket).</summary>
public class RealWorldBehaviourTests
{
    private const string Greeting = "S: 220 mail.example.test ESMTP ready";

    private static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server, SmtpSessionOptions? options = null, string ehloDomain = "client.example.test", bool ehlo = true)
    {
        var session = new AsyncSmtpSession(options);
        await session.ConnectAsync(server.ClientStream).Safe();
        if (ehlo)
        {
            await session.EhloAsync(ehloDomain).Safe();
        }

        return session;
    }

    private static string[] Ehlo(params string[] extensions)
    {
        List<string> lines = [Greeting, "C: EHLO client.example.test"];
        if (extensions.Length == 0)
        {
            lines.Add("S: 250 mail.example.test");
            return [.. lines];
        }

        lines.Add("S: 250-mail.example.test");
        for (var i = 0; i < extensions.Length; i++)
        {
            lines.Add((i == extensions.Length - 1 ? "S: 250 " : "S: 250-") + extensions[i]);
        }

        return [.. lines];
    }

    // 1. Blank lines between replies.

    [Fact]
    public async Task Blank_lines_after_the_greeting_and_after_a_multiline_reply_are_skipped()
    {
        var script = new SmtpScript()
            .SendRaw("220 mail.example.test ready\r\n\r\n")
            .Expect("EHLO client.example.test")
            .SendRaw("250-mail.example.test\r\n250 PIPELINING\r\n\r\n\r\n")
            .Expect("NOOP")
            .SendRaw("\r\n250 2.0.0 Ok\r\n");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var noop = await session.NoopAsync().Safe();

        session.Greeting!.Code.Should().Be(220);
        session.Capabilities.SupportsPipelining.Should().BeTrue();
        noop.Code.Should().Be(250);
        session.IsConnected.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Blank_lines_count_toward_the_next_reply_line_limit()
    {
        var script = new SmtpScript().SendRaw("\r\n\r\n\r\n220 ready\r\n");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { Limits = new SmtpProtocolLimits { MaxReplyLines = 3 } });

        var act = () => session.ConnectAsync(server.ClientStream).Safe();

        (await act.Should().ThrowAsync<SmtpProtocolException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
    }

    [Fact]
    public async Task Blank_lines_count_toward_the_next_reply_byte_limit()
    {
        var script = new SmtpScript().SendRaw(string.Concat(Enumerable.Repeat("\r\n", 300)) + "220 ready\r\n");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { Limits = new SmtpProtocolLimits { MaxReplyLineLength = 512, MaxReplyBytes = 512 } });

        var act = () => session.ConnectAsync(server.ClientStream).Safe();

        (await act.Should().ThrowAsync<SmtpProtocolException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
    }

    // 2. Only 220 is a ready greeting.

    [Fact]
    public async Task A_221_greeting_fails_with_ServiceNotAvailable_keeping_the_server_text_and_sends_nothing()
    {
        await using var server = LoopbackServer.Start(async (s, socket, ct) =>
        {
            await LoopbackServer.SendAsync(socket, "221 2.0.0 mail.example.test closing, come back later\r\n", ct);
            await s.ReadToEndAsync(socket, ct);
        });
        using var session = new AsyncSmtpSession();

        var act = () => session.ConnectAsync("127.0.0.1", server.Port, SmtpTlsMode.None, "client.example.test").Safe();

        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        error.IsTransient.Should().BeTrue();
        error.Reply!.Code.Should().Be(221);
        error.Message.Should().Contain("come back later");
        session.IsConnected.Should().BeFalse();
        await server.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        server.Received.Should().BeEmpty("a server that is not ready gets no EHLO");
    }

    // 3. AUTH fallback after 534 5.7.9 (RFC 4954 §6).

    private static SmtpScript ExpectAuth(SmtpScript script, string mechanism) => script.Do($"C: AUTH {mechanism} …", async (server, ct) =>
    {
        var line = Encoding.UTF8.GetString((await server.ReadLineAsync(ct))!);
        if (!line.StartsWith($"AUTH {mechanism} ", StringComparison.Ordinal) && line != $"AUTH {mechanism}\r\n")
        {
            throw new ScriptMismatchException($"expected AUTH {mechanism} but received \"{line.TrimEnd()}\"");
        }
    });

    [Fact]
    public async Task After_534_5_7_9_the_automatic_choice_tries_the_next_mechanism_that_is_not_weaker_once()
    {
        var script = SmtpScript.Parse(Ehlo("AUTH SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5"));
        ExpectAuth(script, "SCRAM-SHA-256").Send("534 5.7.9 Authentication mechanism is too weak");
        ExpectAuth(script, "SCRAM-SHA-1").Send("534 5.7.9 Authentication mechanism is too weak");
        script.Expect("NOOP").Send("250 2.0.0 Ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var reply = await session.AuthenticateAsync(new NetworkCredential("user", "secret")).Safe();

        reply.Code.Should().Be(534, "CRAM-MD5 is weaker than SCRAM, so it is never tried");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task After_534_5_7_9_to_CRAM_MD5_PLAIN_over_TLS_would_be_stronger_but_cleartext_PLAIN_is_weaker_and_not_tried()
    {
        SaslFallback.Candidates("CRAM-MD5", ["CRAM-MD5", "PLAIN", "LOGIN"], new HashSet<string> { "CRAM-MD5" }, encrypted: true).Should().Equal("PLAIN", "LOGIN");
        SaslFallback.Candidates("CRAM-MD5", ["CRAM-MD5", "PLAIN", "LOGIN"], new HashSet<string> { "CRAM-MD5" }, encrypted: false).Should().BeEmpty();
        var script = SmtpScript.Parse(Ehlo("AUTH CRAM-MD5 PLAIN"));
        script.Expect("AUTH CRAM-MD5").Send("334 " + Convert.ToBase64String("<1.2@example>"u8)).Do("C: cram response", async (server, ct) => await server.ReadLineAsync(ct)).Send("534 5.7.9 Too weak");
        script.Expect("NOOP").Send("250 Ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });

        (await session.AuthenticateAsync(new NetworkCredential("user", "secret")).Safe()).Code.Should().Be(534);
        await session.NoopAsync().Safe();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("535 5.7.8 Authentication credentials invalid")]
    [InlineData("454 4.7.0 Temporary authentication failure")]
    [InlineData("530 5.7.0 Authentication required")]
    [InlineData("534 5.7.14 Please log in with your web browser")]
    [InlineData("534 Authentication mechanism is too weak")]
    public async Task No_fallback_after_a_reply_other_than_534_5_7_9(string refusal)
    {
        var script = SmtpScript.Parse(Ehlo("AUTH SCRAM-SHA-256 SCRAM-SHA-1"));
        ExpectAuth(script, "SCRAM-SHA-256").Send(refusal);
        script.Expect("NOOP").Send("250 Ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var reply = await session.AuthenticateAsync(new NetworkCredential("user", "secret")).Safe();

        reply.Code.Should().Be(int.Parse(refusal[..3], System.Globalization.CultureInfo.InvariantCulture));
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "the next command after the refusal is the caller's, not another AUTH");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_mechanism_the_caller_named_is_never_replaced_after_534_5_7_9()
    {
        var script = SmtpScript.Parse(Ehlo("AUTH SCRAM-SHA-256 SCRAM-SHA-1"));
        ExpectAuth(script, "SCRAM-SHA-256").Send("534 5.7.9 Too weak");
        script.Expect("NOOP").Send("250 Ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var reply = await session.AuthenticateAsync(new NetworkCredential("user", "secret"), new SmtpAuthenticationOptions { Mechanism = "SCRAM-SHA-256" }).Safe();

        reply.Code.Should().Be(534);
        await session.NoopAsync().Safe();
        await server.WaitAsync();
    }

    // 4. A named mechanism the server does not advertise.

    public static TheoryData<string> TypedMechanismCalls => ["AuthPlainAsync", "AuthLoginAsync", "AuthCramMd5Async", "AuthScramAsync", "AuthenticateAsync(credential, PLAIN)", "AuthXOAuth2Async"];

    [Theory]
    [MemberData(nameof(TypedMechanismCalls))]
    public async Task A_typed_mechanism_the_server_does_not_advertise_fails_locally_and_sends_nothing(string call)
    {
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse([.. Ehlo("AUTH GSSAPI NTLM"), "C: NOOP", "S: 250 Ok"]));
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });

        Func<Task> act = call switch
        {
            "AuthPlainAsync" => () => session.AuthPlainAsync("user", "secret").Safe(),
            "AuthLoginAsync" => () => session.AuthLoginAsync("user", "secret").Safe(),
            "AuthCramMd5Async" => () => session.AuthCramMd5Async("user", "secret").Safe(),
            "AuthScramAsync" => () => session.AuthScramAsync("user", "secret", HashAlgorithmName.SHA256).Safe(),
            "AuthXOAuth2Async" => () => session.AuthXOAuth2Async("user@example.test", _ => ValueTask.FromResult("token")).Safe(),
            _ => () => session.AuthenticateAsync(new NetworkCredential("user", "secret"), new SmtpAuthenticationOptions { Mechanism = "PLAIN" }).Safe(),
        };

        (await act.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("GSSAPI NTLM");
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "nothing was written and the session is usable");
        await server.WaitAsync();
    }

    [Fact]
    public async Task The_raw_AuthenticateAsync_stays_raw_and_sends_an_unadvertised_mechanism()
    {
        await using var server = ScriptedSmtpServer.Start([.. Ehlo("AUTH GSSAPI"), "C: AUTH X-CUSTOM", "S: 504 5.5.4 Unrecognized authentication type"]);
        using var session = await ConnectedAsync(server);

        var reply = await session.AuthenticateAsync("X-CUSTOM", null, (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(null)).Safe();

        reply.Code.Should().Be(504);
        await server.WaitAsync();
    }

    // 5. EHLO/HELO address literals.

    [Theory]
    [InlineData("127.0.0.1", "[127.0.0.1]")]
    [InlineData("::1", "[IPv6:::1]")]
    [InlineData("[::1]", "[IPv6:::1]")]
    [InlineData("2001:db8::1", "[IPv6:2001:db8::1]")]
    [InlineData("::ffff:192.0.2.7", "[192.0.2.7]")]
    [InlineData("[127.0.0.1]", "[127.0.0.1]")]
    [InlineData("[IPv6:::1]", "[IPv6:::1]")]
    [InlineData("client.example.test", "client.example.test")]
    [InlineData("1.2.3", "1.2.3")]
    public async Task A_bare_IP_given_for_EHLO_and_HELO_goes_out_as_an_address_literal(string given, string sent)
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, $"C: EHLO {sent}", "S: 500 unknown", $"C: HELO {sent}", "S: 250 mail.example.test");
        using var session = await ConnectedAsync(server, ehlo: false);

        (await session.HelloAsync(given).Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    // 6. Internationalised domains.

    [Fact]
    public async Task An_IDN_domain_goes_out_as_its_A_label_to_a_server_without_SMTPUTF8()
    {
        await using var server = ScriptedSmtpServer.Start([
            .. Ehlo("8BITMIME"),
            "C: MAIL FROM:<sender@xn--exmple-cua.test>", "S: 250 Ok",
            "C: RCPT TO:<user@xn--bcher-kva.example>", "S: 250 Ok",
            "C: DATA", "S: 354 go",
            "C: Subject: x", "C: ", "C: body", "C: .", "S: 250 queued"]);
        using var session = await ConnectedAsync(server);
        var envelope = new SmtpEnvelope("sender@exämple.test", "user@bücher.example");

        var result = await session.SendAsync(envelope, "Subject: x\r\n\r\nbody\r\n"u8.ToArray()).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Fact]
    public void The_A_label_of_the_sender_is_computed_by_IdnMapping()
    {
        SmtpAddressRules.ToAsciiMailbox("sender@exämple.test").Should().Be("sender@xn--exmple-cua.test");
        SmtpAddressRules.ToAsciiMailbox("user@bücher.example").Should().Be("user@xn--bcher-kva.example");
        SmtpAddressRules.ToAsciiMailbox("üser@example.test").Should().BeNull();
    }

    [Fact]
    public async Task A_non_ASCII_local_part_without_SMTPUTF8_is_NotSent_with_that_reason_before_MAIL()
    {
        await using var server = ScriptedSmtpServer.Start([.. Ehlo("8BITMIME"), "C: QUIT", "S: 221 bye"]);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", "üser@bücher.example"), "Subject: x\r\n\r\nbody\r\n"u8.ToArray()).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception!.As<SmtpException>().ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.Message.Should().Contain("local part");
        await session.QuitAsync().Safe();
        await server.WaitAsync();
    }

    // 7. 8-bit content without 8BITMIME.

    private static readonly byte[] EightBit = Encoding.UTF8.GetBytes("Subject: caf\u00e9\r\n\r\nbody\r\n");

    [Fact]
    public async Task In_memory_8bit_content_without_8BITMIME_is_NotSent_before_MAIL()
    {
        await using var server = ScriptedSmtpServer.Start([.. Ehlo("PIPELINING"), "C: NOOP", "S: 250 Ok"]);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), EightBit).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception!.Message.Should().Contain("8BITMIME");
        await session.NoopAsync().Safe();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Streamed_content_declares_BODY_8BITMIME_whenever_the_server_offers_it()
    {
        await using var server = ScriptedSmtpServer.Start([
            .. Ehlo("8BITMIME"),
            "C: MAIL FROM:<a@example.test> BODY=8BITMIME", "S: 250 Ok", "C: RCPT TO:<b@example.test>", "S: 250 Ok", "C: DATA", "S: 354 go",
            "C: Subject: x", "C: ", "C: body", "C: .", "S: 250 queued"]);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), new MemoryStream("Subject: x\r\n\r\nbody\r\n"u8.ToArray())).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Streamed_8bit_content_over_DATA_without_8BITMIME_closes_the_connection_without_the_final_dot()
    {
        var script = SmtpScript.Parse([.. Ehlo(), "C: MAIL FROM:<a@example.test>", "S: 250 Ok", "C: RCPT TO:<b@example.test>", "S: 250 Ok", "C: DATA", "S: 354 go"]).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var content = new MemoryStream([.. "Subject: x\r\n\r\n"u8, .. Enumerable.Repeat((byte)'a', 100_000), (byte)'\r', (byte)'\n', 0xC3, 0xA9, (byte)'\r', (byte)'\n']);

        var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), content).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.InnerException.Should().BeOfType<SmtpContentRefusedException>().Which.Octet.Should().Be(0xC3);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
        var afterData = server.ReceivedText[(server.ReceivedText.IndexOf("DATA\r\n", StringComparison.Ordinal) + 6)..];
        afterData.Should().NotContain("\r\n.\r\n").And.NotContain("\u00c3");
    }

    [Fact]
    public async Task Streamed_8bit_content_over_BDAT_without_8BITMIME_is_reset_between_chunks_and_the_session_goes_on()
    {
        var chunk = new byte[1024];
        Array.Fill(chunk, (byte)'a');
        var script = SmtpScript.Parse([.. Ehlo("CHUNKING"), "C: MAIL FROM:<a@example.test>", "S: 250 Ok", "C: RCPT TO:<b@example.test>", "S: 250 Ok"])
            .Expect("BDAT 1024").ExpectBytes(chunk).Send("250 chunk")
            .Expect("RSET").Send("250 reset")
            .Expect("NOOP").Send("250 Ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { ChunkSize = 1024 });
        byte[] content = [.. Enumerable.Repeat((byte)'a', 1024), .. Enumerable.Repeat((byte)'b', 500), 0xE9];

        var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), new MemoryStream(content)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.InnerException.Should().BeOfType<SmtpContentRefusedException>().Which.Offset.Should().Be(1524);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    // 8. NUL octets.

    [Fact]
    public async Task In_memory_content_with_NUL_over_DATA_is_NotSent_before_MAIL()
    {
        await using var server = ScriptedSmtpServer.Start([.. Ehlo("8BITMIME"), "C: NOOP", "S: 250 Ok"]);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), "Subject: x\r\n\r\na\0b\r\n"u8.ToArray()).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception!.Message.Should().Contain("NUL");
        await session.NoopAsync().Safe();
        await server.WaitAsync();
    }

    [Fact]
    public async Task In_memory_content_with_NUL_goes_as_BINARYMIME_when_CHUNKING_and_BINARYMIME_are_offered()
    {
        byte[] content = [.. "Subject: x\n\na"u8, 0, .. "b\n"u8];
        var script = SmtpScript.Parse([.. Ehlo("CHUNKING", "BINARYMIME"), "C: MAIL FROM:<a@example.test> BODY=BINARYMIME", "S: 250 Ok", "C: RCPT TO:<b@example.test>", "S: 250 Ok"])
            .Expect($"BDAT {content.Length} LAST").ExpectBytes(content).Send("250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), content).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Streamed_content_with_NUL_over_BDAT_without_BINARYMIME_is_reset()
    {
        var script = SmtpScript.Parse([.. Ehlo("CHUNKING", "8BITMIME"), "C: MAIL FROM:<a@example.test> BODY=8BITMIME", "S: 250 Ok", "C: RCPT TO:<b@example.test>", "S: 250 Ok"])
            .Expect("RSET").Send("250 reset");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), new MemoryStream("Subject: x\r\n\r\na\0b\r\n"u8.ToArray())).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.InnerException.Should().BeOfType<SmtpContentRefusedException>().Which.Octet.Should().Be(0);
        await server.WaitAsync();
    }

    // 9. Paths over 256 octets.

    [Fact]
    public async Task Paths_over_256_octets_are_refused_before_anything_is_written()
    {
        var local = new string('a', 254 - "@example.test".Length);
        var fits = local + "@example.test";
        var tooLong = "a" + fits;
        await using var server = ScriptedSmtpServer.Start([.. Ehlo(), "C: MAIL FROM:<" + fits + ">", "S: 250 Ok"]);
        using var session = await ConnectedAsync(server);

        await FluentActions.Invoking(() => session.MailFromAsync(tooLong)).Should().ThrowAsync<ArgumentException>().WithMessage("*256 octets*");
        await FluentActions.Invoking(() => session.RcptToAsync("<" + tooLong + ">")).Should().ThrowAsync<ArgumentException>();
        FluentActions.Invoking(() => new SmtpEnvelope(tooLong, "b@example.test")).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => new SmtpEnvelope("a@example.test", tooLong)).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => new SmtpRecipient("b@" + new string('é', 127) + ".test")).Should().Throw<ArgumentException>("octets, not characters, are counted");
        (await session.MailFromAsync(fits).Safe()).Code.Should().Be(250, "a path of exactly 256 octets is allowed");
        await server.WaitAsync();
    }

    // 10. AUTH identities with CR, LF or NUL.

    [Theory]
    [InlineData("PLAIN", "user\r\nRCPT TO:<x@y>", null)]
    [InlineData("PLAIN", "user", "admin\n")]
    [InlineData("PLAIN", "us\0er", null)]
    [InlineData("LOGIN", "user\r", null)]
    [InlineData("LOGIN", "us\0er", null)]
    [InlineData("CRAM-MD5", "user\n", null)]
    [InlineData("SCRAM-SHA-256", "user\r\n", null)]
    [InlineData("SCRAM-SHA-256", "user", "admin\0")]
    public async Task Identities_with_CR_LF_or_NUL_are_refused_in_every_mechanism_before_anything_is_written(string mechanism, string user, string? authzid)
    {
        await using var server = ScriptedSmtpServer.Start([.. Ehlo("AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256"), "C: NOOP", "S: 250 Ok"]);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });

        Func<Task> act = mechanism switch
        {
            "PLAIN" => () => session.AuthPlainAsync(user, "secret", authzid),
            "LOGIN" => () => session.AuthLoginAsync(user, "secret"),
            "CRAM-MD5" => () => session.AuthCramMd5Async(user, "secret"),
            _ => () => session.AuthScramAsync(user, "secret", HashAlgorithmName.SHA256, authzid),
        };

        await act.Should().ThrowAsync<ArgumentException>();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    // 11. SCRAM iteration count.

    [Fact]
    public void The_SCRAM_iteration_cap_is_what_real_servers_use_not_ten_million()
    {
        SaslScram.MaxIterations.Should().BeInRange(4096, 100_000);
    }

    [Fact]
    public void The_cancellable_SCRAM_derivation_equals_PBKDF2_and_stops_on_a_cancelled_token()
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var password = "pencil"u8.ToArray();
        ScramDerivation.Hi(password, salt, 4096, HashAlgorithmName.SHA256, default)
            .Should().Equal(Rfc2898DeriveBytes.Pbkdf2(password, salt, 4096, HashAlgorithmName.SHA256, 32));
        ScramDerivation.Hi(password, salt, 1, HashAlgorithmName.SHA1, default)
            .Should().Equal(Rfc2898DeriveBytes.Pbkdf2(password, salt, 1, HashAlgorithmName.SHA1, 20));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        FluentActions.Invoking(() => ScramDerivation.Hi(password, salt, 100_000, HashAlgorithmName.SHA256, cancelled.Token)).Should().Throw<OperationCanceledException>();
    }

    [Fact]
    public async Task A_server_asking_for_more_SCRAM_iterations_than_the_cap_fails_without_computing()
    {
        var script = SmtpScript.Parse(Ehlo("AUTH SCRAM-SHA-256")).Do("C: AUTH SCRAM-SHA-256 …", async (server, ct) =>
        {
            var line = Encoding.UTF8.GetString((await server.ReadLineAsync(ct))!);
            var clientFirst = Encoding.UTF8.GetString(Convert.FromBase64String(line["AUTH SCRAM-SHA-256 ".Length..].TrimEnd()));
            var nonce = clientFirst[(clientFirst.IndexOf("r=", StringComparison.Ordinal) + 2)..];
            await server.SendAsync(Encoding.UTF8.GetBytes("334 " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"r={nonce}srv,s=QSXCR+Q6sek8bf92,i={SaslScram.MaxIterations + 1}")) + "\r\n"), ct);
        }).Then("C: *", "S: 501 5.7.0 Authentication aborted");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var act = () => session.AuthScramAsync("user", "pencil", HashAlgorithmName.SHA256).Safe();

        // Cancelled with '*' (RFC 4954 §4) before any key derivation; the session stays connected after the 501.
        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.Message.Should().Contain("iteration count");
        error.Reply!.Code.Should().Be(501);
        session.IsConnected.Should().BeTrue();
    }

    // 12. A token cancelled before the call.

    [Fact]
    public async Task A_token_cancelled_before_the_call_writes_nothing_and_leaves_the_session_usable()
    {
        await using var server = ScriptedSmtpServer.Start([.. Ehlo("PIPELINING"), "C: NOOP", "S: 250 Ok"]);
        using var session = await ConnectedAsync(server);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        await FluentActions.Invoking(() => session.NoopAsync(cancelled.Token)).Should().ThrowAsync<OperationCanceledException>();
        await FluentActions.Invoking(() => session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), "x\r\n"u8.ToArray(), cancelled.Token)).Should().ThrowAsync<OperationCanceledException>();

        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }
}
