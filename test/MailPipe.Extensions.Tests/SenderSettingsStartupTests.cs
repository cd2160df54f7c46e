using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// The settings made in code with ConfigureSender (the README's MaxBatchSize and AcquireTimeout) are checked when the
/// host starts too, like the keyed ones: before, the host started, and the first request that needed the sender failed
/// with the sender constructor's ArgumentOutOfRangeException (a 500). Breaker10.
/// </summary>
public sealed class SenderSettingsStartupTests
{
    [Fact]
    public async Task A_sender_setting_out_of_range_set_in_ConfigureSender_stops_the_start_naming_it()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .ConfigureSender((_, o) => o.MaxBatchSize = 0);
        using var host = builder.Build();

        var start = () => host.StartAsync();

        var failure = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        failure.Failures.Should().ContainSingle().Which.Should().Contain("MaxBatchSize");
    }

    [Fact]
    public async Task A_keyed_sender_setting_out_of_range_stops_the_start_under_its_key()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddKeyedMailPipe("bulk", o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .ConfigureSender((_, o) => o.AcquireTimeout = TimeSpan.Zero);
        using var host = builder.Build();

        var start = () => host.StartAsync();

        var failure = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        failure.OptionsName.Should().Be("bulk");
        failure.Failures.Should().ContainSingle().Which.Should().Contain("AcquireTimeout");
    }

    [Fact]
    public async Task Valid_code_settings_start_and_are_used_by_the_one_sender()
    {
        var calls = 0;
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .ConfigureSender((_, o) => { calls++; o.MaxBatchSize = 8; });
        using var host = builder.Build();

        await host.StartAsync();
        var sender = host.Services.GetRequiredService<ISmtpSender>();

        sender.Should().BeSameAs(host.Services.GetRequiredService<SmtpSender>());
        calls.Should().Be(1, "the sender's settings are made once");
        sender.As<SmtpSender>().GetStatistics().Opened.Should().Be(0, "a check at start-up opens no connection");
        await host.StopAsync();
    }
}
