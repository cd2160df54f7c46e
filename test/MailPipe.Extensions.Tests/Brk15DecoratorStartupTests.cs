using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// brk15res: the start-up check made the SmtpSender only, not what ISmtpSender resolves to: a decorator added with
/// AddSenderDecorator that fails (it returns null, or needs a service nobody registered) let the host start, and the
/// first request that took ISmtpSender failed (a 500), as a sender setting refused by the sender did before breaker10.
/// The check now makes the decorated sender too (it opens no connection either).
/// </summary>
public sealed class Brk15DecoratorStartupTests
{
    private interface IOutbox;

    [Fact]
    public async Task A_decorator_that_returns_null_stops_the_start()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddSenderDecorator((_, _) => null!);
        using var host = builder.Build();

        var start = () => host.StartAsync();

        await start.Should().ThrowAsync<InvalidOperationException>().WithMessage("*AddSenderDecorator returned null*");
    }

    [Fact]
    public async Task A_keyed_sender_s_decorator_that_needs_a_missing_service_stops_the_start()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddKeyedMailPipe("bulk", o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddSenderDecorator((services, inner) =>
            {
                _ = services.GetRequiredService<IOutbox>();
                return inner;
            });
        using var host = builder.Build();

        var start = () => host.StartAsync();

        await start.Should().ThrowAsync<InvalidOperationException>().WithMessage("*IOutbox*");
    }

    [Fact]
    public async Task The_decorated_sender_made_at_start_up_is_the_one_the_application_gets_and_opens_no_connection()
    {
        var made = 0;
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddSenderDecorator((_, inner) =>
            {
                made++;
                return inner;
            });
        using var host = builder.Build();

        await host.StartAsync();
        made.Should().Be(1, "the decorated sender is made when the host starts");
        _ = host.Services.GetRequiredService<ISmtpSender>();

        made.Should().Be(1, "a singleton: made once");
        host.Services.GetRequiredService<SmtpSender>().GetStatistics().Opened.Should().Be(0);
        await host.StopAsync();
    }
}
