using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using SmtpServer.Protocol;

namespace MailPipe.Cli.Tests;

public class SendCommandTests
{
    private const string Message = "From: Jane <jane@example.test>\r\nTo: bob@example.test, carol@example.test\r\nSubject: test\r\n\r\nbody\r\n";

    [Fact]
    public async Task Refused_sender_exits_4()
    {
        await using var server = await TestSmtpServer.StartAsync(acceptSender: _ => false);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "b");

        run.ExitCode.Should().Be(4, run.Output + run.Error);
        run.Output.Should().Contain("refused (exit 4)").And.Contain("from <a@example.test>: 5");
        server.Messages.Should().BeEmpty();
    }

    [Fact]
    public async Task Every_recipient_refused_exits_5()
    {
        await using var server = await TestSmtpServer.StartAsync(acceptRecipient: _ => false);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", "--to", "c@example.test", "--subject", "s", "--body", "b");

        run.ExitCode.Should().Be(5, run.Output + run.Error);
        run.Output.Should().Contain("to <b@example.test>: 5").And.Contain("to <c@example.test>: 5").And.Contain("(refused)");
    }

    [Fact]
    public async Task Some_recipients_refused_is_still_success()
    {
        await using var server = await TestSmtpServer.StartAsync(acceptRecipient: r => r != "c@example.test");

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", "--to", "c@example.test", "--body", "b");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        server.Messages.Should().ContainSingle().Which.To.Should().Equal("b@example.test");
    }

    [Fact]
    public async Task Message_refused_after_the_data_exits_6()
    {
        await using var server = await TestSmtpServer.StartAsync(dataResponse: new SmtpResponse(SmtpReplyCode.TransactionFailed, "5.7.1 content rejected"));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", "--body", "spam");

        run.ExitCode.Should().Be(6, run.Output + run.Error);
        run.Output.Should().Contain("final: 554 5.7.1 content rejected");
    }

    [Fact]
    public async Task Envelope_comes_from_the_headers_and_Bcc_never_reaches_the_wire()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        const string head = "Received: from x\r\n\tby y; Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: \"Doe, Jane\" <jane@example.test>\r\n";
        const string bcc = "Bcc: Hidden One <hidden@example.test>,\r\n second@example.test\r\n";
        const string rest = "To: Bob <bob@example.test>\r\nCc: carol@example.test\r\nSubject: x\r\n\r\nline 1\r\n..two dots\r\n";
        var file = dir.File("bcc.eml", head + bcc + rest);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, file);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var received = server.Messages.Should().ContainSingle().Subject;
        received.From.Should().Be("jane@example.test");
        received.To.Should().Equal("hidden@example.test", "second@example.test", "bob@example.test", "carol@example.test");
        received.DataWithFinalLineEnd.Should().Equal(Encoding.ASCII.GetBytes(head + rest));
    }

    [Fact]
    public async Task With_from_and_to_the_file_is_sent_unchanged()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var content = "From: jane@example.test\nTo: bob@example.test\nBcc: hidden@example.test\n\nLF-only body\n";
        var file = dir.File("lf.eml", content);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "<>", "--to", "other@example.test", file);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var received = server.Messages.Should().ContainSingle().Subject;
        received.To.Should().Equal("other@example.test");
        received.DataWithFinalLineEnd.Should().Equal(Encoding.ASCII.GetBytes(content.Replace("\n", "\r\n")), "only the line ends change, as SMTP requires");
    }

    [Fact]
    public async Task Json_prints_one_parseable_object_per_message()
    {
        await using var server = await TestSmtpServer.StartAsync(acceptRecipient: r => r != "carol@example.test");
        using var dir = new TempDirectory();
        var good = dir.File("good.eml", Message);
        var noRecipients = dir.File("none.eml", "From: jane@example.test\r\nSubject: nobody\r\n\r\nx\r\n");

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", good, noRecipients, Path.Combine(dir.Path, "missing.eml"));

        run.ExitCode.Should().Be(1, "a file without recipients and a missing file are input errors");
        run.OutputLines.Should().HaveCount(4, "one object per message, then the summary");
        var objects = run.OutputLines.Select(line => JsonDocument.Parse(line).RootElement).ToArray();
        objects[..3].Select(o => o.GetProperty("type").GetString()).Should().AllBe("message");
        objects[..2].Select(o => o.GetProperty("index").GetInt32()).Should().Equal([2, 3], "input errors are reported before anything is sent");
        var root = objects[2];
        root.GetProperty("file").GetString().Should().Be(good);
        root.GetProperty("from").GetString().Should().Be("jane@example.test");
        root.GetProperty("outcome").GetString().Should().Be("accepted");
        root.GetProperty("exitCode").GetInt32().Should().Be(0);
        root.GetProperty("mailReply").GetProperty("code").GetInt32().Should().Be(250);
        root.GetProperty("dataReply").GetProperty("code").GetInt32().Should().Be(354);
        root.GetProperty("finalReply").GetProperty("code").GetInt32().Should().Be(250);
        var recipients = root.GetProperty("recipients").EnumerateArray().ToArray();
        recipients.Select(r => r.GetProperty("address").GetString()).Should().Equal("bob@example.test", "carol@example.test");
        recipients.Select(r => r.GetProperty("accepted").GetBoolean()).Should().Equal(true, false);
        recipients[1].GetProperty("code").GetInt32().Should().Be(550);
        recipients[1].TryGetProperty("enhancedStatus", out _).Should().BeTrue();
        recipients[1].GetProperty("text").GetString().Should().NotBeNullOrEmpty();

        foreach (var notSent in objects[..2])
        {
            notSent.GetProperty("outcome").GetString().Should().Be("notSent");
            notSent.GetProperty("exitCode").GetInt32().Should().Be(1);
            notSent.GetProperty("error").GetString().Should().NotBeNullOrEmpty();
        }

        var summary = objects[3];
        summary.GetProperty("type").GetString().Should().Be("summary");
        summary.GetProperty("messages").GetInt32().Should().Be(3);
        summary.GetProperty("accepted").GetInt32().Should().Be(1);
        summary.GetProperty("notSent").GetInt32().Should().Be(2);
        summary.GetProperty("bytes").GetInt64().Should().Be(Encoding.ASCII.GetByteCount(Message));
        summary.GetProperty("exitCode").GetInt32().Should().Be(1);
    }

    [Fact]
    public async Task A_batch_exits_with_the_highest_code()
    {
        await using var server = await TestSmtpServer.StartAsync(acceptSender: s => s != "refused@example.test");
        using var dir = new TempDirectory();
        var good = dir.File("good.eml", Message);
        var refused = dir.File("refused.eml", Message.Replace("jane@example.test", "refused@example.test", StringComparison.Ordinal));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, good, refused, good);

        run.ExitCode.Should().Be(4, run.Output);
        server.Messages.Should().HaveCount(2, "the transaction after a refused one is reset and goes on");
    }

    [Fact]
    public async Task Connection_refused_exits_2()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var run = await CliRunner.RunAsync("send", "--server", $"127.0.0.1:{port}", "--json", "--from", "a@example.test", "--to", "b@example.test");

        run.ExitCode.Should().Be(2, run.Output + run.Error);
        run.OutputLines.Should().HaveCount(2);
        using var document = JsonDocument.Parse(run.OutputLines[0]);
        document.RootElement.GetProperty("outcome").GetString().Should().Be("notSent");
        document.RootElement.GetProperty("error").GetString().Should().Contain("refused");
        using var summary = JsonDocument.Parse(run.OutputLines[1]);
        summary.RootElement.GetProperty("error").GetString().Should().Contain("refused");
        run.Error.Should().Contain("refused");
    }

    [Fact]
    public async Task Refused_greeting_exits_2()
    {
        await using var server = new ScriptedSmtpServer("554 5.3.2 go away", ScriptedSmtpServer.AcceptAll);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test");

        run.ExitCode.Should().Be(2, run.Output + run.Error);
        run.Output.Should().Contain("not sent (exit 2)");
        run.Error.Should().Contain("554 5.3.2 go away");
    }

    [Fact]
    public async Task Silent_server_times_out_with_exit_8()
    {
        await using var server = new ScriptedSmtpServer(greeting: null, ScriptedSmtpServer.AcceptAll);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--timeout", "0.5", "--from", "a@example.test", "--to", "b@example.test");

        run.ExitCode.Should().Be(8, run.Output + run.Error);
        run.Output.Should().Contain("not sent");
        run.Error.Should().Contain("Timed out");
    }

    [Fact]
    public async Task Connection_lost_after_the_data_is_outcome_unknown_exit_7_and_the_rest_is_not_sent()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll, onData: _ => null);
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", file, file);

        run.ExitCode.Should().Be(7, run.Output + run.Error);
        using var first = JsonDocument.Parse(run.OutputLines[0]);
        first.RootElement.GetProperty("outcome").GetString().Should().Be("unknown");
        first.RootElement.GetProperty("exitCode").GetInt32().Should().Be(7);
        using var second = JsonDocument.Parse(run.OutputLines[1]);
        second.RootElement.GetProperty("outcome").GetString().Should().Be("notSent");
        second.RootElement.GetProperty("exitCode").GetInt32().Should().Be(2);
    }

    [Fact]
    public async Task Helo_is_used_when_Ehlo_is_not_understood()
    {
        await using var server = new ScriptedSmtpServer(
            "220 old.test",
            command => command.StartsWith("EHLO", StringComparison.Ordinal) ? "502 5.5.1 command not implemented" : ScriptedSmtpServer.AcceptAll(command));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--helo-name", "client.example.test", "--from", "a@example.test", "--to", "b@example.test", "--body", "x");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        server.Commands.Should().ContainInOrder("EHLO client.example.test", "HELO client.example.test", "MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>", "DATA", "QUIT");
    }

    [Fact]
    public async Task Mail_parameters_follow_the_server_and_the_content()
    {
        await using var server = new ScriptedSmtpServer(
            "220 modern.test",
            command => command.StartsWith("EHLO", StringComparison.Ordinal) ? "250-modern.test\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n250 SMTPUTF8" : ScriptedSmtpServer.AcceptAll(command));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", "--body", "Grüße");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        server.Commands.Should().Contain(c => c.StartsWith("MAIL FROM:<a@example.test> SIZE=", StringComparison.Ordinal) && c.EndsWith(" BODY=8BITMIME", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Message_over_the_server_size_limit_is_not_sent_exit_6()
    {
        await using var server = new ScriptedSmtpServer(
            "220 small.test",
            command => command.StartsWith("EHLO", StringComparison.Ordinal) ? "250-small.test\r\n250 SIZE 100" : ScriptedSmtpServer.AcceptAll(command));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", "--from", "a@example.test", "--to", "b@example.test", "--body", new string('x', 500));

        run.ExitCode.Should().Be(6, run.Output + run.Error);
        run.OutputLines.Should().HaveCount(2);
        using var document = JsonDocument.Parse(run.OutputLines[0]);
        document.RootElement.GetProperty("outcome").GetString().Should().Be("notSent");
        document.RootElement.GetProperty("error").GetString().Should().Contain("SIZE");
        server.Commands.Should().NotContain(c => c.StartsWith("MAIL", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_LF_file_whose_CRLF_form_is_over_the_server_size_limit_is_not_sent_exit_6()
    {
        // 95 octets in the file, 107 on the wire (each of its 12 LFs goes out as CRLF): SIZE must say 107, over the limit.
        await using var server = new ScriptedSmtpServer(
            "220 small.test",
            command => command.StartsWith("EHLO", StringComparison.Ordinal) ? "250-small.test\r\n250 SIZE 100" : ScriptedSmtpServer.AcceptAll(command));
        using var dir = new TempDirectory();
        var content = "Subject: s\n\n" + string.Concat(Enumerable.Repeat("12345678\n", 9)) + new string('x', 2);
        content = content[..^2] + "x\n";
        System.Text.Encoding.ASCII.GetByteCount(content).Should().Be(95);
        var file = dir.File("lf.eml", content);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", "--from", "a@example.test", "--to", "b@example.test", file);

        run.ExitCode.Should().Be(6, run.Output + run.Error);
        using var document = JsonDocument.Parse(run.OutputLines[0]);
        document.RootElement.GetProperty("outcome").GetString().Should().Be("notSent");
        document.RootElement.GetProperty("error").GetString().Should().Contain("SIZE");
        server.Commands.Should().NotContain(c => c.StartsWith("MAIL", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("a\r\nb\r\n", 6)]
    [InlineData("a\nb\n", 6)]
    [InlineData("a\rb\r", 6)]
    [InlineData("a\r\nb", 6)]
    [InlineData("", 0)]
    [InlineData("\r\n\n\r", 6)]
    public void The_declared_size_is_the_size_on_the_wire(string content, long expected) =>
        MemoryContent.WireSize(System.Text.Encoding.ASCII.GetBytes(content)).Should().Be(expected);

    [Fact]
    public async Task A_421_ends_the_session_and_the_rest_is_not_sent()
    {
        await using var server = new ScriptedSmtpServer(
            "220 closing.test",
            command => command.StartsWith("MAIL", StringComparison.Ordinal) ? "421 4.3.2 shutting down" : ScriptedSmtpServer.AcceptAll(command));
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", file, file);

        // 2, not 4 (sender refused): a 421 is the server closing the transmission channel (RFC 5321 §3.8), not a
        // verdict on the sender; nothing was taken, as for a 421 greeting, EHLO or AUTH (ServiceClosingTests).
        run.ExitCode.Should().Be(2, run.Output + run.Error);
        using var first = JsonDocument.Parse(run.OutputLines[0]);
        first.RootElement.GetProperty("outcome").GetString().Should().Be("refused");
        first.RootElement.GetProperty("exitCode").GetInt32().Should().Be(2);
        first.RootElement.GetProperty("mailReply").GetProperty("code").GetInt32().Should().Be(421);
        using var second = JsonDocument.Parse(run.OutputLines[1]);
        second.RootElement.GetProperty("outcome").GetString().Should().Be("notSent");
        second.RootElement.GetProperty("exitCode").GetInt32().Should().Be(2);
        server.Commands.Count(c => c.StartsWith("MAIL", StringComparison.Ordinal)).Should().Be(1);
    }

    [Fact]
    public async Task Trace_writes_the_transcript_to_stderr_with_masked_addresses_unless_asked()
    {
        await using var server = await TestSmtpServer.StartAsync();

        var masked = await CliRunner.RunAsync("send", "--server", server.Address, "--trace", "--from", "a@example.test", "--to", "b@example.test");
        masked.ExitCode.Should().Be(0);
        masked.Error.Should().Contain("S: 220 ").And.Contain("C: MAIL FROM:<***@example.test>").And.Contain("C: QUIT");
        masked.Output.Should().NotContain("C: ");

        var clear = await CliRunner.RunAsync("send", "--server", server.Address, "--trace", "--log-addresses", "--from", "a@example.test", "--to", "b@example.test");
        clear.Error.Should().Contain("C: RCPT TO:<b@example.test>");
    }

    [Theory]
    [InlineData("")]
    [InlineData("send")]
    [InlineData("send|--from|a@example.test")]
    [InlineData("send|--from|not an address|--to|b@example.test")]
    [InlineData("send|--from|<>|--to|b@example.test")]
    [InlineData("send|--from|a@example.test|--to|b@example.test|--server|host:99999")]
    [InlineData("send|--from|a@example.test|--to|b@example.test|--timeout|0")]
    [InlineData("send|--from|a@example.test|--to|b@example.test|--helo-name|two words")]
    [InlineData("send|--from|a@example.test|--to|b@example.test|--server|localhost|--save-dir|x")]
    [InlineData("send|some.eml|--subject|s")]
    [InlineData("send|--from|a@example.test|--to|b@example.test|--server|localhost|--starttls|--ca-file|/nonexistent/ca.pem")]
    public async Task Usage_errors_exit_1(string args)
    {
        var run = await CliRunner.RunAsync(args.Length == 0 ? [] : args.Split('|'));

        run.ExitCode.Should().Be(1, run.Output + run.Error);
    }

    [Fact]
    public async Task Missing_file_exits_1_without_connecting()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "/nonexistent/message.eml");

        run.ExitCode.Should().Be(1);
        run.Output.Should().Contain("not sent").And.Contain("cannot read");
        server.Commands.Should().BeEmpty();
    }

    [Fact]
    public async Task Ca_file_must_hold_a_certificate()
    {
        using var dir = new TempDirectory();
        var garbage = dir.File("garbage.pem", "not a certificate");
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=MailPipe Test CA", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var pem = dir.File("ca.pem", certificate.ExportCertificatePem());
        var der = dir.File("ca.der", certificate.Export(X509ContentType.Cert));

        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        var bad = await CliRunner.RunAsync("send", "--server", server.Address, "--starttls", "--from", "a@example.test", "--to", "b@example.test", "--ca-file", garbage);
        bad.ExitCode.Should().Be(1);
        bad.Error.Should().Contain("--ca-file");
        server.Commands.Should().BeEmpty("a bad --ca-file is found before connecting");

        ConnectionOptions.LoadCertificateAuthorities(pem).Should().ContainSingle().Which.Subject.Should().Be("CN=MailPipe Test CA");
        ConnectionOptions.LoadCertificateAuthorities(der).Should().ContainSingle();
    }
}
