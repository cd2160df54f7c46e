using MailPipe.Resilience.Tests.Peer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// Session 20 (new user): a total timeout no longer than the attempt timeout stopped the start with
/// "MailPipe.Resilience: TotalRequestTimeout:Timeout (...) must be longer than AttemptTimeout:Timeout (...)", the one
/// configuration error that did not name its section: with a sender per server, each with its own section, it did not
/// say which. It now names the keys as every other error does (<c>SmtpResilience:Bulk:TotalRequestTimeout:Timeout</c>).
/// </summary>
public sealed class ResilienceSectionTimeoutTests
{
    [Fact]
    public async Task A_total_timeout_no_longer_than_the_attempt_timeout_names_the_keys_of_its_section()
    {
        var builder = PeerSupport.Host("""
            { "Smtp": { "Host": "127.0.0.1", "Port": 1, "TlsMode": "None", "EhloName": "nu20.example.test" },
              "SmtpBulk": { "Host": "127.0.0.1", "Port": 2, "TlsMode": "None", "EhloName": "nu20.example.test" },
              "SmtpResilience": { "Bulk": { "TotalRequestTimeout": { "Timeout": "00:01:00" }, "AttemptTimeout": { "Timeout": "00:01:30" } } } }
            """);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience:Default"));
        builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("SmtpBulk"))
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience:Bulk"));
        using var host = builder.Build();

        var thrown = await host.Awaiting(h => h.StartAsync()).Should().ThrowAsync<OptionsValidationException>();

        thrown.Which.Message.Should().Contain("SmtpResilience:Bulk:TotalRequestTimeout:Timeout (00:01:00) must be longer than SmtpResilience:Bulk:AttemptTimeout:Timeout (00:01:30)");
    }

    [Fact]
    public void In_code_the_message_names_the_options_properties()
    {
        FluentActions.Invoking(() => new ServiceCollection().AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
                .AddStandardResilience(o => o.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(30)).Services.BuildServiceProvider().GetRequiredService<ISmtpSender>())
            .Should().Throw<OptionsValidationException>()
            .WithMessage("*SmtpStandardResilienceOptions.TotalRequestTimeout.Timeout (00:00:30) must be longer than SmtpStandardResilienceOptions.AttemptTimeout.Timeout (00:01:30)*");
    }
}
