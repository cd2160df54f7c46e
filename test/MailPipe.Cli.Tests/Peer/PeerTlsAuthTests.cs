namespace MailPipe.Cli.Tests.Peer;

/// <summary>TLS modes, certificate options and AUTH mechanisms against Postfix, Exim and aiosmtpd.</summary>
[Collection(PeerCollection.Name)]
public class PeerTlsAuthTests
{
    private static readonly Dictionary<string, string?> Password = new() { ["PEER_PW"] = Servers.Password };

    private static Task<ToolRun> SendAsync(int port, string rcpt, params string[] options) =>
        Tool.RunAsync(["send", "-s", Servers.At(port), "-f", "a@example.test", "-t", rcpt, "--subject", "tls", "--body", "x", .. options], null, Password);

    [Fact]
    public async Task Starttls_with_the_ca_file_delivers_and_the_summary_names_the_TLS_version()
    {
        var rcpt = Servers.Unique("starttls");

        var run = await SendAsync(Servers.Postfix, rcpt, "--starttls", "--ca-file", Servers.Certificate);

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().MatchRegex(@"connection: 127\.0\.0\.1:\d+, TLSv1\.[23] \S+");
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
    }

    [Fact]
    public async Task Starttls_without_the_ca_file_fails_the_certificate_with_exit_2_and_sends_nothing()
    {
        var rcpt = Servers.Unique("untrusted");

        var run = await SendAsync(Servers.Postfix, rcpt, "--starttls");

        run.ExitCode.Should().Be(2, run.ToString());
        run.Output.Should().Contain("not usable:");
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task Implicit_TLS_on_4650_delivers_with_the_ca_file()
    {
        var rcpt = Servers.Unique("implicit");

        var run = await SendAsync(Servers.PostfixTls, rcpt, "--tls", "--ca-file", Servers.Certificate, "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        var tls = run.Summary.GetProperty("tls");
        tls.GetProperty("protocol").GetString().Should().StartWith("TLSv1.");
        tls.GetProperty("cipherSuite").GetString().Should().NotBeNullOrEmpty();
        tls.GetProperty("nameMatched").GetBoolean().Should().BeTrue();
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
    }

    [Fact]
    public async Task A_tls_name_the_certificate_does_not_carry_fails_and_accept_name_mismatch_lets_it_through()
    {
        var refused = Servers.Unique("mismatch");
        var accepted = Servers.Unique("mismatchok");

        var strict = await SendAsync(Servers.PostfixTls, refused, "--tls", "--ca-file", Servers.Certificate, "--tls-name", "mail.example.test");
        var lenient = await SendAsync(Servers.PostfixTls, accepted, "--tls", "--ca-file", Servers.Certificate, "--tls-name", "mail.example.test", "--accept-name-mismatch", "--json");

        strict.ExitCode.Should().Be(2, strict.ToString());
        Servers.PostfixCount(refused).Should().Be(0);
        lenient.ExitCode.Should().Be(0, lenient.ToString());
        lenient.Summary.GetProperty("tls").GetProperty("nameMatched").GetBoolean().Should().BeFalse();
        (await Servers.PostfixMessagesAsync(accepted)).Should().ContainSingle();
    }

    [Fact]
    public async Task Tls_name_localhost_matches_the_certificate_name()
    {
        var rcpt = Servers.Unique("tlsname");

        var run = await SendAsync(Servers.PostfixTls, rcpt, "--tls", "--ca-file", Servers.Certificate, "--tls-name", "localhost");

        run.ExitCode.Should().Be(0, run.ToString());
    }

    [Fact]
    public async Task Accept_name_mismatch_does_not_accept_an_untrusted_certificate()
    {
        var run = await SendAsync(Servers.PostfixTls, Servers.Unique(), "--tls", "--accept-name-mismatch");

        run.ExitCode.Should().Be(2, run.ToString());
    }

    [Fact]
    public async Task Tls_optional_uses_STARTTLS_on_Postfix_and_plain_SMTP_on_smtp_sink()
    {
        var rcpt = Servers.Unique("optional");

        var postfix = await SendAsync(Servers.Postfix, rcpt, "--tls-optional", "--ca-file", Servers.Certificate, "--json");
        var sink = await SendAsync(Servers.Sink, "sink@example.test", "--tls-optional", "--json");

        postfix.ExitCode.Should().Be(0, postfix.ToString());
        postfix.Summary.GetProperty("tls").ValueKind.Should().Be(System.Text.Json.JsonValueKind.Object);
        sink.ExitCode.Should().Be(0, sink.ToString());
        sink.Summary.GetProperty("tls").ValueKind.Should().Be(System.Text.Json.JsonValueKind.Null);
    }

    [Fact]
    public async Task Tls_optional_with_an_untrusted_certificate_is_a_TLS_failure_not_a_fall_back()
    {
        var rcpt = Servers.Unique("optfail");

        var run = await SendAsync(Servers.Postfix, rcpt, "--tls-optional");

        run.ExitCode.Should().Be(2, run.ToString());
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task Starttls_required_against_smtp_sink_exits_2_and_says_it_is_not_offered()
    {
        var run = await SendAsync(Servers.Sink, "sink@example.test", "--starttls");

        run.ExitCode.Should().Be(2, run.ToString());
        run.Error.Should().Contain("STARTTLS");
    }

    [Fact]
    public async Task Tls_settings_without_a_TLS_mode_are_a_usage_error()
    {
        var run = await SendAsync(Servers.Postfix, Servers.Unique(), "--ca-file", Servers.Certificate);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().BeEmpty();
    }

    [Fact]
    public async Task Requiretls_without_a_TLS_mode_is_a_usage_error()
    {
        var run = await SendAsync(Servers.Postfix, Servers.Unique(), "--requiretls");

        run.ExitCode.Should().Be(1, run.ToString());
    }

    [Fact]
    public async Task Requiretls_to_Postfix_which_lacks_it_sends_nothing_exit_6()
    {
        var rcpt = Servers.Unique("requiretls");

        var run = await SendAsync(Servers.Postfix, rcpt, "--starttls", "--ca-file", Servers.Certificate, "--requiretls");

        run.ExitCode.Should().Be(6, run.ToString());
        run.Output.Should().Contain("REQUIRETLS");
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    [InlineData("CRAM-MD5")]
    [InlineData("SCRAM-SHA-1")]
    [InlineData("SCRAM-SHA-256")]
    [InlineData("scram-sha-256")]
    [InlineData("NTLM")]
    public async Task Each_password_mechanism_authenticates_on_the_submission_port_and_delivers(string mechanism)
    {
        var rcpt = Servers.Unique("auth");

        var run = await SendAsync(Servers.Submission, rcpt, "--starttls", "--ca-file", Servers.Certificate, "--auth", mechanism, "--user", Servers.User, "--password-env", "PEER_PW", "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Summary.GetProperty("authenticatedAs").GetString().Should().Be(Servers.User);
        run.Summary.GetProperty("authMechanism").GetString().Should().Be(mechanism.ToUpperInvariant());
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
    }

    [Fact]
    public async Task Auto_picks_SCRAM_SHA_256_on_Postfix_and_the_summary_says_so()
    {
        var rcpt = Servers.Unique("auto");

        var run = await SendAsync(Servers.Postfix, rcpt, "--user", Servers.User, "--password-env", "PEER_PW");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("authenticated as testuser (SCRAM-SHA-256)");
    }

    [Fact]
    public async Task Auto_on_Exim_picks_CRAM_MD5_without_TLS()
    {
        var run = await SendAsync(Servers.Exim, Servers.Unique("eximauto"), "--user", Servers.User, "--password-env", "PEER_PW", "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Summary.GetProperty("authMechanism").GetString().Should().Be("CRAM-MD5");
    }

    [Fact]
    public async Task Plain_without_TLS_is_refused_before_sending_the_secret_unless_allowed()
    {
        var refused = await SendAsync(Servers.Postfix, Servers.Unique("cleartext"), "--auth", "PLAIN", "--user", Servers.User, "--password-env", "PEER_PW", "--trace");
        var allowed = await SendAsync(Servers.Postfix, Servers.Unique("cleartextok"), "--auth", "PLAIN", "--user", Servers.User, "--password-env", "PEER_PW", "--allow-cleartext-auth", "--trace");

        refused.ExitCode.Should().NotBe(0, refused.ToString());
        refused.ExitCode.Should().BeOneOf([1, 3], refused.ToString());
        refused.Error.Should().NotContain("C: AUTH PLAIN");
        allowed.ExitCode.Should().Be(0, allowed.ToString());
        allowed.Error.Should().Contain("C: AUTH PLAIN <redacted>");
    }

    [Fact]
    public async Task Auto_on_aiosmtpd_offering_only_PLAIN_and_LOGIN_without_TLS_exits_3_without_sending_the_password()
    {
        var run = await SendAsync(Servers.Aiosmtpd, Servers.Unique("aioauth"), "--user", Servers.User, "--password-env", "PEER_PW", "--trace");

        run.ExitCode.Should().Be(3, run.ToString());
        run.Error.Should().NotContain("C: AUTH");
        run.Error.Should().NotContain(Servers.Password);
    }

    [Fact]
    public async Task Login_after_STARTTLS_on_aiosmtpd_delivers()
    {
        var run = await SendAsync(Servers.Aiosmtpd, Servers.Unique("aiologin"), "--starttls", "--ca-file", Servers.Certificate, "--auth", "LOGIN", "--user", Servers.User, "--password-env", "PEER_PW");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("authenticated as testuser (LOGIN)");
    }

    [Fact]
    public async Task A_password_variable_with_a_trailing_CRLF_still_authenticates()
    {
        var run = await Tool.RunAsync(
            ["send", "-s", Servers.At(Servers.Postfix), "--user", Servers.User, "--password-env", "PEER_PW", "-f", "a@example.test", "-t", Servers.Unique("crlfpw"), "--body", "x"],
            null,
            new Dictionary<string, string?> { ["PEER_PW"] = Servers.Password + "\r\n" });

        run.ExitCode.Should().Be(0, run.ToString());
    }

    [Fact]
    public async Task A_mechanism_the_server_does_not_offer_exits_3()
    {
        var run = await SendAsync(Servers.Exim, Servers.Unique(), "--auth", "SCRAM-SHA-256", "--user", Servers.User, "--password-env", "PEER_PW");

        run.ExitCode.Should().Be(3, run.ToString());
    }

    [Fact]
    public async Task An_unknown_mechanism_is_a_usage_error_naming_the_choices()
    {
        var run = await SendAsync(Servers.Postfix, Servers.Unique(), "--auth", "GSSAPI", "--user", Servers.User, "--password-env", "PEER_PW");

        run.ExitCode.Should().Be(1, run.ToString());
        run.Error.Should().Contain("--auth").And.Contain("SCRAM-SHA-256");
    }

    [Fact]
    public async Task Auth_without_user_is_a_usage_error()
    {
        var run = await SendAsync(Servers.Postfix, Servers.Unique(), "--auth", "PLAIN", "--password-env", "PEER_PW");

        run.ExitCode.Should().Be(1, run.ToString());
    }
}
