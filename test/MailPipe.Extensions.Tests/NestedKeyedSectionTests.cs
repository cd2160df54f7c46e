using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// The layout many users write for a default sender and a keyed one: <c>Smtp</c> and <c>Smtp:Bulk</c>. The default
/// sender's unknown-key check took every <c>Smtp:Bulk:*</c> key for a typo and the start failed ("Smtp:Bulk:Host is
/// not a MailPipe setting", once per key), although another sender reads that section.
/// </summary>
public sealed class NestedKeyedSectionTests
{
    private static readonly Dictionary<string, string?> Nested = new()
    {
        ["Smtp:Host"] = "127.0.0.1",
        ["Smtp:Port"] = "2525",
        ["Smtp:TlsMode"] = "StartTlsRequired",
        ["Smtp:Bulk:Host"] = "127.0.0.2",
        ["Smtp:Bulk:Port"] = "2528",
        ["Smtp:Bulk:TlsMode"] = "None",
        ["Smtp:Bulk:Pool:MaxConnections"] = "2",
    };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_keyed_senders_section_nested_in_the_default_ones_starts_and_each_sender_reads_its_own(bool defaultFirst)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(Nested);
        if (defaultFirst)
        {
            builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
            builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"));
        }
        else
        {
            builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"));
            builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        }

        using var host = builder.Build();
        await host.StartAsync();
        var options = host.Services.GetRequiredService<IOptionsMonitor<MailPipeOptions>>();
        options.CurrentValue.Host.Should().Be("127.0.0.1");
        options.CurrentValue.Pool.MaxConnections.Should().Be(4);
        options.Get("bulk").Host.Should().Be("127.0.0.2");
        options.Get("bulk").Pool.MaxConnections.Should().Be(2);
        host.Services.GetRequiredService<SmtpSender>().Name.Should().Be("127.0.0.1:2525");
        host.Services.GetRequiredKeyedService<SmtpSender>("bulk").Name.Should().Be("bulk");
        await host.StopAsync();
    }

    [Fact]
    public async Task A_typo_inside_the_nested_section_is_still_named_once_by_the_keyed_sender()
    {
        var failures = await StartFailuresAsync(("Smtp:Bulk:Pool:MaxConection", "2"), registerBulk: true);
        failures.Should().Equal("Smtp:Bulk:Pool:MaxConection is not a MailPipe setting. The settings are: Host, Port, TlsMode, UserName, Password, EhloName, Tls:CaFile, Tls:AcceptCertificateNameMismatch, Pool:MaxConnections, Pool:MaxMessagesPerConnection, Pool:MaxNonMailCommandsPerConnection, Pool:IdleTimeout, Pool:MaxLifetime, Timeouts:Connect, Timeouts:Reply.");
    }

    [Fact]
    public async Task A_nested_section_no_sender_reads_is_one_message_that_says_how_to_register_it()
    {
        // Before: one "is not a MailPipe setting" per key of Smtp:Bulk, none saying what to do.
        var failures = await StartFailuresAsync(registerBulk: false);
        failures.Should().Equal(
            "Smtp:Bulk (keys Host, Port, TlsMode, Pool:MaxConnections) is not a MailPipe setting of Smtp, and no other MailPipe sender reads it. "
            + "For a second sender, register it: services.AddKeyedMailPipe(\"Bulk\", configuration.GetSection(\"Smtp:Bulk\")); else remove it or fix its name.");
    }

    [Fact]
    public async Task A_misspelt_nested_section_is_not_taken_for_the_keyed_senders()
    {
        var failures = await StartFailuresAsync(("Smtp:Bluk:Host", "127.0.0.3"), registerBulk: true);
        failures.Should().ContainSingle().Which.Should().StartWith("Smtp:Bluk (keys Host) is not a MailPipe setting of Smtp, and no other MailPipe sender reads it.");
    }

    private static async Task<IReadOnlyList<string>> StartFailuresAsync((string Key, string? Value)? change = null, bool registerBulk = true)
    {
        var settings = new Dictionary<string, string?>(Nested);
        if (change is { } c)
        {
            settings[c.Key] = c.Value;
        }

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        if (registerBulk)
        {
            builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"));
        }

        using var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch (OptionsValidationException failure)
        {
            return failure.Failures.ToList();
        }

        await host.StopAsync();
        return [];
    }
}
