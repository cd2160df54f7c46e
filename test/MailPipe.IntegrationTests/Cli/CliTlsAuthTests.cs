using MailPipe.IntegrationTests.Support;
using static MailPipe.IntegrationTests.Cli.CliProcess;

namespace MailPipe.IntegrationTests.Cli;

/// <summary><c>mailpipe send --tls/--starttls/--auth</c> and <c>mailpipe probe</c> against the real Postfix (TLS and AUTH issues, CLI parts).</summary>
public sealed class CliTlsAuthTests
{
    private const string Sender = "sender@example.test";

    public static TheoryData<string> Mechanisms => new() { "PLAIN", "LOGIN", "CRAM-MD5", "NTLM", "SCRAM-SHA-1", "SCRAM-SHA-256", "auto" };

    [Theory]
    [MemberData(nameof(Mechanisms))]
    public async Task Starttls_and_auth_on_the_submission_port_deliver(string mechanism)
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var recipient = TestServers.UniqueRecipient("cli-auth-" + mechanism.ToLowerInvariant());
        using var password = new PasswordVariable(TestServers.Password);

        var run = await RunAsync(
            "send", "--server", Server(TestServers.PostfixSubmissionPort), "--starttls", "--ca-file", TestServers.TlsCertificate,
            "--auth", mechanism, "--user", TestServers.User, "--password-env", password.Name,
            "--from", Sender, "--to", recipient, "--subject", "CLI AUTH " + mechanism, "--body", "sent by mailpipe send", "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        var summary = run.LastJson;
        summary.GetProperty("authenticatedAs").GetString().Should().Be(TestServers.User);
        summary.GetProperty("authMechanism").GetString().Should().Be(mechanism == "auto" ? "SCRAM-SHA-256" : mechanism);
        summary.GetProperty("tls").GetProperty("protocol").GetString().Should().StartWith("TLSv1.");
        (run.Output + run.Error).Should().NotContain(TestServers.Password);
        var stored = System.Text.Encoding.UTF8.GetString((await Maildir.WaitForPostfixAsync(recipient))[0]);
        stored.Should().Contain("with ESMTPSA").And.Contain("Subject: CLI AUTH " + mechanism);
    }

    [Fact]
    public async Task A_wrong_password_exits_3_and_nothing_is_delivered()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var recipient = TestServers.UniqueRecipient("cli-wrong-password");
        using var password = new PasswordVariable("not-the-password");

        var run = await RunAsync(
            "send", "--server", Server(TestServers.PostfixSubmissionPort), "--starttls", "--ca-file", TestServers.TlsCertificate,
            "--auth", "PLAIN", "--user", TestServers.User, "--password-env", password.Name,
            "--from", Sender, "--to", recipient, "--body", "x");

        run.ExitCode.Should().Be(3, run.ToString());
        run.Output.Should().Contain("not sent (exit 3)");
        run.Error.Should().Contain("535", "the server's refusal is said once, on standard error").And.Contain("authentication failed");
        (run.Output + run.Error).Should().NotContain("not-the-password");
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipient)).Should().BeFalse();
    }

    /// <summary>
    /// A password variable filled from a file (a Kubernetes secret made with --from-file, an env file) ends with the
    /// file's line end: it was sent as part of the password and Postfix answered a bare 535. Exactly one trailing LF or
    /// CRLF is now dropped; a second one stays (and is refused).
    /// </summary>
    [Theory]
    [InlineData("\n", "PLAIN", 0)]
    [InlineData("\r\n", "PLAIN", 0)]
    [InlineData("\n", "auto", 0)]
    [InlineData("\n\n", "PLAIN", 3)]
    public async Task One_line_end_at_the_end_of_the_password_variable_is_dropped(string lineEnd, string mechanism, int exitCode)
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var recipient = TestServers.UniqueRecipient("cli-password-line-end");
        using var password = new PasswordVariable(TestServers.Password + lineEnd);

        var run = await RunAsync(
            "send", "--server", Server(TestServers.PostfixSubmissionPort), "--starttls", "--ca-file", TestServers.TlsCertificate,
            "--auth", mechanism, "--user", TestServers.User, "--password-env", password.Name,
            "--from", Sender, "--to", recipient, "--subject", "CLI password line end", "--body", "x");

        run.ExitCode.Should().Be(exitCode, run.ToString());
        if (exitCode == 0)
        {
            (await Maildir.WaitForPostfixAsync(recipient)).Should().ContainSingle();
        }
        else
        {
            run.Error.Should().Contain("535");
        }
    }

    [Fact]
    public async Task The_submission_port_without_auth_refuses_the_recipient()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);

        var run = await RunAsync(
            "send", "--server", Server(TestServers.PostfixSubmissionPort), "--starttls", "--ca-file", TestServers.TlsCertificate,
            "--from", Sender, "--to", TestServers.UniqueRecipient(), "--body", "x");

        run.ExitCode.Should().BeOneOf([4, 5], "the submission port requires AUTH before MAIL or RCPT: " + run);
    }

    [Fact]
    public async Task Implicit_tls_works_with_the_ca_file_and_fails_with_exit_2_without_it()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        var recipient = TestServers.UniqueRecipient("cli-implicit");
        string[] message = ["--from", Sender, "--to", recipient, "--subject", "CLI implicit TLS", "--body", "x"];

        var untrusted = await RunAsync(["send", "--server", Server(TestServers.PostfixTlsPort), "--tls", .. message]);
        untrusted.ExitCode.Should().Be(2, untrusted.ToString());
        untrusted.Error.Should().Contain("certificate").And.Contain("--ca-file");

        var trusted = await RunAsync(["send", "--server", Server(TestServers.PostfixTlsPort), "--tls", "--ca-file", TestServers.TlsCertificate, "--json", .. message]);
        trusted.ExitCode.Should().Be(0, trusted.ToString());
        trusted.LastJson.GetProperty("tls").GetProperty("nameMatched").GetBoolean().Should().BeTrue();
        var stored = System.Text.Encoding.UTF8.GetString((await Maildir.WaitForPostfixAsync(recipient))[0]);
        stored.Should().Contain("Subject: CLI implicit TLS").And.Contain("with ESMTPS");
    }

    [Fact]
    public async Task A_name_mismatch_fails_unless_accepted()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        string[] common = ["send", "--server", Server(TestServers.PostfixTlsPort), "--tls", "--ca-file", TestServers.TlsCertificate, "--tls-name", "mail.example.test", "--from", Sender, "--to", TestServers.UniqueRecipient(), "--body", "x", "--json"];

        var refused = await RunAsync(common);
        refused.ExitCode.Should().Be(2, refused.ToString());
        refused.Error.Should().Contain("does not name");

        var accepted = await RunAsync([.. common, "--accept-name-mismatch"]);
        accepted.ExitCode.Should().Be(0, accepted.ToString());
        accepted.LastJson.GetProperty("tls").GetProperty("nameMatched").GetBoolean().Should().BeFalse();
    }

    [Fact]
    public async Task Probe_shows_STARTTLS_before_TLS_and_not_after()
    {
        TestServers.RequireListening(TestServers.PostfixPort);

        var run = await RunAsync("probe", "--server", Server(TestServers.PostfixPort), "--starttls", "--ca-file", TestServers.TlsCertificate, "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        var report = run.LastJson;
        report.GetProperty("greeting").GetProperty("code").GetInt32().Should().Be(220);
        Keywords(report.GetProperty("ehlo")).Should().Contain("STARTTLS");
        report.GetProperty("startTls").GetProperty("code").GetInt32().Should().Be(220);
        Keywords(report.GetProperty("ehloAfterStartTls")).Should().NotContain("STARTTLS").And.Contain("PIPELINING");
        var tls = report.GetProperty("tls");
        tls.GetProperty("established").GetBoolean().Should().BeTrue();
        tls.GetProperty("protocol").GetString().Should().BeOneOf("TLSv1.2", "TLSv1.3");
        tls.GetProperty("cipherSuite").GetString().Should().StartWith("TLS_");
        tls.GetProperty("certificate").GetProperty("subject").GetString().Should().Be("CN=localhost");
        tls.GetProperty("certificate").GetProperty("issuer").GetString().Should().Be("CN=localhost");
        tls.GetProperty("certificate").GetProperty("notAfter").GetString().Should().NotBeNullOrEmpty();
        tls.GetProperty("nameMatched").GetBoolean().Should().BeTrue();

        var text = await RunAsync("probe", "--server", Server(TestServers.PostfixPort), "--starttls", "--ca-file", TestServers.TlsCertificate);
        text.ExitCode.Should().Be(0, text.ToString());
        var beforeTls = text.Output[..text.Output.IndexOf("STARTTLS: 220", StringComparison.Ordinal)];
        var afterTls = text.Output[text.Output.IndexOf("EHLO after STARTTLS", StringComparison.Ordinal)..];
        beforeTls.Should().Contain("  STARTTLS\n");
        afterTls.Should().NotContain("  STARTTLS\n");
        text.Output.Should().Contain("subject: CN=localhost").And.Contain("trusted: yes");
    }

    [Fact]
    public async Task Probe_of_implicit_tls_without_the_ca_file_describes_the_certificate_and_exits_2()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);

        var run = await RunAsync("probe", "--server", Server(TestServers.PostfixTlsPort), "--tls");

        run.ExitCode.Should().Be(2, run.ToString());
        run.Output.Should().Contain("subject: CN=localhost").And.Contain("trusted: NO");
    }

    private static IEnumerable<string?> Keywords(System.Text.Json.JsonElement ehlo) =>
        ehlo.GetProperty("extensions").EnumerateArray().Select(e => e.GetString()?.Split(' ')[0]);
}
