using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace MailPipe.Cli.Tests.Peer;

/// <summary>--quit-after, --json fields, --trace redaction and the summary, as documented.</summary>
[Collection(PeerCollection.Name)]
public class PeerOutputTests
{
    private static readonly Dictionary<string, string?> Password = new() { ["PEER_PW"] = Servers.Password };

    [Theory]
    [InlineData("connect", new[] { "connect" })]
    [InlineData("banner", new[] { "connect", "banner" })]
    [InlineData("ehlo", new[] { "connect", "banner", "ehlo" })]
    [InlineData("tls", new[] { "connect", "banner", "ehlo", "starttls", "ehlo" })]
    [InlineData("auth", new[] { "connect", "banner", "ehlo", "starttls", "ehlo", "auth" })]
    public async Task Quit_after_each_step_lists_the_steps_taken_and_sends_nothing(string step, string[] steps)
    {
        var rcpt = Servers.Unique("qa");

        var run = await Tool.RunAsync(
            ["send", "-s", Servers.At(Servers.Submission), "--starttls", "--ca-file", Servers.Certificate, "--user", Servers.User, "--password-env", "PEER_PW",
                "-f", "a@example.test", "-t", rcpt, "--quit-after", step, "--json"],
            null,
            Password);

        run.ExitCode.Should().Be(0, run.ToString());
        run.Summary.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("step").GetString()).Should().Equal(steps);
        run.Summary.GetProperty("accepted").GetInt32().Should().Be(0);
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task Quit_after_rcpt_with_a_known_recipient_is_exit_0_and_delivers_nothing()
    {
        var rcpt = Servers.Unique("exists");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", rcpt, "--quit-after", "rcpt", "--trace", "--log-addresses");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain($"to <{rcpt}>: 250");
        run.Error.Should().NotContain("C: DATA").And.NotContain("C: BDAT");
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task Quit_after_rcpt_declares_SMTPUTF8_for_an_international_address_as_a_send_does()
    {
        // Before: MAIL went without SMTPUTF8, so Postfix answered 501 5.1.3 to a Unicode domain (a false "refused",
        // exit 5, for an address a send delivers) and took a UTF-8 local part without the extension being declared.
        var domain = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", $"qa-{Guid.NewGuid():N}@bücher.example", "--quit-after", "rcpt", "--trace");
        var local = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", $"jürgen-{Guid.NewGuid():N}@example.test", "--quit-after", "rcpt", "--trace");

        domain.ExitCode.Should().Be(0, domain.ToString());
        domain.ErrorLines.Single(l => l.StartsWith("C: MAIL FROM:", StringComparison.Ordinal)).Should().EndWith(" SMTPUTF8");
        local.ExitCode.Should().Be(0, local.ToString());
        local.ErrorLines.Single(l => l.StartsWith("C: MAIL FROM:", StringComparison.Ordinal)).Should().EndWith(" SMTPUTF8");
    }

    [Fact]
    public async Task Quit_after_rcpt_to_a_server_without_SMTPUTF8_uses_the_A_label_and_never_sends_a_UTF8_local_part()
    {
        // Before: RCPT TO:<jürgen-…@example.test> went to Postfix without SMTPUTF8 (offered nor declared), exit 0; a send
        // of the same envelope is not sent, exit 6.
        var local = $"idn-{Guid.NewGuid():N}";
        var domain = await Tool.RunAsync("send", "-s", Servers.At(Servers.PostfixNoSmtpUtf8), "-f", "a@example.test", "-t", $"{local}@bücher.example", "--quit-after", "rcpt", "--trace", "--log-addresses");
        var utf8 = await Tool.RunAsync("send", "-s", Servers.At(Servers.PostfixNoSmtpUtf8), "-f", "a@example.test", "-t", $"jürgen-{Guid.NewGuid():N}@example.test", "--quit-after", "rcpt", "--trace");

        domain.ExitCode.Should().Be(0, domain.ToString());
        domain.Error.Should().Contain($"C: RCPT TO:<{local}@xn--bcher-kva.example>");
        utf8.ExitCode.Should().Be(6, utf8.ToString());
        utf8.Output.Should().Contain("SMTPUTF8");
        utf8.Error.Should().NotContain("C: MAIL").And.NotContain("C: RCPT");
    }

    [Fact]
    public async Task Quit_after_rcpt_with_an_unknown_recipient_is_exit_5()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", "unknown-qa@example.test", "--quit-after", "rcpt");

        run.ExitCode.Should().Be(5, run.ToString());
        run.Output.Should().Contain("550 5.1.1");
    }

    [Fact]
    public async Task Quit_after_mail_with_a_sender_Exim_refuses_is_exit_4()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Exim), "-f", "refuse-mail@example.test", "-t", Servers.Unique(), "--quit-after", "mail");

        run.ExitCode.Should().Be(4, run.ToString());
        run.Output.Should().Contain("from <refuse-mail@example.test>: 550");
    }

    [Fact]
    public async Task Quit_after_mail_sends_no_RCPT()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", Servers.Unique(), "--quit-after", "mail", "--trace");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().Contain("C: MAIL FROM:").And.NotContain("C: RCPT");
    }

    [Fact]
    public async Task Quit_after_connect_sends_no_command_at_all()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", "b@example.test", "--quit-after", "connect", "--trace");

        run.ExitCode.Should().Be(0, run.ToString());
        run.ErrorLines.Where(l => l.StartsWith("C: ", StringComparison.Ordinal) && l != "C: QUIT").Should().BeEmpty();
    }

    [Fact]
    public async Task Quit_after_auth_with_a_wrong_password_is_exit_3()
    {
        var run = await Tool.RunAsync(
            ["send", "-s", Servers.At(Servers.Postfix), "--user", Servers.User, "--password-env", "PEER_PW", "-f", "a@example.test", "-t", "a@example.test", "--quit-after", "auth"],
            null,
            new Dictionary<string, string?> { ["PEER_PW"] = "nope" });

        run.ExitCode.Should().Be(3, run.ToString());
    }

    [Fact]
    public async Task Quit_after_an_unknown_step_is_a_usage_error_naming_the_steps()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", "b@example.test", "--quit-after", "data");

        run.ExitCode.Should().Be(1, run.ToString());
        run.Error.Should().Contain("--quit-after").And.Contain("rcpt");
    }

    [Fact]
    public async Task A_json_message_object_has_every_documented_field()
    {
        var rcpt = Servers.Unique("json");
        using var files = new Files();
        var file = files.Write("j.eml", $"From: a@example.test\r\nTo: {rcpt}\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--json", file);

        run.ExitCode.Should().Be(0, run.ToString());
        var message = run.Json[0];
        message.EnumerateObject().Select(p => p.Name).Should().BeEquivalentTo(
            "type", "file", "index", "from", "recipients", "mailReply", "dataReply", "finalReply", "outcome", "transactions", "exitCode", "error", "savedTo");
        message.GetProperty("type").GetString().Should().Be("message");
        message.GetProperty("file").GetString().Should().Be(file);
        message.GetProperty("index").GetInt32().Should().Be(1);
        message.GetProperty("from").GetString().Should().Be("a@example.test");
        var recipient = message.GetProperty("recipients")[0];
        recipient.EnumerateObject().Select(p => p.Name).Should().BeEquivalentTo("address", "code", "enhancedStatus", "text", "accepted");
        recipient.GetProperty("enhancedStatus").GetString().Should().Be("2.1.5");
        message.GetProperty("finalReply").GetProperty("code").GetInt32().Should().Be(250);
        message.GetProperty("finalReply").EnumerateObject().Select(p => p.Name).Should().BeEquivalentTo("code", "enhancedStatus", "text");
        message.GetProperty("error").ValueKind.Should().Be(JsonValueKind.Null);
        message.GetProperty("savedTo").ValueKind.Should().Be(JsonValueKind.Null, "only the embedded server saves");
    }

    [Fact]
    public async Task The_json_summary_has_every_documented_field_and_consistent_counts()
    {
        var rcpt = Servers.Unique("jsonsum");

        var run = await Tool.RunAsync(
            ["send", "-s", Servers.At(Servers.Postfix), "--starttls", "--ca-file", Servers.Certificate, "--user", Servers.User, "--password-env", "PEER_PW", "-f", "a@example.test", "-t", rcpt, "--body", "hello", "--json"],
            null,
            Password);

        run.ExitCode.Should().Be(0, run.ToString());
        var summary = run.Summary;
        summary.EnumerateObject().Select(p => p.Name).Should().BeEquivalentTo(
            "type", "messages", "accepted", "refused", "unknown", "notSent", "bytes", "elapsedSeconds", "messagesPerSecond", "exitCode", "server", "connections", "tls", "authenticatedAs", "authMechanism", "error");
        summary.GetProperty("type").GetString().Should().Be("summary");
        summary.GetProperty("connections").GetInt32().Should().Be(1);
        summary.GetProperty("messages").GetInt32().Should().Be(1);
        summary.GetProperty("accepted").GetInt32().Should().Be(1);
        summary.GetProperty("server").GetString().Should().Be(Servers.At(Servers.Postfix));
        summary.GetProperty("bytes").GetInt64().Should().BeGreaterThan(0);
        summary.GetProperty("elapsedSeconds").GetDouble().Should().BeGreaterThan(0);
        summary.GetProperty("messagesPerSecond").GetDouble().Should().BeApproximately(1 / summary.GetProperty("elapsedSeconds").GetDouble(), 0.01 / summary.GetProperty("elapsedSeconds").GetDouble());
        summary.GetProperty("authMechanism").GetString().Should().Be("SCRAM-SHA-256");
        summary.GetProperty("error").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Fact]
    public async Task The_bytes_of_the_summary_are_the_accepted_files_sizes_as_read()
    {
        var rcpt = Servers.Unique("bytes");
        using var files = new Files();
        var lf = files.Write("lf.eml", $"From: a@example.test\nTo: {rcpt}\n\nx\n");
        var refused = files.Write("r.eml", "From: a@example.test\r\nTo: unknown-b@example.test\r\n\r\nrefused\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--json", lf, refused);

        run.Summary.GetProperty("bytes").GetInt64().Should().Be(new FileInfo(lf).Length, "sizes as read, before SMTP's line-end encoding; accepted messages only");
    }

    [Fact]
    public async Task Trace_masks_addresses_and_redacts_the_AUTH_exchange()
    {
        var rcpt = Servers.Unique("trace");

        var run = await Tool.RunAsync(
            ["send", "-s", Servers.At(Servers.Postfix), "--auth", "LOGIN", "--allow-cleartext-auth", "--user", Servers.User, "--password-env", "PEER_PW", "-f", "sender@example.test", "-t", rcpt, "--body", "x", "--trace"],
            null,
            Password);

        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().Contain("C: MAIL FROM:<***@example.test>").And.Contain("C: RCPT TO:<***@example.test>");
        run.Error.Should().NotContain(rcpt).And.NotContain("sender@example.test");
        run.Error.Should().NotContain(Servers.Password);
        run.Error.Should().NotContain(Convert.ToBase64String("Test-Pass-123"u8.ToArray()));
        run.Error.Should().NotContain(Convert.ToBase64String("testuser"u8.ToArray()), "LOGIN's user name and password are both redacted");
        var auth = run.ErrorLines.Where(l => l.StartsWith("C: ", StringComparison.Ordinal)).SkipWhile(l => l != "C: AUTH LOGIN").ToArray();
        auth[1..3].Should().Equal(["C: <redacted>", "C: <redacted>"], "LOGIN's user name and password lines");
    }

    [Theory]
    [InlineData("CRAM-MD5")]
    [InlineData("SCRAM-SHA-1")]
    [InlineData("SCRAM-SHA-256")]
    [InlineData("NTLM")]
    [InlineData("LOGIN")]
    [InlineData("PLAIN")]
    public async Task Every_line_of_the_AUTH_exchange_is_redacted_in_the_trace(string mechanism)
    {
        var run = await Tool.RunAsync(
            ["send", "-s", Servers.At(Servers.Postfix), "--auth", mechanism, "--allow-cleartext-auth", "--user", Servers.User, "--password-env", "PEER_PW", "-f", "a@example.test", "-t", "a@example.test", "--quit-after", "auth", "--trace", "--log-addresses"],
            null,
            Password);

        run.ExitCode.Should().Be(0, run.ToString());
        var exchange = run.ErrorLines.SkipWhile(l => !l.StartsWith("C: AUTH ", StringComparison.Ordinal)).TakeWhile(l => !l.StartsWith("S: 235", StringComparison.Ordinal)).ToArray();
        exchange.Should().NotBeEmpty();
        exchange[0].Should().BeOneOf($"C: AUTH {mechanism}", $"C: AUTH {mechanism} <redacted>");
        exchange.Skip(1).All(l => l is "C: <redacted>" or "S: 334 <redacted>").Should().BeTrue(string.Join('\n', exchange));
        run.Error.Should().NotContain(Servers.Password).And.NotContain(Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(Servers.User)));
    }

    [Fact]
    public async Task Trace_with_log_addresses_shows_them_but_still_redacts_PLAIN()
    {
        var rcpt = Servers.Unique("tracelog");

        var run = await Tool.RunAsync(
            ["send", "-s", Servers.At(Servers.Postfix), "--starttls", "--ca-file", Servers.Certificate, "--auth", "PLAIN", "--user", Servers.User, "--password-env", "PEER_PW", "-f", "sender@example.test", "-t", rcpt, "--body", "x", "--trace", "--log-addresses"],
            null,
            Password);

        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().Contain($"RCPT TO:<{rcpt}>").And.Contain("C: AUTH PLAIN <redacted>");
        run.Error.Should().NotContain(Convert.ToBase64String("\0testuser\0Test-Pass-123"u8.ToArray()));
    }

    [Fact]
    public async Task Json_with_trace_keeps_standard_output_pure_JSON()
    {
        using var files = new Files();
        var a = files.Write("a.eml", $"From: a@example.test\r\nTo: {Servers.Unique("jt")}\r\n\r\nx\r\n");
        var b = files.Write("b.eml", "From: a@example.test\r\nTo: unknown-jt@example.test\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--json", "--trace", a, b);

        run.ExitCode.Should().Be(5, run.ToString());
        run.Json.Should().HaveCount(3, "every standard output line is one JSON object");
        run.Error.Should().Contain("C: MAIL FROM:");
    }

    [Fact]
    public async Task Standard_input_given_twice_is_a_usage_error()
    {
        var run = await Tool.RunAsync(["send", "-s", Servers.At(Servers.Sink), "-", "-"], Encoding.ASCII.GetBytes("From: a@example.test\r\nTo: b@example.test\r\n\r\nx\r\n"));

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().BeEmpty();
    }

    [Fact]
    public async Task Serve_without_listen_next_to_a_server_on_2525_exits_2_and_suggests_listen_0()
    {
        if (Servers.Postfix != 2525)
        {
            return; // the default port is only taken when Postfix listens there
        }

        using var files = new Files();
        var run = await Tool.RunAsync(["serve", "--save-dir", files.Path], null, timeout: TimeSpan.FromSeconds(30));

        run.ExitCode.Should().Be(2, run.ToString());
        run.Error.Should().Contain("127.0.0.1:2525").And.Contain("--listen :0");
    }

    [Fact]
    public async Task Without_trace_standard_error_is_empty_on_success()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", Servers.Unique(), "--body", "x");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().BeEmpty();
    }

    [Fact]
    public async Task The_text_summary_line_has_the_documented_form()
    {
        using var files = new Files();
        var rcpt = Servers.Unique("summary");
        var a = files.Write("a.eml", $"From: a@example.test\r\nTo: {rcpt}\r\n\r\nx\r\n");
        var b = files.Write("b.eml", $"From: a@example.test\r\nTo: {rcpt}\r\n\r\ny\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), a, b);

        run.ExitCode.Should().Be(0, run.ToString());
        run.OutputLines[^2].Should().MatchRegex(@"^summary: 2 messages: 2 accepted, 0 refused, 0 not sent, 0 unknown; [\d,]+ bytes accepted in \d+\.\d{3} s, [\d,]+\.\d{2} messages/s \(exit 0\)$");
        run.OutputLines[^1].Should().Be($"  connection: {Servers.At(Servers.Postfix)}, no TLS");
        Regex.Match(run.OutputLines[^2], @"; (\d+) bytes").Groups[1].Value.Should().Be((new FileInfo(a).Length + new FileInfo(b).Length).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Dsn_options_reach_Postfix_in_the_trace()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", Servers.Unique("dsn"), "--notify", "SUCCESS,FAILURE", "--ret", "HDRS", "--envid", "peer-envid-1", "--body", "x", "--trace");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().MatchRegex("C: MAIL FROM:<[^>]*>.*RET=HDRS").And.Contain("ENVID=peer-envid-1").And.MatchRegex("C: RCPT TO:<[^>]*>.*NOTIFY=SUCCESS,FAILURE");
    }

    [Fact]
    public async Task Dsn_options_to_a_server_without_DSN_are_not_sent_and_the_message_goes()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Aiosmtpd), "-f", "a@example.test", "-t", Servers.Unique("nodsn"), "--notify", "NEVER", "--envid", "x1", "--body", "x", "--trace");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().NotContain("NOTIFY=").And.NotContain("ENVID=");
    }

    [Fact]
    public async Task The_helo_name_option_is_what_Postfix_records()
    {
        var rcpt = Servers.Unique("helo");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", rcpt, "--helo-name", "client.peer.example", "--body", "x");

        run.ExitCode.Should().Be(0, run.ToString());
        System.Text.Encoding.ASCII.GetString((await Servers.PostfixMessagesAsync(rcpt)).Single()).Should().Contain("Received: from client.peer.example");
    }

    [Fact]
    public async Task The_default_helo_name_is_never_a_bare_host_name()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", "b@example.test", "--quit-after", "ehlo", "--trace");

        var ehlo = run.ErrorLines.First(l => l.StartsWith("C: EHLO ", StringComparison.Ordinal))[8..];
        (ehlo.Contains('.', StringComparison.Ordinal) || ehlo.StartsWith('[')).Should().BeTrue(ehlo);
        ehlo.Should().NotStartWith("localhost");
    }
}
