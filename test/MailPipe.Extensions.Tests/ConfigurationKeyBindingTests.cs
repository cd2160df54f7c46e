using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MailPipe.Extensions.Tests;

/// <summary>Every key of the README's table, set in the environment form, reaches the sender's options (read in ConfigureSender). Breaker10.</summary>
public sealed class ConfigurationKeyBindingTests
{
    [Fact]
    public async Task Every_documented_key_reaches_the_senders_options()
    {
        var caFile = Path.GetTempFileName();
        try
        {
            using (var key = ECDsa.Create())
            {
                using var certificate = new CertificateRequest("CN=binding.test", key, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
                await File.WriteAllTextAsync(caFile, certificate.ExportCertificatePem());
            }

            // As the environment provider gives them (Smtp__Pool__MaxConnections becomes Smtp:Pool:MaxConnections), in another case.
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["smtp:host"] = "127.0.0.1",
                ["SMTP:PORT"] = "2599",
                ["Smtp:TlsMode"] = "starttlswhenavailable",
                ["Smtp:UserName"] = "user@example.test",
                ["Smtp:Password"] = "secret",
                ["Smtp:EhloName"] = "client.example.test",
                ["Smtp:Tls:CaFile"] = caFile,
                ["Smtp:Tls:AcceptCertificateNameMismatch"] = "True",
                ["Smtp:Pool:MaxConnections"] = "7",
                ["Smtp:Pool:MaxMessagesPerConnection"] = "0",
                ["Smtp:Pool:MaxNonMailCommandsPerConnection"] = "3",
                ["Smtp:Pool:IdleTimeout"] = "00:01:05",
                ["Smtp:Pool:MaxLifetime"] = "1.00:00:00",
                ["Smtp:Timeouts:Connect"] = "00:00:03",
                ["Smtp:Timeouts:Reply"] = "00:02:00",
            }).Build();
            SmtpSenderOptions? seen = null;
            var services = new ServiceCollection();
            services.AddMailPipe(configuration.GetSection("Smtp")).ConfigureSender((_, o) => seen = o);
            await using var provider = services.BuildServiceProvider();

            _ = provider.GetRequiredService<ISmtpSender>();

            seen.Should().NotBeNull();
            seen!.Host.Should().Be("127.0.0.1");
            seen.Port.Should().Be(2599);
            seen.TlsMode.Should().Be(SmtpTlsMode.StartTlsWhenAvailable);
            seen.Credentials!.UserName.Should().Be("user@example.test");
            seen.Credentials.Password.Should().Be("secret");
            seen.EhloName.Should().Be("client.example.test");
            seen.Tls.TrustedRootCertificates.Should().ContainSingle().Which.Subject.Should().Be("CN=binding.test");
            seen.Tls.AcceptCertificateNameMismatch.Should().BeTrue();
            seen.MaxConnections.Should().Be(7);
            seen.MaxMessagesPerConnection.Should().Be(0);
            seen.MaxNonMailCommandsPerConnection.Should().Be(3);
            seen.IdleTimeout.Should().Be(TimeSpan.FromSeconds(65));
            seen.MaxLifetime.Should().Be(TimeSpan.FromDays(1));
            seen.Timeouts.Connect.Should().Be(TimeSpan.FromSeconds(3));
            seen.Timeouts.Reply.Should().Be(TimeSpan.FromMinutes(2));
            seen.Timeouts.DataTermination.Should().Be(TimeSpan.FromMinutes(2), "the reply to the end of data waits at least 60 s, here the longer Reply");
        }
        finally
        {
            File.Delete(caFile);
        }
    }

    [Fact]
    public async Task The_defaults_are_the_READMEs()
    {
        SmtpSenderOptions? seen = null;
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).ConfigureSender((_, o) => seen = o);
        await using var provider = services.BuildServiceProvider();

        _ = provider.GetRequiredService<ISmtpSender>();

        seen!.Port.Should().Be(587);
        seen.Credentials.Should().BeNull();
        seen.EhloName.Should().BeNull("the machine's name is found when connecting");
        seen.Tls.TrustedRootCertificates.Should().BeEmpty();
        seen.Tls.AcceptCertificateNameMismatch.Should().BeFalse();
        seen.MaxConnections.Should().Be(4);
        seen.MaxMessagesPerConnection.Should().Be(100);
        seen.MaxNonMailCommandsPerConnection.Should().Be(10);
        seen.IdleTimeout.Should().Be(TimeSpan.FromSeconds(30));
        seen.MaxLifetime.Should().Be(TimeSpan.FromMinutes(10));
        seen.Timeouts.Connect.Should().Be(TimeSpan.FromSeconds(10));
        seen.Timeouts.Reply.Should().Be(TimeSpan.FromSeconds(30));
        seen.Timeouts.DataTermination.Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(60));
    }
}
