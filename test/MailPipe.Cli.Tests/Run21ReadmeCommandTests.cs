using System.Globalization;
using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>
/// The commands of src/MailPipe.Cli/README.md's first block and README.md's "To send to a real server", run as a new
/// user runs them against the shared Postfix (2525 plain, 5870 submission with STARTTLS + Cyrus SASL, 4650 implicit TLS);
/// only the server, the credentials, the CA file and the addresses are adapted. Checks each comment's claim, the exit
/// code (README "Exit codes") and the summary lines. Runs with the integration environment only (MAILPIPE_INTEGRATION=1,
/// as build/test.sh sets it); the commands without a server are run by <see cref="EmbeddedServerTests"/>.
/// </summary>
public sealed class Run21ReadmeCommandTests
{
    private static bool Integration => Environment.GetEnvironmentVariable("MAILPIPE_INTEGRATION") == "1";

    private static string Port(string variable, int fallback) =>
        (int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : fallback).ToString(CultureInfo.InvariantCulture);

    private static string Postfix => "127.0.0.1:" + Port("MAILPIPE_POSTFIX_PORT", 2525);

    private static string Submission => "127.0.0.1:" + Port("MAILPIPE_POSTFIX_SUBMISSION_PORT", 5870);

    private static string ImplicitTls => "127.0.0.1:" + Port("MAILPIPE_POSTFIX_TLS_PORT", 4650);

    private static string CaFile => Environment.GetEnvironmentVariable("MAILPIPE_TLS_CERT") ?? "/tmp/mailpipe-tls/cert.pem";

    private static string Maildir => Environment.GetEnvironmentVariable("MAILPIPE_MAILDIR") ?? "/tmp/mailpipe-maildir";

    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}@example.test";

    private static async Task<string[]> WaitForMaildirAsync(string recipient, int count = 1)
    {
        var directory = Path.Combine(Maildir, recipient, "new");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var files = Directory.Exists(directory) ? Directory.GetFiles(directory) : [];
            if (files.Length >= count || DateTime.UtcNow > deadline)
            {
                return [.. files.Select(File.ReadAllText)];
            }

            await Task.Delay(50);
        }
    }

    private static string Secret(string value)
    {
        var name = "MAILPIPE_RUN21_SECRET_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(name, value);
        return name;
    }

    /// <summary>"A real server; the envelope comes from the files' From/Sender and To/Cc/Bcc fields, and Bcc is removed".</summary>
    [Fact]
    public async Task Files_to_a_real_server_take_their_envelope_from_the_headers_and_lose_Bcc()
    {
        if (!Integration)
        {
            return; // no shared servers here
        }

        using var dir = new TempDirectory();
        var to = Unique("run21-cli-to");
        var bcc = Unique("run21-cli-bcc");
        var two = Unique("run21-cli-two");
        var message1 = dir.File("message1.eml", $"From: Jane <jane@example.test>\r\nTo: {to}\r\nBcc: {bcc}\r\nSubject: one\r\n\r\nbody one\r\n");
        var message2 = dir.File("message2.eml", $"From: jane@example.test\r\nTo: {two}\r\nSubject: two\r\n\r\nbody two\r\n");

        var run = await CliRunner.RunAsync("send", "--server", Postfix, message1, message2);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain($"{message1}: accepted (exit 0)").And.Contain($"to <{bcc}>: 250").And.Contain($"{message2}: accepted (exit 0)");
        run.Output.Should().MatchRegex(@"summary: 2 messages: 2 accepted, 0 refused, 0 not sent, 0 unknown; \d+ bytes accepted in [\d.]+ s, [\d.]+ messages/s \(exit 0\)");
        run.Output.Should().Contain($"  connection: {Postfix}, no TLS");
        var bccCopy = (await WaitForMaildirAsync(bcc)).Should().ContainSingle().Which;
        bccCopy.Should().Contain("Subject: one").And.NotContain("Bcc:");
        (await WaitForMaildirAsync(to)).Should().ContainSingle().Which.Should().NotContain("Bcc:");
        (await WaitForMaildirAsync(two)).Should().ContainSingle();
    }

    /// <summary>"Submission with STARTTLS and a password from the environment": the summary's connection line as README shows it.</summary>
    [Fact]
    public async Task Submission_with_STARTTLS_and_auth_auto_authenticates_with_SCRAM_SHA_256()
    {
        if (!Integration)
        {
            return;
        }

        using var dir = new TempDirectory();
        var to = Unique("run21-cli-sub");
        var message = dir.File("message.eml", $"From: me@example.test\r\nTo: {to}\r\nSubject: submission\r\n\r\nbody\r\n");
        var variable = Secret("Test-Pass-123");

        var run = await CliRunner.RunAsync("send", "--server", Submission, "--starttls", "--ca-file", CaFile, "--auth", "auto", "--user", "testuser", "--password-env", variable, message);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain($"  connection: {Submission}, TLSv1.3 TLS_AES_256_GCM_SHA384, authenticated as testuser (SCRAM-SHA-256)");
        (await WaitForMaildirAsync(to)).Should().ContainSingle();
    }

    /// <summary>
    /// "Implicit TLS (port 465) ... an OAuth 2.0 token": implicit TLS with the CA file works (PLAIN); Postfix offers no
    /// XOAUTH2, so the README's --auth XOAUTH2 there is "no mechanism could run": exit 3, nothing sent.
    /// </summary>
    [Theory]
    [InlineData("PLAIN", 0)]
    [InlineData("XOAUTH2", 3)]
    public async Task Implicit_TLS_with_a_private_CA(string mechanism, int exitCode)
    {
        if (!Integration)
        {
            return;
        }

        using var dir = new TempDirectory();
        var to = Unique("run21-cli-tls");
        var message = dir.File("message.eml", $"From: me@example.test\r\nTo: {to}\r\nSubject: implicit\r\n\r\nbody\r\n");
        var variable = Secret(mechanism == "PLAIN" ? "Test-Pass-123" : "token");

        var run = await CliRunner.RunAsync("send", "--server", ImplicitTls, "--tls", "--ca-file", CaFile, "--auth", mechanism, "--user", "testuser", "--password-env", variable, message);

        run.ExitCode.Should().Be(exitCode, run.Output + run.Error);
        if (exitCode == 0)
        {
            run.Output.Should().Contain($"  connection: {ImplicitTls}, TLSv1.3 TLS_AES_256_GCM_SHA384, authenticated as testuser (PLAIN)");
            (await WaitForMaildirAsync(to)).Should().ContainSingle();
        }
        else
        {
            run.Output.Should().Contain($"{message}: not sent (exit 3)").And.Contain("AUTH XOAUTH2 was not sent");
            Directory.Exists(Path.Combine(Maildir, to)).Should().BeFalse();
        }
    }

    /// <summary>"A whole directory (or a quoted wildcard) as one pipelined batch; the envelope from the options, files sent unchanged"; --json.</summary>
    [Fact]
    public async Task A_directory_and_a_quoted_wildcard_go_as_one_batch()
    {
        if (!Integration)
        {
            return;
        }

        using var dir = new TempDirectory();
        var list = Unique("run21-cli-list");
        var y = Unique("run21-cli-y");
        var outbox = Path.Combine(dir.Path, "outbox");
        Directory.CreateDirectory(outbox);
        foreach (var name in new[] { "2026-01", "2026-02", "other" })
        {
            await File.WriteAllTextAsync(Path.Combine(outbox, name + ".eml"), $"From: x@example.test\r\nTo: {y}\r\nSubject: {name}\r\n\r\nbody\r\n");
        }

        var run = await CliRunner.RunAsync("send", "--server", Postfix, "--from", "bounces@example.test", "--to", list, outbox + "/");
        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain("summary: 3 messages: 3 accepted").And.Contain($"to <{list}>: 250");
        var copies = await WaitForMaildirAsync(list, 3);
        copies.Should().HaveCount(3);
        copies.Should().OnlyContain(c => c.Contains($"To: {y}", StringComparison.Ordinal), "files sent unchanged");
        Directory.Exists(Path.Combine(Maildir, y)).Should().BeFalse("the envelope from the options");

        var json = await CliRunner.RunAsync("send", "--server", "localhost:" + Postfix.Split(':')[1], "--json", Path.Combine(outbox, "2026-*.eml"));
        json.ExitCode.Should().Be(0, json.Output + json.Error);
        var lines = json.OutputLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        lines.Should().HaveCount(3);
        lines.Take(2).Select(l => l.GetProperty("outcome").GetString()).Should().Equal("accepted", "accepted");
        lines[2].GetProperty("type").GetString().Should().Be("summary");
        lines[2].GetProperty("exitCode").GetInt32().Should().Be(0);
        (await WaitForMaildirAsync(y, 2)).Should().HaveCount(2);
    }

    /// <summary>"does this recipient exist?": --quit-after rcpt sends no message; exit 0 when accepted, 5 when refused.</summary>
    [Theory]
    [InlineData("someone", 0)]
    [InlineData("unknown-run21", 5)]
    public async Task Quit_after_rcpt_checks_a_recipient_and_sends_nothing(string local, int exitCode)
    {
        if (!Integration)
        {
            return;
        }

        var recipient = $"{local}-{Guid.NewGuid():N}@example.test";
        var run = await CliRunner.RunAsync("send", "-s", Postfix, "-f", "me@example.test", "-t", recipient, "--quit-after", "rcpt");
        run.ExitCode.Should().Be(exitCode, run.Output + run.Error);
        run.Output.Should().Contain("error: not sent: --quit-after rcpt").And.Contain($"to <{recipient}>: {(exitCode == 0 ? 250 : 550)}");
        run.Output.Should().Contain("banner: 220 ").And.Contain("ehlo: 250 ");
        await Task.Delay(500);
        Directory.Exists(Path.Combine(Maildir, recipient)).Should().BeFalse();
    }

    /// <summary>The built message with an extra header and an attachment (the swaks-style lines), and --json --trace.</summary>
    [Fact]
    public async Task A_built_message_with_an_attachment_and_the_trace()
    {
        if (!Integration)
        {
            return;
        }

        using var dir = new TempDirectory();
        var you = Unique("run21-cli-you");
        var report = dir.File("report.pdf", "%PDF-1.4\n%run21\n");
        var run = await CliRunner.RunAsync("send", "-s", "localhost:" + Postfix.Split(':')[1], "-f", "me@example.test", "-t", you, "--subject", "report", "--body", "see attached", "--attach", report, "--header", "X-Test: 1", "--json", "--trace");
        run.ExitCode.Should().Be(0, run.Output + run.Error);
        JsonDocument.Parse(run.OutputLines[0]).RootElement.GetProperty("outcome").GetString().Should().Be("accepted");
        run.Error.Should().Contain("C: MAIL FROM:<***@example.test>").And.Contain("C: <message data, ").And.NotContain(you, "addresses masked unless --log-addresses");
        var stored = (await WaitForMaildirAsync(you)).Should().ContainSingle().Which;
        stored.Should().Contain("X-Test: 1").And.Contain("multipart/mixed").And.Contain("filename=report.pdf");
    }

    /// <summary>"What does the server offer?": probe shows the capabilities before and after STARTTLS and the certificate; --tls --json.</summary>
    [Fact]
    public async Task Probe_before_and_after_STARTTLS_and_implicit_TLS_as_JSON()
    {
        if (!Integration)
        {
            return;
        }

        var run = await CliRunner.RunAsync("probe", "--server", Submission, "--ca-file", CaFile);
        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain("greeting: 220 ").And.Contain("STARTTLS: 220 ").And.Contain("TLS: TLSv1.3").And.Contain("trusted: yes")
            .And.Contain("EHLO after STARTTLS: 250").And.Contain("AUTH PLAIN LOGIN CRAM-MD5");

        var json = await CliRunner.RunAsync("probe", "--server", ImplicitTls, "--tls", "--json", "--ca-file", CaFile);
        json.ExitCode.Should().Be(0, json.Output + json.Error);
        var probe = JsonDocument.Parse(json.OutputLines.Single()).RootElement;
        probe.GetProperty("tlsMode").GetString().Should().Be("implicit");
        probe.GetProperty("greeting").GetProperty("code").GetInt32().Should().Be(220);
        probe.GetProperty("tls").GetProperty("established").GetBoolean().Should().BeTrue();

        var untrusted = await CliRunner.RunAsync("probe", "--server", ImplicitTls, "--tls", "--json");
        untrusted.ExitCode.Should().Be(2, "a TLS failure; the certificate is shown even when the handshake fails on it");
        JsonDocument.Parse(untrusted.OutputLines.Single()).RootElement.GetProperty("tls").GetProperty("certificate").GetProperty("subject").GetString().Should().Be("CN=localhost");
    }
}
