using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// What the package README says of a reloaded section (appsettings.json is reloaded on change in ASP.NET Core): the
/// sender is made once from the settings read then; a later change is not applied until the application restarts.
/// </summary>
public sealed class ConfigurationReloadTests
{
    [Fact]
    public async Task A_reloaded_section_does_not_change_the_sender_made_before()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Smtp:Host"] = "127.0.0.1",
            ["Smtp:Port"] = "2527",
            ["Smtp:TlsMode"] = "None",
        }).Build();
        var services = new ServiceCollection();
        services.AddMailPipe(configuration.GetSection("Smtp"));
        await using var provider = services.BuildServiceProvider();
        var before = provider.GetRequiredService<SmtpSender>();

        var reloaded = false;
        using var registration = configuration.GetReloadToken().RegisterChangeCallback(_ => reloaded = true, null);
        configuration["Smtp:Port"] = "2528";
        configuration.Reload();

        reloaded.Should().BeTrue();
        provider.GetRequiredService<SmtpSender>().Should().BeSameAs(before);
        before.Name.Should().Be("127.0.0.1:2527");
        provider.GetRequiredService<IOptionsMonitor<MailPipeOptions>>().Get(Options.DefaultName).Port.Should().Be(2527);
    }
}
