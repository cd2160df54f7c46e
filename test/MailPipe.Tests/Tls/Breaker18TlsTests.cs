using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MailPipe.Tests.Authentication;

namespace MailPipe.Tests.Tls;

/// <summary>A peer's TLS probes (breaker18): STARTTLS injection on every path, the one-call modes' refusals, client certificates, the callback's input.</summary>
public sealed class Breaker18TlsTests
{
    private static AsyncSmtpSession NewSession(SmtpTlsOptions? tls = null) => new(new SmtpSessionOptions
    {
        Tls = tls ?? TlsTestCertificate.TrustingOptions(),
        ReceiveTimeout = TimeSpan.FromSeconds(15),
    });

    [Fact]
    public async Task StartTlsWhenAvailable_refuses_bytes_injected_after_the_220_and_does_not_go_on_in_clear_text()
    {
        var bytesAfterStartTls = -1;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.SendAsync("220 Go ahead\r\n250 injected\r\n");
            bytesAfterStartTls = await c.DrainAsync();
        });
        await using var session = NewSession();

        var act = () => session.ConnectAsync(server.Host, server.Port, SmtpTlsMode.StartTlsWhenAvailable, "client.test");

        (await act.Should().ThrowAsync<SmtpProtocolException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.StartTlsResponseInjection);
        session.IsConnected.Should().BeFalse();
        await server.Completion;
        bytesAfterStartTls.Should().Be(0);
    }

    [Fact]
    public async Task Seed_style_raw_STARTTLS_with_bytes_injected_after_the_220_is_refused_by_ConnectTlsAsync()
    {
        var bytesAfterStartTls = -1;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.SendAsync("220 Go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n");
            bytesAfterStartTls = await c.DrainAsync();
        });
        await using var session = NewSession();
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        await session.SendCommandAsync("STARTTLS");

        Exception? thrown = null;
        try
        {
            var reply = await session.ReceiveReplyAsync();
            reply.Code.Should().Be(220);
            await session.ConnectTlsAsync(waitForGreeting: false);
        }
        catch (SmtpException ex)
        {
            thrown = ex;
        }

        thrown.Should().NotBeNull("the injected replies must never be read as if they came over TLS");
        session.IsConnected.Should().BeFalse();
        session.IsEncrypted.Should().BeFalse();
        await server.Completion;
        bytesAfterStartTls.Should().Be(0, "no ClientHello may follow injected bytes");
    }

    [Fact]
    public async Task StartTlsRequired_against_a_server_that_answers_EHLO_502_fails_without_falling_back_to_HELO()
    {
        var bytesAfterEhlo = -1;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.ReplyAsync("220 old.test SMTP");
            await c.ExpectAsync("EHLO ");
            await c.ReplyAsync("502 5.5.1 Command not implemented");
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
    public async Task The_validation_callback_gets_the_errors_left_after_the_extra_roots_and_decides()
    {
        var seen = new List<SslPolicyErrors>();
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("220 ready");
            await c.UpgradeAsync(TlsTestCertificate.WithKey);
            await c.ExpectAsync("QUIT");
            await c.ReplyAsync("221 bye");
        });
        var tls = TlsTestCertificate.TrustingOptions();
        tls.ClientAuthenticationOptions = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, _, _, errors) =>
            {
                seen.Add(errors);
                return errors == SslPolicyErrors.None;
            },
        };
        await using var session = NewSession(tls);
        await session.ConnectAsync("localhost", server.Port);
        await session.EhloAsync("client.test");

        (await session.StartTlsAsync()).Code.Should().Be(220);

        seen.Should().Equal(SslPolicyErrors.None);
        session.RemoteCertificateErrors.Should().Be(SslPolicyErrors.None);
        await session.QuitAsync();
        await server.Completion;
    }

    [Fact]
    public async Task A_client_certificate_in_ClientAuthenticationOptions_is_presented_to_a_server_that_asks_for_one()
    {
        using var clientKey = RSA.Create(2048);
        var request = new CertificateRequest("CN=mailpipe-client", clientKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        using var clientCertificate = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);

        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        string? presented = null;
        var serverTask = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            await WriteAsync(stream, "220 ready\r\n");
            (await ReadLineAsync(stream)).Should().StartWith("EHLO ");
            await WriteAsync(stream, "250-x.test\r\n250 STARTTLS\r\n");
            (await ReadLineAsync(stream)).Should().Be("STARTTLS");
            await WriteAsync(stream, "220 go\r\n");
            await using var tls = new SslStream(stream);
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = TlsTestCertificate.WithKey,
                ClientCertificateRequired = true,
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null,
            });
            presented = tls.RemoteCertificate?.Subject;
            (await ReadLineAsync(tls)).Should().StartWith("EHLO ");
            await WriteAsync(tls, "250 x.test\r\n");
            (await ReadLineAsync(tls)).Should().Be("QUIT");
            await WriteAsync(tls, "221 bye\r\n");
        });
        try
        {
            var tlsOptions = TlsTestCertificate.TrustingOptions();
            tlsOptions.ClientAuthenticationOptions = new SslClientAuthenticationOptions { ClientCertificates = [clientCertificate] };
            await using var session = NewSession(tlsOptions);

            (await session.ConnectAsync("localhost", port, SmtpTlsMode.StartTlsRequired, "client.test")).Code.Should().Be(250);

            session.IsEncrypted.Should().BeTrue();
            await session.QuitAsync();
            await serverTask.WaitAsync(TimeSpan.FromSeconds(30));
            presented.Should().Be("CN=mailpipe-client");
        }
        finally
        {
            listener.Stop();
        }
    }

    [Theory]
    [InlineData(SslProtocols.Tls12, SslProtocols.Tls12 | SslProtocols.Tls13, true)]
    [InlineData(SslProtocols.Tls13, SslProtocols.Tls12, false)]
    public async Task The_callers_EnabledSslProtocols_decide_the_version_and_no_common_version_is_TlsHandshakeFailed(SslProtocols client, SslProtocols server, bool agrees)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serverTask = Task.Run(async () =>
        {
            using var connection = await listener.AcceptTcpClientAsync();
            var stream = connection.GetStream();
            await WriteAsync(stream, "220 ready\r\n");
            (await ReadLineAsync(stream)).Should().StartWith("EHLO ");
            await WriteAsync(stream, "250-x.test\r\n250 STARTTLS\r\n");
            (await ReadLineAsync(stream)).Should().Be("STARTTLS");
            await WriteAsync(stream, "220 go\r\n");
            await using var tls = new SslStream(stream);
            try
            {
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = TlsTestCertificate.WithKey, EnabledSslProtocols = server });
            }
            catch (Exception ex) when (!agrees && ex is AuthenticationException or IOException)
            {
                return;
            }

            (await ReadLineAsync(tls)).Should().StartWith("EHLO ");
            await WriteAsync(tls, "250 x.test\r\n");
            (await ReadLineAsync(tls)).Should().Be("QUIT");
            await WriteAsync(tls, "221 bye\r\n");
        });
        try
        {
            var tlsOptions = TlsTestCertificate.TrustingOptions();
            tlsOptions.ClientAuthenticationOptions = new SslClientAuthenticationOptions { EnabledSslProtocols = client };
            await using var session = NewSession(tlsOptions);

            var act = () => session.ConnectAsync("localhost", port, SmtpTlsMode.StartTlsRequired, "client.test");

            if (agrees)
            {
                (await act()).Code.Should().Be(250);
                session.SslProtocol.Should().Be(client);
                await session.QuitAsync();
            }
            else
            {
                (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.TlsHandshakeFailed);
                session.IsConnected.Should().BeFalse();
                session.IsEncrypted.Should().BeFalse();
            }

            await serverTask.WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task After_an_accepted_name_mismatch_and_a_disconnect_the_next_connection_shows_no_TLS_state()
    {
        await using var first = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("220 ready");
            await c.UpgradeAsync(TlsTestCertificate.WithKey);
            await c.ExpectAsync("EHLO ");
            await c.EhloReplyAsync("AUTH PLAIN");
            await c.ExpectAsync("AUTH PLAIN ");
            await c.ReplyAsync("235 2.7.0 ok");
            await c.DrainAsync();
        });
        var tls = TlsTestCertificate.TrustingOptions();
        tls.TargetHost = "other.example.test";
        tls.AcceptCertificateNameMismatch = true;
        await using var session = NewSession(tls);
        (await session.ConnectAsync(first.Host, first.Port, SmtpTlsMode.StartTlsRequired, "client.test")).Code.Should().Be(250);
        (await session.AuthPlainAsync("user", "pass")).Code.Should().Be(235);
        session.CertificateNameMismatch.Should().BeTrue();

        await session.DisconnectAsync();
        await first.Completion;
        await using var second = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("SIZE 10");
            await c.ExpectAsync("QUIT");
            await c.ReplyAsync("221 bye");
        });
        await session.ConnectAsync(second.Host, second.Port, SmtpTlsMode.None, "client.test");

        session.IsEncrypted.Should().BeFalse();
        session.CertificateNameMismatch.Should().BeFalse();
        session.RemoteCertificate.Should().BeNull();
        session.RemoteCertificateErrors.Should().Be(SslPolicyErrors.None);
        session.SslProtocol.Should().Be(SslProtocols.None);
        session.NegotiatedCipherSuite.Should().BeNull();
        session.IsAuthenticated.Should().BeFalse();
        session.Capabilities.MaxMessageSize.Should().Be(10);
        session.Capabilities.AuthenticationMechanisms.Should().BeEmpty();
        await session.QuitAsync();
        await second.Completion;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Closing_the_session_during_the_STARTTLS_handshake_ends_it_with_an_SmtpException_not_a_cancellation(bool dispose)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.ReplyAsync("220 go ahead");
            await c.ReadSomeAsync(); // the ClientHello: the handshake is under way; never answered
            reached.TrySetResult();
            await c.DrainAsync();
        });
        var session = NewSession();
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        var running = session.StartTlsAsync();
        await reached.Task.WaitAsync(TimeSpan.FromSeconds(20));

        if (dispose)
        {
            session.Dispose();
        }
        else
        {
            await session.DisconnectAsync();
        }

        var thrown = await FluentActions.Awaiting(() => running.WaitAsync(TimeSpan.FromSeconds(20))).Should().ThrowAsync<Exception>();
        thrown.Which.Should().NotBeAssignableTo<OperationCanceledException>().And.NotBeOfType<TimeoutException>();
        session.IsConnected.Should().BeFalse();
        session.IsEncrypted.Should().BeFalse();
        await server.Completion;
        session.Dispose();
    }

    private static Task WriteAsync(Stream stream, string text) => stream.WriteAsync(Encoding.ASCII.GetBytes(text)).AsTask();

    private static async Task<string> ReadLineAsync(Stream stream)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (await stream.ReadAsync(one).AsTask().WaitAsync(TimeSpan.FromSeconds(20)) == 1)
        {
            if (one[0] == '\n')
            {
                return line.ToString().TrimEnd('\r');
            }

            line.Append((char)one[0]);
        }

        return line.ToString();
    }
}
