using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// Port 465 with STARTTLS (or 587/25 with implicit TLS) passed the start-up check silently, and every message then
/// waited for its acquire timeout (the server waits for a TLS handshake, the client for a greeting). The start now logs
/// one warning naming both settings and the convention (RFC 8314 §3.3); it does not fail, since a server may be set
/// up otherwise.
/// </summary>
public sealed class PortTlsModeWarningTests
{
    [Theory]
    [InlineData(465, "StartTlsRequired", "by convention port 465 is submission over implicit TLS (RFC 8314 §3.3; TlsMode Implicit)")]
    [InlineData(465, "StartTlsWhenAvailable", "port 465 is submission over implicit TLS")]
    [InlineData(465, "None", "port 465 is submission over implicit TLS")]
    [InlineData(587, "Implicit", "by convention port 587 (submission, RFC 6409) starts in clear text and upgrades with STARTTLS (TlsMode StartTlsRequired), and implicit TLS is port 465 (RFC 8314 §3.3)")]
    [InlineData(25, "Implicit", "by convention port 25 (relay) starts in clear text")]
    public async Task A_port_and_TLS_mode_against_the_convention_start_with_one_warning_naming_both_keys(int port, string tlsMode, string convention)
    {
        var logs = await StartAsync(port, tlsMode);

        var warning = logs.Entries.Should().ContainSingle(e => e.EventId.Id == MailPipeEventId.PortTlsModeMismatch).Subject;
        warning.Level.Should().Be(LogLevel.Warning);
        warning.Category.Should().Be("MailPipe.Configuration");
        warning.Message.Should().StartWith($"MailPipe sender 127.0.0.1:{port}: Smtp:Port is {port} and Smtp:TlsMode is {tlsMode}; ")
            .And.Contain(convention).And.EndWith("Ignore this if the server is set up otherwise.");
    }

    [Theory]
    [InlineData(465, "Implicit")]
    [InlineData(587, "StartTlsRequired")]
    [InlineData(25, "StartTlsWhenAvailable")]
    [InlineData(2525, "Implicit")]
    [InlineData(587, "None")]
    public async Task The_usual_pairs_and_other_ports_start_without_it(int port, string tlsMode)
    {
        var logs = await StartAsync(port, tlsMode);

        logs.Entries.Should().NotContain(e => e.EventId.Id == MailPipeEventId.PortTlsModeMismatch);
    }

    [Fact]
    public async Task A_port_changed_in_ConfigureSender_is_named_as_such()
    {
        var logs = await StartAsync(587, "StartTlsRequired", o => o.Port = 465);

        logs.Entries.Should().ContainSingle(e => e.EventId.Id == MailPipeEventId.PortTlsModeMismatch)
            .Which.Message.Should().StartWith("MailPipe sender 127.0.0.1:465: SmtpSenderOptions.Port (set with ConfigureSender) is 465 and Smtp:TlsMode is StartTlsRequired; ");
    }

    private static async Task<LogCapture> StartAsync(int port, string tlsMode, Action<SmtpSenderOptions>? configure = null)
    {
        var logs = new LogCapture();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Smtp:Host"] = "127.0.0.1",
            ["Smtp:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Smtp:TlsMode"] = tlsMode,
        }).Build();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.AddProvider(logs);
        var mailPipe = builder.Services.AddMailPipe(configuration.GetSection("Smtp"));
        if (configure is not null)
        {
            mailPipe.ConfigureSender((_, o) => configure(o));
        }

        using var host = builder.Build();
        await host.StartAsync();
        await host.StopAsync();
        return logs;
    }
}
