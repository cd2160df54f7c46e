using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests;

/// <summary>
/// A new user copies the C# blocks of README.md, src/MailPipe/README.md and docs/tls-and-auth.md and runs them against
/// the real servers (only host, port, credentials and the example addresses adapted to the loopback servers), checking
/// what the prose around each block says.
/// </summary>
public sealed class Run21ReadmeBlockTests
{
    private const string Host = TestServers.Host;
    private static readonly CancellationToken ct = CancellationToken.None;

    private static SmtpSessionOptions TrustingOptions()
    {
        var options = new SmtpSessionOptions { ReceiveTimeout = TimeSpan.FromSeconds(30), ConnectTimeout = TimeSpan.FromSeconds(10) };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        return options;
    }

    /// <summary>README.md "Quick start": greeting 220, EHLO, SendAsync Accepted with the refused recipient listed, QUIT; QUIT again throws.</summary>
    [Fact]
    public async Task Readme_quick_start_runs_and_its_comments_hold()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var bob = TestServers.UniqueRecipient("run21-bob");
        var path = Path.Combine(Path.GetTempPath(), $"run21-{Guid.NewGuid():N}.eml");
        await File.WriteAllTextAsync(path, "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: run21 quick start\r\n\r\nHi Bob\r\n");
        try
        {
            await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
            var greeting = await session.ConnectAsync(Host, TestServers.PostfixPort, cancellationToken: ct);   // greeting: 220
            greeting!.Code.Should().Be(220);
            (await session.HelloAsync("client.example.com", ct)).Code.Should().Be(250);

            var envelope = new SmtpEnvelope("alice@example.test", bob, "tempfail@example.test");
            await using var content = File.OpenRead(path);
            SmtpSendResult result = await session.SendAsync(envelope, content, ct);

            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "final 2yz");
            result.RefusedRecipients.Should().ContainSingle("result.RefusedRecipients lists any refused recipient")
                .Which.Reply!.Code.Should().Be(450);
            (await Maildir.WaitForPostfixAsync(bob)).Should().HaveCount(1);

            session.IsConnected.Should().BeTrue();
            (await session.QuitAsync(ct)).Code.Should().Be(221);
            var again = async () => await session.QuitAsync(ct);
            await again.Should().ThrowAsync<InvalidOperationException>("(QuitAsync on a closed session throws InvalidOperationException)");
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>README.md "Quick start", the Refused case: every recipient 4yz is Refused, IsTransientFailure, the replies say why.</summary>
    [Fact]
    public async Task Readme_quick_start_refused_case_says_why_and_if_retrying_may_help()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        await session.ConnectAsync(Host, TestServers.PostfixPort, cancellationToken: ct);
        await session.HelloAsync("client.example.com", ct);
        var result = await session.SendAsync(new SmtpEnvelope("alice@example.test", "tempfail@example.test"), "Subject: x\r\n\r\ny\r\n"u8.ToArray(), ct);
        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.IsTransientFailure.Should().BeTrue();
        result.Recipients.Should().ContainSingle().Which.Reply!.Code.Should().Be(450);
        session.IsConnected.Should().BeTrue();
    }

    /// <summary>README.md "Command by command": every call returns the reply; XFOO's 502 is read back with ReceiveReplyAsync.</summary>
    [Fact]
    public async Task Readme_command_by_command_block_returns_every_reply()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var bob = TestServers.UniqueRecipient("run21-cmd");
        ReadOnlyMemory<byte> part1 = "Subject: run21 command by command\n\n.a line starting with a dot\nsplit ac"u8.ToArray();
        ReadOnlyMemory<byte> part2 = "ross two writes\r\n"u8.ToArray();
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        await session.ConnectAsync(Host, TestServers.PostfixPort, cancellationToken: ct);
        await session.HelloAsync("client.example.com", ct);

        var reply = await session.MailFromAsync("alice@example.test", "SIZE=1024", ct);
        reply.Code.Should().Be(250);
        var unknown = await session.RcptToAsync("unknown-run21@example.test", cancellationToken: ct);
        unknown.IsPermanentNegative.Should().BeTrue("nothing throws for a 5yz");
        $"{unknown.Code} {unknown.EnhancedStatusCode} {unknown.Text}".Should().StartWith("550 5.1.1 ");
        reply = await session.RcptToAsync(bob, cancellationToken: ct);
        reply.Code.Should().Be(250);
        reply = await session.DataAsync(ct);
        reply.Code.Should().Be(354);
        await session.WriteMessageDataAsync(part1, ct);
        await session.WriteMessageDataAsync(part2, ct);
        reply = await session.EndMessageDataAsync(ct);
        reply.Code.Should().Be(250);
        await session.SendCommandAsync("XFOO arg", ct);
        reply = await session.ReceiveReplyAsync(ct);
        reply.Code.Should().Be(500, "Postfix: 500 5.5.2 Error: command not recognized, returned like any reply");

        var stored = Encoding.ASCII.GetString((await Maildir.WaitForPostfixAsync(bob))[0]).Replace("\r", "", StringComparison.Ordinal);
        stored.Should().Contain("\n.a line starting with a dot\n").And.Contain("split across two writes");
        await session.QuitAsync(ct);
    }

    /// <summary>README.md, after "Command by command": without SMTPUTF8 a non-ASCII local part is ArgumentException before anything is written.</summary>
    [Fact]
    public async Task Readme_non_ascii_local_part_without_SMTPUTF8_is_ArgumentException_and_the_session_goes_on()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        await session.ConnectAsync(Host, TestServers.PostfixPort, cancellationToken: ct);
        await session.HelloAsync("client.example.com", ct);
        (await session.MailFromAsync("alice@example.test", cancellationToken: ct)).Code.Should().Be(250);
        var rcpt = async () => await session.RcptToAsync("jöe@example.test", cancellationToken: ct);
        await rcpt.Should().ThrowAsync<ArgumentException>();
        session.PendingReplyCount.Should().Be(0);
        (await session.RcptToAsync("user@bücher.example", cancellationToken: ct)).Code.Should().BeOneOf(250, 554, 550, 454);
        (await session.RsetAsync(ct)).Code.Should().Be(250);
        await session.QuitAsync(ct);
    }

    /// <summary>src/MailPipe/README.md "Quick start: the shared sender" against the submission port (STARTTLS required, AUTH).</summary>
    [Fact]
    public async Task Package_readme_shared_sender_quick_start_is_Accepted_over_STARTTLS_with_AUTH()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var bob = TestServers.UniqueRecipient("run21-pkg");
        var options = new SmtpSenderOptions
        {
            Host = Host,
            Port = TestServers.PostfixSubmissionPort,
            TlsMode = SmtpTlsMode.StartTlsRequired,
            Credentials = new NetworkCredential(TestServers.User, TestServers.Password),
            MaxConnections = 4,
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await using var sender = new SmtpSender(options);

        var envelope = new SmtpEnvelope("me@example.test", bob);
        var content = "From: me@example.test\r\nTo: bob@example.test\r\nSubject: Hello\r\n\r\nHi Bob!\r\n"u8.ToArray();
        SmtpSendResult result = await sender.SendAsync(envelope, content, ct);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        (await Maildir.WaitForPostfixAsync(bob)).Should().HaveCount(1);
    }

    /// <summary>src/MailPipe/README.md: without trusting the test CA the handshake fails with BadCertificate, or a NotSent result from the sender.</summary>
    [Fact]
    public async Task Package_readme_untrusted_certificate_is_BadCertificate_or_NotSent_from_the_sender()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        var connect = async () => await session.ConnectAsync(Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.StartTlsRequired, "client.example.com", ct);
        (await connect.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.BadCertificate);

        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = Host, Port = TestServers.PostfixSubmissionPort });
        var result = await sender.SendAsync(new SmtpEnvelope("me@example.test", "bob@example.test"), "Subject: x\r\n\r\ny\r\n"u8.ToArray(), ct);
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.BadCertificate);
    }

    /// <summary>src/MailPipe/README.md "One connection, command by command": STARTTLS required on 2525, MAIL, RCPT (550 printed), QUIT.</summary>
    [Fact]
    public async Task Package_readme_command_by_command_block_runs_over_STARTTLS()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = new AsyncSmtpSession(TrustingOptions());
        await session.ConnectAsync(Host, TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired, "client.example.com", ct);
        session.IsEncrypted.Should().BeTrue();
        SmtpReply reply = await session.MailFromAsync("alice@example.test", cancellationToken: ct);
        reply.Code.Should().Be(250);
        reply = await session.RcptToAsync("unknown-run21@example.test", cancellationToken: ct);
        reply.IsPermanentNegative.Should().BeTrue();
        reply.EnhancedStatusCode.ToString().Should().Be("5.1.1");
        (await session.QuitAsync(ct)).Code.Should().Be(221);
    }

    /// <summary>src/MailPipe/README.md "Thread-safety": a second concurrent call on one session throws InvalidOperationException (a loopback server that holds its reply to NOOP).</summary>
    [Fact]
    public async Task Package_readme_a_second_concurrent_call_on_a_session_is_InvalidOperationException()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var release = new TaskCompletionSource();
        var server = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.ASCII);
            await stream.WriteAsync("220 held ESMTP\r\n"u8.ToArray());
            while (await reader.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("NOOP", StringComparison.Ordinal))
                {
                    await release.Task;
                }

                await stream.WriteAsync(Encoding.ASCII.GetBytes(line.StartsWith("QUIT", StringComparison.Ordinal) ? "221 bye\r\n" : "250 ok\r\n"));
            }
        });
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        await session.ConnectAsync(Host, ((IPEndPoint)listener.LocalEndpoint).Port, cancellationToken: ct);
        await session.HelloAsync("client.example.com", ct);
        var first = session.NoopAsync(ct);
        var second = async () => await session.NoopAsync(ct);
        await second.Should().ThrowAsync<InvalidOperationException>("one operation at a time");
        release.SetResult();
        (await first).Code.Should().Be(250);
        (await session.NoopAsync(ct)).Code.Should().Be(250, "the refused call changed nothing");
        await session.QuitAsync(ct);
        await server;
    }

    /// <summary>docs/tls-and-auth.md "TLS modes", first block: one call returns the last EHLO reply, over TLS.</summary>
    [Fact]
    public async Task Tls_doc_one_call_returns_the_EHLO_reply_over_TLS()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var options = new SmtpSessionOptions();
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await using var session = new AsyncSmtpSession(options);
        SmtpReply ehlo = await session.ConnectAsync(Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.StartTlsRequired, "client.example.org");
        ehlo.Code.Should().Be(250);
        session.IsEncrypted.Should().BeTrue();
        session.Capabilities.Contains("AUTH").Should().BeTrue("the last EHLO is the one over TLS (smtpd_tls_auth_only)");
        session.Capabilities.Contains("STARTTLS").Should().BeFalse();
    }

    /// <summary>docs/tls-and-auth.md table: StartTlsRequired against a server without STARTTLS throws StartTlsNotOffered and closes.</summary>
    [Fact]
    public async Task Tls_doc_StartTlsRequired_without_STARTTLS_is_StartTlsNotOffered_and_closed()
    {
        TestServers.RequireListening(TestServers.SinkPort);
        await using var session = new AsyncSmtpSession(TrustingOptions());
        await session.ConnectAsync(Host, TestServers.SinkPort);
        var capabilities = await session.EhloAsync("client.example.org");
        capabilities.Code.Should().Be(250);
        var offered = session.Capabilities.Contains("STARTTLS");
        await session.DisconnectAsync();
        offered.Should().BeFalse("smtp-sink offers no STARTTLS");

        var connect = async () => await session.ConnectAsync(Host, TestServers.SinkPort, SmtpTlsMode.StartTlsRequired, "client.example.org");
        (await connect.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.StartTlsNotOffered);
        session.IsConnected.Should().BeFalse();
    }

    /// <summary>docs/tls-and-auth.md, second block: implicit TLS step by step, then STARTTLS step by step.</summary>
    [Fact]
    public async Task Tls_doc_steps_one_by_one_implicit_then_starttls()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        await using var session = new AsyncSmtpSession(TrustingOptions());

        (await session.ConnectAsync(Host, TestServers.PostfixTlsPort, waitForGreeting: false)).Should().BeNull();
        SmtpReply? greeting = await session.ConnectTlsAsync(waitForGreeting: true);
        greeting!.Code.Should().Be(220);
        session.IsEncrypted.Should().BeTrue();
        await session.QuitAsync();

        await session.ConnectAsync(Host, TestServers.PostfixSubmissionPort);
        await session.EhloAsync("client.example.org");
        SmtpReply reply = await session.StartTlsAsync();
        reply.Code.Should().Be(220);
        session.Capabilities.Count.Should().Be(0, "Capabilities is empty until the next EHLO");
        session.IsEncrypted.Should().BeTrue();
        session.SslProtocol.Should().Be(SslProtocols.Tls13);
        session.RemoteCertificate.Should().NotBeNull();
        (await session.EhloAsync("client.example.org")).Code.Should().Be(250);
        session.Capabilities.Contains("AUTH").Should().BeTrue();
        await session.QuitAsync();
    }

    /// <summary>docs/tls-and-auth.md, the table: implicit TLS against Postfix's 2525 (greets first) is TlsHandshakeFailed quoting the 220 and naming StartTlsRequired.</summary>
    [Fact]
    public async Task Tls_doc_implicit_TLS_against_a_port_that_greets_first_quotes_the_plain_text_line()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = new AsyncSmtpSession(TrustingOptions());
        var connect = async () => await session.ConnectAsync(Host, TestServers.PostfixPort, SmtpTlsMode.Implicit, "client.example.org");
        var thrown = (await connect.Should().ThrowAsync<SmtpException>()).Which;
        thrown.ErrorCode.Should().Be(SmtpErrorCode.TlsHandshakeFailed);
        thrown.Message.Should().Contain("the server answered in plain text, not TLS (\"220 ").And.Contain("StartTlsRequired");
        session.IsConnected.Should().BeFalse();
    }

    /// <summary>docs/tls-and-auth.md, the name-mismatch block: accepted on purpose proceeds with CertificateNameMismatch; not accepted is BadCertificateName.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Tls_doc_name_mismatch_block(bool accept)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        var tls = new SmtpTlsOptions { TargetHost = "mail.example.test", AcceptCertificateNameMismatch = accept };
        tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await session.ConnectAsync(Host, TestServers.PostfixPort);
        await session.EhloAsync("client.test");
        if (accept)
        {
            (await session.StartTlsAsync(tls)).Code.Should().Be(220);
            session.CertificateNameMismatch.Should().BeTrue();
            (await session.EhloAsync("client.test")).Code.Should().Be(250);
        }
        else
        {
            var start = async () => await session.StartTlsAsync(tls);
            (await start.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.BadCertificateName);
            session.IsConnected.Should().BeFalse();
        }
    }

    /// <summary>docs/tls-and-auth.md, the pinning options: the caller's callback decides alone (right thumbprint: TLS 1.3; wrong: BadCertificate).</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Tls_doc_pinning_callback_decides_alone(bool rightThumbprint)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        using var certificate = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(TestServers.TlsCertificate));
        var expectedThumbprint = rightThumbprint ? certificate.GetCertHashString() : new string('0', 40);
        var pinned = new SmtpTlsOptions
        {
            ClientAuthenticationOptions = new SslClientAuthenticationOptions
            {
                EnabledSslProtocols = SslProtocols.Tls13,
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert?.GetCertHashString() == expectedThumbprint,
            },
        };
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        await session.ConnectAsync(Host, TestServers.PostfixPort);
        await session.EhloAsync("client.test");
        if (rightThumbprint)
        {
            (await session.StartTlsAsync(pinned)).Code.Should().Be(220);
            session.SslProtocol.Should().Be(SslProtocols.Tls13);
        }
        else
        {
            var start = async () => await session.StartTlsAsync(pinned);
            (await start.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.BadCertificate);
        }
    }

    /// <summary>docs/tls-and-auth.md "Choosing a mechanism": 235 with the strongest mechanism (SCRAM-SHA-256); a wrong password is a returned 535.</summary>
    [Fact]
    public async Task Tls_doc_choosing_a_mechanism_block()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        await using var session = new AsyncSmtpSession(TrustingOptions());
        await session.ConnectAsync(Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.StartTlsRequired, "client.example.org");
        SmtpReply wrong = await session.AuthenticateAsync(new NetworkCredential(TestServers.User, "wrong-password"));
        wrong.Code.Should().Be(535, "a refused password is a reply");
        session.IsAuthenticated.Should().BeFalse();

        SmtpReply reply = await session.AuthenticateAsync(new NetworkCredential(TestServers.User, TestServers.Password));
        reply.Code.Should().Be(235);
        session.IsAuthenticated.Should().BeTrue();
        session.AuthenticatedMechanism.Should().Be("SCRAM-SHA-256", "SCRAM-SHA-256 comes first in PasswordPreferenceOrder");
    }

    /// <summary>docs/tls-and-auth.md "Each mechanism", examples: every password mechanism Postfix/Cyrus offers gives 235.</summary>
    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    [InlineData("CRAM-MD5")]
    [InlineData("NTLM")]
    [InlineData("SCRAM-SHA-256")]
    [InlineData("SCRAM-SHA-1")]
    public async Task Tls_doc_each_mechanism_example_authenticates(string mechanism)
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        await using var session = new AsyncSmtpSession(TrustingOptions());
        await session.ConnectAsync(Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.StartTlsRequired, "client.example.org");
        var password = TestServers.Password;
        SmtpReply reply = mechanism switch
        {
            "PLAIN" => await session.AuthPlainAsync(TestServers.User, password),
            "LOGIN" => await session.AuthLoginAsync(TestServers.User, password),
            "CRAM-MD5" => await session.AuthCramMd5Async(TestServers.User, password),
            "NTLM" => await session.AuthNtlmAsync(new NetworkCredential(TestServers.User, password)),
            "SCRAM-SHA-256" => await session.AuthScramAsync(TestServers.User, password, HashAlgorithmName.SHA256),
            _ => await session.AuthScramAsync(TestServers.User, password, HashAlgorithmName.SHA1),
        };
        reply.Code.Should().Be(235, reply.ToString());
        session.AuthenticatedMechanism.Should().Be(mechanism);
    }

    /// <summary>docs/tls-and-auth.md "Clear-text policy": PLAIN without TLS is InvalidOperationException before anything is sent, the connection stays open.</summary>
    [Fact]
    public async Task Tls_doc_plain_without_TLS_is_refused_before_sending()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        await session.ConnectAsync(Host, TestServers.PostfixPort, SmtpTlsMode.None, "client.example.org");
        var plain = async () => await session.AuthPlainAsync(TestServers.User, TestServers.Password);
        await plain.Should().ThrowAsync<InvalidOperationException>();
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    /// <summary>docs/tls-and-auth.md, the OAuth example against a server that offers neither OAUTHBEARER nor XOAUTH2.</summary>
    [Fact]
    public async Task Tls_doc_oauth_against_a_server_without_it_sends_nothing()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        await using var session = new AsyncSmtpSession(TrustingOptions());
        await session.ConnectAsync(Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.StartTlsRequired, "client.example.org");
        var calls = 0;
        var xoauth = async () => await session.AuthXOAuth2Async("user@example.org", _ => { calls++; return ValueTask.FromResult("token"); });
        await xoauth.Should().ThrowAsync<InvalidOperationException>("a mechanism the last EHLO reply does not list: nothing sent");
        session.IsConnected.Should().BeTrue();
        var auto = async () => await session.AuthenticateAsync("user@example.org", _ => { calls++; return ValueTask.FromResult("token"); });
        var thrown = (await auto.Should().ThrowAsync<SmtpException>()).Which;
        thrown.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError, "no usable mechanism");
        thrown.Message.Should().Contain("Nothing was sent");
        calls.Should().Be(0);
        session.IsConnected.Should().BeFalse("no usable mechanism closes the connection");
    }

    /// <summary>docs/tls-and-auth.md "Any other mechanism: the raw exchange": an unknown mechanism is sent and the server's 504 returned.</summary>
    [Fact]
    public async Task Tls_doc_raw_exchange_returns_the_servers_refusal()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        await using var session = new AsyncSmtpSession(TrustingOptions());
        await session.ConnectAsync(Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.StartTlsRequired, "client.example.org");
        var challenges = 0;
        SmtpReply reply = await session.AuthenticateAsync(
            "X-CUSTOM",
            initialResponse: Encoding.UTF8.GetBytes("hello"),
            onChallenge: (challenge, _) =>
            {
                challenges++;
                return ValueTask.FromResult<ReadOnlyMemory<byte>?>(null);
            });
        reply.Code.Should().Be(535, "Postfix/Cyrus refuses a mechanism it does not know with 535 (the doc: returns the refusal, 504 or 535)");
        challenges.Should().Be(0);
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
    }
    /// <summary>docs/tls-and-auth.md "Choosing a mechanism": no usable mechanism is SmtpException(AuthenticationError) naming what the server offers; nothing sent, the connection closed.</summary>
    [Fact]
    public async Task Tls_doc_no_usable_mechanism_is_AuthenticationError_and_closes()
    {
        TestServers.RequireListening(TestServers.SinkPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        await session.ConnectAsync(Host, TestServers.SinkPort, SmtpTlsMode.None, "client.example.org");
        session.Capabilities.AuthenticationMechanisms.Should().Contain("PLAIN");
        var auth = async () => await session.AuthenticateAsync(new NetworkCredential(TestServers.User, TestServers.Password));
        var thrown = (await auth.Should().ThrowAsync<SmtpException>()).Which;
        thrown.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        thrown.Message.Should().Contain("PLAIN");
        session.IsConnected.Should().BeFalse("the connection is closed (as after any SmtpException)");
    }

    /// <summary>docs/tls-and-auth.md: a pinned mechanism the server does not list is InvalidOperationException before anything is sent; the session stays usable. A 235 is cleared by a disconnect.</summary>
    [Fact]
    public async Task Tls_doc_pinned_mechanism_not_listed_is_InvalidOperationException_and_235_is_cleared_by_disconnect()
    {
        TestServers.RequireListening(TestServers.SinkPort);
        await using (var sink = new AsyncSmtpSession(new SmtpSessionOptions()))
        {
            await sink.ConnectAsync(Host, TestServers.SinkPort, SmtpTlsMode.None, "client.example.org");
            sink.Capabilities.AuthenticationMechanisms.Should().NotContain("CRAM-MD5");
            var pinned = async () => await sink.AuthenticateAsync(new NetworkCredential(TestServers.User, TestServers.Password), new SmtpAuthenticationOptions { Mechanism = "CRAM-MD5" });
            await pinned.Should().ThrowAsync<InvalidOperationException>();
            sink.IsConnected.Should().BeTrue();
            (await sink.NoopAsync()).Code.Should().Be(250);
        }

        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        await using var session = new AsyncSmtpSession(TrustingOptions());
        await session.ConnectAsync(Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.StartTlsRequired, "client.example.org");
        foreach (var other in new[] { "XOAUTH2", "DIGEST-MD5" })
        {
            // Listed by Postfix (DIGEST-MD5) or not (XOAUTH2), but not a password mechanism of MailPipe: ArgumentException, nothing sent.
            var notPassword = async () => await session.AuthenticateAsync(new NetworkCredential(TestServers.User, TestServers.Password), new SmtpAuthenticationOptions { Mechanism = other });
            (await notPassword.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("not a password mechanism");
            session.IsConnected.Should().BeTrue();
        }

        var login = await session.AuthenticateAsync(new NetworkCredential(TestServers.User, TestServers.Password), new SmtpAuthenticationOptions { Mechanism = "LOGIN" });
        login.Code.Should().Be(235);
        session.AuthenticatedMechanism.Should().Be("LOGIN");
        await session.DisconnectAsync();
        session.IsAuthenticated.Should().BeFalse();
        session.AuthenticatedMechanism.Should().BeNull();
    }
}
