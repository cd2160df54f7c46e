using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MailPipe.Tests.Tls;

/// <summary>A self-signed server certificate made at run time: CN=localhost, SAN DNS:localhost + IP:127.0.0.1, CA:TRUE, EKU serverAuth.</summary>
public static class TlsTestCertificate
{
    private static readonly Lazy<X509Certificate2> Server = new(Create);

    /// <summary>With its private key, for the scripted server.</summary>
    public static X509Certificate2 WithKey => Server.Value;

    /// <summary>The public part only, for a client's trusted roots.</summary>
    public static X509Certificate2 PublicOnly => X509CertificateLoader.LoadCertificate(Server.Value.RawData);

    /// <summary>Client TLS settings that trust the certificate.</summary>
    public static SmtpTlsOptions TrustingOptions()
    {
        var options = new SmtpTlsOptions();
        options.TrustedRootCertificates.Add(PublicOnly);
        return options;
    }

    private static X509Certificate2 Create()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.KeyCertSign, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    }
}
