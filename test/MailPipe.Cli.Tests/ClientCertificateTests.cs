using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>--tls-cert/--tls-key: the certificate reaches a server that asks for one (Postfix on the test ports does not ask).</summary>
public class ClientCertificateTests
{
    [Fact]
    public async Task Tls_cert_and_key_are_presented_to_a_server_that_asks()
    {
        using var serverCertificate = new TestCertificate("localhost", withLoopbackAddress: true);
        using var dir = new TempDirectory();
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=mailpipe-client-test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var clientCertificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certificateFile = dir.File("client.pem", clientCertificate.ExportCertificatePem());
        var keyFile = dir.File("client.key", key.ExportPkcs8PrivateKeyPem());

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var server = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            Stream stream = client.GetStream();
            await WriteAsync(stream, "220 tls.test ESMTP");
            (await ReadLineAsync(stream)).Should().StartWith("EHLO ");
            await WriteAsync(stream, "250-tls.test\r\n250 STARTTLS");
            (await ReadLineAsync(stream)).Should().Be("STARTTLS");
            await WriteAsync(stream, "220 go ahead");
            var tls = new SslStream(stream);
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = serverCertificate.Certificate,
                ClientCertificateRequired = true,
                // A self-signed client certificate: its only fault may be that no CA vouches for it.
                RemoteCertificateValidationCallback = (_, certificate, _, errors) => certificate is not null && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None,
            });
            var presented = tls.RemoteCertificate is { } certificate ? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()).Thumbprint : null;
            (await ReadLineAsync(tls)).Should().StartWith("EHLO ");
            await WriteAsync(tls, "250 tls.test");
            (await ReadLineAsync(tls)).Should().Be("QUIT");
            await WriteAsync(tls, "221 bye");
            return presented;
        });

        var run = await CliRunner.RunAsync("send", "--server", $"127.0.0.1:{port}", "--starttls", "--ca-file", serverCertificate.PemFile,
            "--tls-cert", certificateFile, "--tls-key", keyFile, "-f", "a@example.test", "-t", "b@example.test", "--quit-after", "tls");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        (await server.WaitAsync(TimeSpan.FromSeconds(30))).Should().Be(clientCertificate.Thumbprint);
    }

    [Fact]
    public async Task Tls_key_without_tls_cert_is_a_usage_error()
    {
        using var dir = new TempDirectory();
        var keyFile = dir.File("client.key", "x");

        var run = await CliRunner.RunAsync("send", "--server", "127.0.0.1:1", "--starttls", "--tls-key", keyFile, "-f", "a@example.test", "-t", "b@example.test");

        run.ExitCode.Should().Be(1);
        run.Error.Should().Contain("--tls-key is the key of --tls-cert");
    }

    private static Task WriteAsync(Stream stream, string reply) => stream.WriteAsync(Encoding.ASCII.GetBytes(reply + "\r\n")).AsTask();

    private static async Task<string> ReadLineAsync(Stream stream)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (await stream.ReadAsync(one) == 1)
        {
            if (one[0] == (byte)'\n')
            {
                break;
            }

            line.Add(one[0]);
        }

        return Encoding.ASCII.GetString([.. line]).TrimEnd('\r');
    }
}
