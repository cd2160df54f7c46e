using System.Net.Security;
using System.Security.Authentication;
using MailPipe.Tests.Authentication;

namespace MailPipe.Tests.Tls;

public sealed class StartTlsTests
{
    private static AsyncSmtpSession NewSession(SmtpTlsOptions? tls = null, AuthTestLoggerFactory? log = null) => new(new SmtpSessionOptions
    {
        Tls = tls ?? TlsTestCertificate.TrustingOptions(),
        ReceiveTimeout = TimeSpan.FromSeconds(15),
        LoggerFactory = log,
    });

    [Fact]
    public async Task StartTls_upgrades_the_connection_clears_capabilities_and_the_next_EHLO_reads_them_again()
    {
        var log = new AuthTestLoggerFactory();
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS", "PIPELINING");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("220 2.0.0 Ready to start TLS");
            await c.UpgradeAsync(TlsTestCertificate.WithKey);
            await c.ExpectAsync("EHLO ");
            await c.EhloReplyAsync("AUTH PLAIN LOGIN", "PIPELINING");
            await c.ExpectAsync("QUIT");
            await c.ReplyAsync("221 bye");
        });
        await using var session = NewSession(log: log);
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        session.Capabilities.SupportsStartTls.Should().BeTrue();
        session.IsEncrypted.Should().BeFalse();

        var reply = await session.StartTlsAsync();

        reply.Code.Should().Be(220);
        session.IsEncrypted.Should().BeTrue();
        session.Capabilities.Count.Should().Be(0, "RFC 3207 §4.2: forget what the server said before TLS");
        session.SslProtocol.Should().BeOneOf(SslProtocols.Tls12, SslProtocols.Tls13);
        session.NegotiatedCipherSuite.Should().NotBeNull();
        session.RemoteCertificate!.Thumbprint.Should().Be(TlsTestCertificate.WithKey.Thumbprint);
        session.CertificateNameMismatch.Should().BeFalse();
        session.RemoteCertificateErrors.Should().Be(SslPolicyErrors.None);

        await session.EhloAsync("client.test");
        session.Capabilities.SupportsStartTls.Should().BeFalse();
        session.Capabilities.AuthenticationMechanisms.Should().Equal("PLAIN", "LOGIN");
        await session.QuitAsync();
        await server.Completion;
        server.Received.Should().Equal("EHLO client.test", "STARTTLS", "EHLO client.test", "QUIT");
        log.Lines.Should().Contain(l => l.Contains("TLS established", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Bytes_after_the_220_reply_are_refused_as_response_injection_before_any_handshake()
    {
        var clientBytesAfterStartTls = -1;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            // One write: the 220 and a forged reply the attacker wants to be read as if it came over TLS (CVE-2011-0411 class).
            await c.SendAsync("220 Go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n");
            clientBytesAfterStartTls = await c.DrainAsync();
        });
        await using var session = NewSession();
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");

        var act = () => session.StartTlsAsync();

        var error = (await act.Should().ThrowAsync<SmtpProtocolException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.StartTlsResponseInjection);
        session.IsConnected.Should().BeFalse();
        session.IsEncrypted.Should().BeFalse();
        await server.Completion;
        clientBytesAfterStartTls.Should().Be(0, "no TLS ClientHello (nor anything else) may follow");
    }

    [Fact]
    public async Task StartTlsRequired_against_a_server_without_STARTTLS_fails_and_sends_nothing_after_EHLO()
    {
        var bytesAfterEhlo = -1;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH PLAIN LOGIN", "SIZE 1000");
            bytesAfterEhlo = await c.DrainAsync();
        });
        await using var session = NewSession();

        var act = () => session.ConnectAsync(server.Host, server.Port, SmtpTlsMode.StartTlsRequired, "client.test");

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.StartTlsNotOffered);
        session.IsConnected.Should().BeFalse();
        await server.Completion;
        bytesAfterEhlo.Should().Be(0);
        server.Received.Should().Equal("EHLO client.test");
    }

    [Fact]
    public async Task StartTlsRequired_when_the_server_refuses_STARTTLS_fails_and_closes()
    {
        var bytesAfterRefusal = -1;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("454 4.7.0 TLS not available due to temporary reason");
            bytesAfterRefusal = await c.DrainAsync();
        });
        await using var session = NewSession();

        var act = () => session.ConnectAsync(server.Host, server.Port, SmtpTlsMode.StartTlsRequired, "client.test");

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.StartTlsNotOffered);
        await server.Completion;
        bytesAfterRefusal.Should().Be(0);
    }

    [Fact]
    public async Task StartTlsRequired_sends_EHLO_again_over_TLS_and_returns_that_reply()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("220 ready");
            await c.UpgradeAsync(TlsTestCertificate.WithKey);
            await c.ExpectAsync("EHLO client.test");
            await c.EhloReplyAsync("AUTH SCRAM-SHA-256");
            await c.ExpectAsync("QUIT");
            await c.ReplyAsync("221 bye");
        });
        await using var session = NewSession();

        var ehlo = await session.ConnectAsync(server.Host, server.Port, SmtpTlsMode.StartTlsRequired, "client.test");

        ehlo.Code.Should().Be(250);
        session.IsEncrypted.Should().BeTrue();
        session.Capabilities.AuthenticationMechanisms.Should().Equal("SCRAM-SHA-256");
        await session.QuitAsync();
        await server.Completion;
        server.Received.Should().Equal("EHLO client.test", "STARTTLS", "EHLO client.test", "QUIT");
    }

    [Fact]
    public async Task StartTlsWhenAvailable_goes_on_in_clear_text_when_STARTTLS_is_not_offered()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("SIZE 1000");
            await c.ExpectAsync("QUIT");
            await c.ReplyAsync("221 bye");
        });
        await using var session = NewSession();

        var ehlo = await session.ConnectAsync(server.Host, server.Port, SmtpTlsMode.StartTlsWhenAvailable, "client.test");

        ehlo.Code.Should().Be(250);
        session.IsEncrypted.Should().BeFalse();
        session.Capabilities.MaxMessageSize.Should().Be(1000);
        await session.QuitAsync();
        await server.Completion;
    }

    [Fact]
    public async Task Implicit_TLS_reads_the_greeting_over_TLS()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.UpgradeAsync(TlsTestCertificate.WithKey);
            await c.ReplyAsync("220 implicit.test ESMTP");
            await c.ExpectAsync("EHLO ");
            await c.EhloReplyAsync("AUTH PLAIN");
            await c.ExpectAsync("QUIT");
            await c.ReplyAsync("221 bye");
        });
        await using var session = NewSession();

        var ehlo = await session.ConnectAsync(server.Host, server.Port, SmtpTlsMode.Implicit, "client.test");

        ehlo.Code.Should().Be(250);
        session.Greeting!.Text.Should().Be("implicit.test ESMTP");
        session.IsEncrypted.Should().BeTrue();
        session.Capabilities.AuthenticationMechanisms.Should().Equal("PLAIN");
        await session.QuitAsync();
        await server.Completion;
    }

    [Fact]
    public async Task Seed_style_ConnectAsync_without_greeting_then_ConnectTlsAsync_with_greeting()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.UpgradeAsync(TlsTestCertificate.WithKey);
            await c.ReplyAsync("220 implicit.test ESMTP");
            await c.ExpectAsync("QUIT");
            await c.ReplyAsync("221 bye");
        });
        await using var session = NewSession(new SmtpTlsOptions());

        (await session.ConnectAsync(server.Host, server.Port, waitForGreeting: false)).Should().BeNull();
        var greeting = await session.ConnectTlsAsync(TlsTestCertificate.TrustingOptions(), waitForGreeting: true);

        greeting!.Code.Should().Be(220);
        session.IsEncrypted.Should().BeTrue();
        await session.QuitAsync();
        await server.Completion;
    }

    [Fact]
    public async Task Seed_style_raw_STARTTLS_then_ConnectTlsAsync_without_greeting()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("220 go");
            await c.UpgradeAsync(TlsTestCertificate.WithKey);
            await c.ExpectAsync("NOOP");
            await c.ReplyAsync("250 ok");
        });
        await using var session = NewSession();
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        await session.SendCommandAsync("STARTTLS");
        (await session.ReceiveReplyAsync()).Code.Should().Be(220);

        (await session.ConnectTlsAsync("localhost", waitForGreeting: false)).Should().BeNull();

        session.IsEncrypted.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
        await server.Completion;
    }

    [Fact]
    public async Task A_certificate_that_does_not_name_the_server_fails_with_BadCertificateName_by_default()
    {
        var handshakeCompleted = true;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("220 go");
            handshakeCompleted = await c.TryUpgradeAsync(TlsTestCertificate.WithKey);
            if (handshakeCompleted)
            {
                await c.DrainAsync();
            }
        });
        var tls = TlsTestCertificate.TrustingOptions();
        tls.TargetHost = "mail.example.test";
        await using var session = NewSession(tls);
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");

        var act = () => session.StartTlsAsync();

        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.BadCertificateName);
        error.Message.Should().Contain("mail.example.test");
        error.Message.Should().Contain("Tls:AcceptCertificateNameMismatch", "an application configured by MailPipe.Extensions.DependencyInjection sets the key, not the property");
        session.IsConnected.Should().BeFalse();
        await server.Completion;
    }

    [Fact]
    public async Task AcceptCertificateNameMismatch_lets_the_same_connection_proceed_and_reports_the_mismatch()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("220 go");
            await c.UpgradeAsync(TlsTestCertificate.WithKey);
            await c.ExpectAsync("EHLO ");
            await c.EhloReplyAsync("AUTH PLAIN");
        });
        var tls = TlsTestCertificate.TrustingOptions();
        tls.TargetHost = "mail.example.test";
        tls.AcceptCertificateNameMismatch = true;
        await using var session = NewSession(tls);

        var ehlo = await session.ConnectAsync(server.Host, server.Port, SmtpTlsMode.StartTlsRequired, "client.test");

        ehlo.Code.Should().Be(250);
        session.IsEncrypted.Should().BeTrue();
        session.CertificateNameMismatch.Should().BeTrue();
        session.RemoteCertificateErrors.Should().Be(SslPolicyErrors.RemoteCertificateNameMismatch);
        await server.Completion;
    }

    [Fact]
    public async Task AcceptCertificateNameMismatch_does_not_accept_an_untrusted_certificate()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.TryUpgradeAsync(TlsTestCertificate.WithKey);
        });
        await using var session = NewSession(new SmtpTlsOptions { TargetHost = "mail.example.test", AcceptCertificateNameMismatch = true });
        await session.ConnectAsync(server.Host, server.Port, waitForGreeting: false);

        var act = () => session.ConnectTlsAsync(waitForGreeting: true);

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.BadCertificate);
    }

    [Fact]
    public async Task An_untrusted_self_signed_certificate_fails_with_BadCertificate()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.TryUpgradeAsync(TlsTestCertificate.WithKey);
        });
        await using var session = NewSession(new SmtpTlsOptions());
        await session.ConnectAsync(server.Host, server.Port, waitForGreeting: false);

        var act = () => session.ConnectTlsAsync(waitForGreeting: true);

        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.BadCertificate);
        error.Message.Should().Contain("Tls:CaFile", "an application configured by MailPipe.Extensions.DependencyInjection trusts its CA with the key, not the property");
        error.IsTransient.Should().BeFalse();
        session.IsConnected.Should().BeFalse();
        await server.Completion;
    }

    [Fact]
    public async Task A_validation_callback_in_ClientAuthenticationOptions_decides_alone()
    {
        SslPolicyErrors seen = (SslPolicyErrors)(-1);
        await using var server = new AuthScriptServer(async c =>
        {
            await c.UpgradeAsync(TlsTestCertificate.WithKey);
            await c.ReplyAsync("220 ok");
        });
        var tls = new SmtpTlsOptions
        {
            ClientAuthenticationOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    seen = errors;
                    return certificate!.GetCertHashString() == TlsTestCertificate.WithKey.GetCertHashString(); // pinning
                },
            },
        };
        await using var session = NewSession(tls);
        await session.ConnectAsync(server.Host, server.Port, waitForGreeting: false);

        var greeting = await session.ConnectTlsAsync(waitForGreeting: true);

        greeting!.Code.Should().Be(220);
        seen.Should().Be(SslPolicyErrors.RemoteCertificateChainErrors);
        session.RemoteCertificateErrors.Should().Be(SslPolicyErrors.RemoteCertificateChainErrors);
        await server.Completion;
    }

    [Fact]
    public async Task A_server_that_does_not_speak_TLS_fails_with_TlsHandshakeFailed()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("220 go");
            (await c.ReadSomeAsync()).Should().BePositive(); // the ClientHello (or its start)
            await c.SendAsync("this is not a TLS record\r\n");
            await c.DrainAsync();
        });
        await using var session = NewSession();
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");

        var act = () => session.StartTlsAsync();

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.TlsHandshakeFailed);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task A_negative_reply_to_STARTTLS_is_returned_and_the_session_goes_on_unencrypted()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("454 4.7.0 TLS not available");
            await c.ExpectAsync("NOOP");
            await c.ReplyAsync("250 ok");
        });
        await using var session = NewSession();
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");

        var reply = await session.StartTlsAsync();

        reply.Code.Should().Be(454);
        session.IsEncrypted.Should().BeFalse();
        session.Capabilities.SupportsStartTls.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
        await server.Completion;
    }

    [Fact]
    public async Task StartTls_twice_is_refused_without_sending()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.UpgradeAsync(TlsTestCertificate.WithKey);
            await c.ReplyAsync("220 ok");
            await c.DrainAsync();
        });
        await using var session = NewSession();
        await session.ConnectAsync(server.Host, server.Port, waitForGreeting: false);
        await session.ConnectTlsAsync(waitForGreeting: true);

        var act = () => session.StartTlsAsync();

        await act.Should().ThrowAsync<InvalidOperationException>();
        session.IsConnected.Should().BeTrue();
    }

    [Fact]
    public void Trusted_roots_load_from_a_PEM_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mailpipe-test-{Guid.NewGuid():N}.pem");
        File.WriteAllText(path, TlsTestCertificate.PublicOnly.ExportCertificatePem());
        try
        {
            var options = new SmtpTlsOptions();
            options.AddTrustedRootCertificatesFromPemFile(path).Should().Be(1);
            options.TrustedRootCertificates[0].Thumbprint.Should().Be(TlsTestCertificate.WithKey.Thumbprint);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Session_options_copy_the_TLS_options()
    {
        var tls = new SmtpTlsOptions { TargetHost = "a.test" };
        var options = new SmtpSessionOptions { Tls = tls };
        using var session = new AsyncSmtpSession(options);
        tls.TargetHost = "b.test";
        tls.TrustedRootCertificates.Add(TlsTestCertificate.PublicOnly);
        session.Options.Tls.TargetHost.Should().Be("a.test");
        session.Options.Tls.TrustedRootCertificates.Should().BeEmpty();
    }
}
