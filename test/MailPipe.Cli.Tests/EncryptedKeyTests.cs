using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MailPipe.Cli.Tests;

/// <summary>An encrypted private key given to <c>--tls-key</c> (session 12 review): the test failed before its fix.</summary>
public class EncryptedKeyTests
{
    /// <summary>
    /// A key protected by a passphrase (<c>-----BEGIN ENCRYPTED PRIVATE KEY-----</c>, what <c>openssl req</c> writes
    /// without <c>-nodes</c>) was refused with .NET's "The key contents do not contain a PEM, the content is malformed,
    /// or the key does not match the certificate", which names none of the three as the cause. The README says the
    /// key must be unencrypted; the error now says that it is encrypted and how to write it without a passphrase.
    /// </summary>
    [Theory]
    [InlineData("send")]
    [InlineData("serve")]
    public async Task An_encrypted_key_is_named_as_such(string command)
    {
        using var dir = new TempDirectory();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certificatePath = dir.File("cert.pem", certificate.ExportCertificatePem());
        var keyPath = dir.File("key.pem", key.ExportEncryptedPkcs8PrivateKeyPem("secret", new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)));
        string[] args = command == "send"
            ? ["send", "-s", "127.0.0.1:1", "--starttls", "--tls-cert", certificatePath, "--tls-key", keyPath, "-f", "a@example.test", "-t", "b@example.test", "--body", "x"]
            : ["serve", "--listen", "127.0.0.1:0", "--save-dir", dir.Path, "--tls-cert", certificatePath, "--tls-key", keyPath];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().Contain($"--tls-key {keyPath}").And.Contain("is encrypted").And.Contain("openssl pkey");
    }
}
