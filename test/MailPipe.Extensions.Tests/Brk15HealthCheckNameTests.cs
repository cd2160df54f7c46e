using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// brk15res: AddHealthCheck called again with the same check name replaces the earlier registration (session 13, for
/// one sender added twice) — but it did so for another sender too: two senders whose checks were given one name
/// (AddHealthCheck(name: "smtp") copied from one to the other) left one check, of the last sender, and the first
/// sender's server was no longer checked by anything, silently. Now the second call throws, naming both senders; the
/// same sender added twice still replaces its check, a name differing only in case included (ASP.NET Core's
/// HealthCheckService takes names in any case as one).
/// </summary>
public sealed class Brk15HealthCheckNameTests
{
    [Fact]
    public void Two_senders_given_one_check_name_is_an_error_naming_both()
    {
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddHealthCheck(name: "smtp");
        var bulk = services.AddKeyedMailPipe("bulk", o => { o.Host = "127.0.0.2"; o.TlsMode = SmtpTlsMode.None; });

        var add = () => bulk.AddHealthCheck(name: "smtp");

        add.Should().Throw<ArgumentException>().WithParameterName("name").WithMessage("*'smtp'*default sender*'bulk'*");
    }

    [Fact]
    public void A_keyed_check_named_as_the_default_ones_is_an_error()
    {
        var services = new ServiceCollection();
        services.AddKeyedMailPipe("bulk", o => { o.Host = "127.0.0.2"; o.TlsMode = SmtpTlsMode.None; }).AddHealthCheck(name: "mailpipe");

        var add = () => services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddHealthCheck();

        add.Should().Throw<ArgumentException>().WithParameterName("name");
    }

    [Fact]
    public async Task The_same_sender_s_check_added_again_in_another_case_is_still_one_check()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.Port = Support.TestServers.UnusedPort(); o.TlsMode = SmtpTlsMode.None; }).AddHealthCheck(name: "smtp", tags: ["live"]);
        services.AddMailPipe(o => o.Pool.MaxConnections = 2).AddHealthCheck(name: "SMTP", tags: ["ready"]);
        await using var provider = services.BuildServiceProvider();

        var registrations = provider.GetRequiredService<IOptions<HealthCheckServiceOptions>>().Value.Registrations;

        registrations.Should().ContainSingle().Which.Tags.Should().BeEquivalentTo("mailpipe", "smtp", "ready");
        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        report.Entries.Should().ContainSingle();
    }
}
