using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;
using static MailPipe.IntegrationTests.Cli.CliProcess;

namespace MailPipe.IntegrationTests.Cli;

/// <summary>The swaks-style options of <c>mailpipe send</c> (issue #15) against the real Postfix.</summary>
public sealed class CliSwaksOptionsTests
{
    private const string Sender = "sender@example.test";

    public CliSwaksOptionsTests() => TestServers.RequireListening(TestServers.PostfixPort);

    private static string Postfix => Server(TestServers.PostfixPort);

    [Fact]
    public async Task Quit_after_rcpt_with_an_unknown_recipient_exits_5_and_sends_nothing()
    {
        var recipient = "unknown-" + Guid.NewGuid().ToString("N") + "@example.test";

        var run = await RunAsync("send", "-s", Postfix, "-f", Sender, "-t", recipient, "--quit-after", "rcpt", "--trace", "--log-addresses");

        run.ExitCode.Should().Be(5, run.ToString());
        run.Output.Should().Contain($"to <{recipient}>: 550 5.1.1").And.Contain("(refused)");
        run.Error.Should().Contain($"C: RCPT TO:<{recipient}>").And.Contain("C: QUIT").And.NotContain("C: DATA").And.NotContain("C: BDAT");
    }

    [Fact]
    public async Task Quit_after_rcpt_with_a_known_recipient_exits_0_and_delivers_nothing()
    {
        var recipient = TestServers.UniqueRecipient("cli-quit-rcpt");

        var run = await RunAsync("send", "-s", Postfix, "-f", Sender, "-t", recipient, "--quit-after", "rcpt", "--json", "--trace");

        run.ExitCode.Should().Be(0, run.ToString());
        var message = System.Text.Json.JsonDocument.Parse(run.OutputLines[0]).RootElement;
        message.GetProperty("recipients")[0].GetProperty("code").GetInt32().Should().Be(250);
        message.GetProperty("recipients")[0].GetProperty("accepted").GetBoolean().Should().BeTrue();
        message.GetProperty("outcome").GetString().Should().Be("notSent");
        run.Error.Should().Contain("C: QUIT").And.NotContain("C: DATA").And.NotContain("C: BDAT");
        await Task.Delay(500);
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipient)).Should().BeFalse("nothing was sent");
    }

    [Theory]
    [InlineData("connect", "", "")]
    [InlineData("banner", "", "C: EHLO")]
    [InlineData("ehlo", "C: EHLO", "C: STARTTLS")]
    [InlineData("tls", "C: STARTTLS", "C: MAIL")]
    [InlineData("mail", "C: MAIL FROM:", "C: RCPT")]
    public async Task Quit_after_each_step_stops_there(string step, string sent, string notSent)
    {
        var run = await RunAsync("send", "-s", Postfix, "--starttls", "--ca-file", TestServers.TlsCertificate, "-f", Sender, "-t", TestServers.UniqueRecipient("cli-quit"),
            "--quit-after", step, "--trace", "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        var steps = run.LastJson.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("step").GetString()).ToList();
        steps.Should().StartWith("connect");
        if (sent.Length > 0)
        {
            run.Error.Should().Contain(sent);
        }

        if (notSent.Length > 0)
        {
            run.Error.Should().NotContain(notSent);
        }

        if (step == "connect")
        {
            run.Error.Should().NotContain("C: ", "nothing at all is sent after connecting");
        }
        else
        {
            run.Error.Should().Contain("C: QUIT");
        }
    }

    [Fact]
    public async Task Quit_after_auth_authenticates_and_stops()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        using var password = new PasswordVariable(TestServers.Password);

        var run = await RunAsync("send", "-s", Server(TestServers.PostfixSubmissionPort), "--starttls", "--ca-file", TestServers.TlsCertificate,
            "--user", TestServers.User, "--password-env", password.Name, "-f", Sender, "-t", TestServers.UniqueRecipient("cli-quit-auth"),
            "--quit-after", "auth", "--trace", "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        run.LastJson.GetProperty("steps").EnumerateArray().Last().GetProperty("code").GetInt32().Should().Be(235);
        run.Error.Should().Contain("C: AUTH").And.Contain("C: QUIT").And.NotContain("C: MAIL");
    }

    [Fact]
    public async Task Header_and_attach_land_in_the_stored_message()
    {
        var recipient = TestServers.UniqueRecipient("cli-attach");
        using var directory = new TemporaryDirectory();
        var attachment = Path.Combine(directory.Path, "report.csv");
        var attachmentBytes = Encoding.UTF8.GetBytes("a,b\r\n1,2\r\nünïcode,3\r\n");
        await File.WriteAllBytesAsync(attachment, attachmentBytes);
        var picture = Path.Combine(directory.Path, "dot.png");
        var pictureBytes = RandomNumberGenerator.GetBytes(3000);
        await File.WriteAllBytesAsync(picture, pictureBytes);

        var run = await RunAsync("send", "-s", Postfix, "-f", Sender, "-t", recipient, "--subject", "with attachments", "--body", "see attached",
            "--header", "X-Mailpipe-Test: one", "--header", "X-Mailpipe-Test: two", "--header", "Subject: replaced subject",
            "--attach", attachment, "--attach", picture);

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        using var message = MimeMessage.Load(new MemoryStream(stored));
        message.Headers.Where(h => h.Field == "X-Mailpipe-Test").Select(h => h.Value.Trim()).Should().Equal("one", "two");
        message.Subject.Should().Be("replaced subject");
        message.Body.Should().BeOfType<Multipart>().Which.ContentType.MimeType.Should().Be("multipart/mixed");
        message.TextBody!.Trim().Should().Be("see attached");
        var parts = message.Attachments.OfType<MimePart>().ToList();
        parts.Select(p => p.FileName).Should().Equal("report.csv", "dot.png");
        parts[1].ContentType.MimeType.Should().Be("image/png");
        foreach (var (part, expected) in parts.Zip([attachmentBytes, pictureBytes]))
        {
            part.ContentTransferEncoding.Should().Be(ContentEncoding.Base64);
            using var decoded = new MemoryStream();
            await part.Content!.DecodeToAsync(decoded);
            decoded.ToArray().Should().Equal(expected);
        }
    }

    [Fact]
    public async Task Header_on_a_file_goes_in_front_of_its_header_section()
    {
        var recipient = TestServers.UniqueRecipient("cli-header-file");
        using var directory = new TemporaryDirectory();
        var file = Path.Combine(directory.Path, "m.eml");
        var original = "From: sender@example.test\r\nTo: " + recipient + "\r\nSubject: file\r\n\r\nbody\r\n";
        await File.WriteAllTextAsync(file, original);

        var run = await RunAsync("send", "-s", Postfix, "--header", "X-Campaign: spring", file);

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(recipient))[0]);
        Encoding.UTF8.GetString(stored).Should().Be("X-Campaign: spring\r\n" + original);
    }

    [Fact]
    public async Task A_dash_reads_the_message_from_standard_input()
    {
        var recipient = TestServers.UniqueRecipient("cli-stdin");
        var original = "From: sender@example.test\r\nTo: " + recipient + "\r\nSubject: from stdin\r\n\r\npiped body\r\n";

        var run = await RunWithInputAsync(Encoding.UTF8.GetBytes(original), "send", "-s", Postfix, "--header", "X-Via: stdin", "-");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("-: accepted (exit 0)");
        var stored = Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(recipient))[0]);
        Encoding.UTF8.GetString(stored).Should().Be("X-Via: stdin\r\n" + original);
    }

    [Fact]
    public async Task Tls_optional_uses_starttls_when_offered_and_plain_smtp_otherwise()
    {
        var recipient = TestServers.UniqueRecipient("cli-tls-optional");

        var offered = await RunAsync("send", "-s", Postfix, "--tls-optional", "--ca-file", TestServers.TlsCertificate, "-f", Sender, "-t", recipient, "--body", "x", "--json");
        offered.ExitCode.Should().Be(0, offered.ToString());
        offered.LastJson.GetProperty("tls").GetProperty("protocol").GetString().Should().StartWith("TLSv1.");
        Encoding.UTF8.GetString((await Maildir.WaitForPostfixAsync(recipient))[0]).Should().Contain("with ESMTPS");

        TestServers.RequireListening(TestServers.SinkPort);
        var plain = await RunAsync("send", "-s", Server(TestServers.SinkPort), "--tls-optional", "-f", Sender, "-t", "b@example.test", "--body", "x", "--json");
        plain.ExitCode.Should().Be(0, plain.ToString());
        plain.LastJson.GetProperty("tls").ValueKind.Should().Be(System.Text.Json.JsonValueKind.Null);
    }

    [Fact]
    public async Task Notify_ret_and_envid_reach_Postfix_and_come_back_in_the_success_notification()
    {
        var sender = TestServers.UniqueRecipient("cli-dsn-sender");
        var recipient = TestServers.UniqueRecipient("cli-dsn");
        var envelopeId = "mailpipe-" + Guid.NewGuid().ToString("N")[..12];

        var run = await RunAsync("send", "-s", Postfix, "-f", sender, "-t", recipient, "--subject", "dsn", "--body", "x",
            "--notify", "SUCCESS,FAILURE", "--ret", "HDRS", "--envid", envelopeId, "--trace", "--log-addresses");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().Contain($"C: MAIL FROM:<{sender}>").And.Contain("RET=HDRS").And.Contain($"ENVID={envelopeId}");
        run.Error.Should().Contain($"C: RCPT TO:<{recipient}> NOTIFY=SUCCESS,FAILURE");
        await Maildir.WaitForPostfixAsync(recipient);
        var notification = Encoding.UTF8.GetString((await Maildir.WaitForPostfixAsync(sender, timeout: TimeSpan.FromSeconds(60)))[0]);
        notification.Should().Contain("multipart/report").And.Contain("Original-Envelope-Id: " + envelopeId).And.MatchRegex("Action: (delivered|relayed)");
        notification.Should().Contain("text/rfc822-headers", "RET=HDRS returns the headers only");
    }

    [Fact]
    public async Task Smtputf8_is_declared_where_offered_and_refused_before_sending_where_not()
    {
        var recipient = TestServers.UniqueRecipient("cli-utf8");

        var run = await RunAsync("send", "-s", Postfix, "-f", Sender, "-t", recipient, "--smtputf8", "--body", "x", "--trace");
        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().MatchRegex("C: MAIL FROM:<[^>]*>.* SMTPUTF8");
        await Maildir.WaitForPostfixAsync(recipient);

        TestServers.RequireListening(2544);
        var refused = await RunAsync("send", "-s", Server(2544), "-f", Sender, "-t", TestServers.UniqueRecipient("cli-utf8-no"), "--smtputf8", "--body", "x", "--trace");
        refused.ExitCode.Should().Be(6, refused.ToString());
        refused.Error.Should().NotContain("C: MAIL");
    }

    [Fact]
    public async Task Requiretls_is_never_sent_to_a_server_without_REQUIRETLS()
    {
        var recipient = TestServers.UniqueRecipient("cli-requiretls");

        var run = await RunAsync("send", "-s", Postfix, "--starttls", "--ca-file", TestServers.TlsCertificate, "-f", Sender, "-t", recipient, "--requiretls", "--body", "x", "--trace");

        run.ExitCode.Should().Be(6, run.ToString());
        run.Output.Should().Contain("REQUIRETLS");
        run.Error.Should().NotContain("C: MAIL");
        await Task.Delay(500);
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipient)).Should().BeFalse();
    }

    [Fact]
    public async Task Tls_cert_and_key_present_a_client_certificate_and_deliver()
    {
        var recipient = TestServers.UniqueRecipient("cli-client-cert");
        using var directory = new TemporaryDirectory();
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=mailpipe-client", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certificateFile = Path.Combine(directory.Path, "client.pem");
        var keyFile = Path.Combine(directory.Path, "client.key");
        await File.WriteAllTextAsync(certificateFile, certificate.ExportCertificatePem());
        await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem());

        var run = await RunAsync("send", "-s", Postfix, "--starttls", "--ca-file", TestServers.TlsCertificate, "--tls-cert", certificateFile, "--tls-key", keyFile,
            "-f", Sender, "-t", recipient, "--body", "x", "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        Encoding.UTF8.GetString((await Maildir.WaitForPostfixAsync(recipient))[0]).Should().Contain("with ESMTPS");

        var wrongKey = await RunAsync("send", "-s", Postfix, "--starttls", "--ca-file", TestServers.TlsCertificate, "--tls-cert", certificateFile, "--tls-key", certificateFile,
            "-f", Sender, "-t", recipient, "--body", "x");
        wrongKey.ExitCode.Should().Be(1, wrongKey.ToString());
        wrongKey.Error.Should().Contain("--tls-cert");
    }

    private sealed class TemporaryDirectory : IDisposable
    {
        public TemporaryDirectory()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mailpipe-it-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
