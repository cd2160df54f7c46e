using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using MailPipe.Extensions.Tests.Support;
using MailPipe.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>MailPipe.Resilience attached in one line (<c>AddMailPipe(...).AddStandardResilience()</c>), and the sample's POST /mail with it (issue #12 acceptance 5).</summary>
public sealed class ResilienceRegistrationTests
{
    [Fact]
    public async Task AddStandardResilience_wraps_the_sender_and_keeps_it_registered()
    {
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddStandardResilience(o => o.Retry.MaxRetryAttempts = 5);
        await using var provider = services.BuildServiceProvider();

        var sender = provider.GetRequiredService<ISmtpSender>();

        sender.Should().BeOfType<ResilientSmtpSender>().Which.InnerSender.Should().BeSameAs(provider.GetRequiredService<SmtpSender>());
        provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName).Retry.MaxRetryAttempts.Should().Be(5);
    }

    /// <summary>
    /// A second <c>AddStandardResilience</c> for the same sender (a shared module and Program.cs both attach it) adds
    /// configuration, as a second <c>AddMailPipe</c> does: one pipeline, not one retrying inside the other (3 × 3
    /// attempts, two circuit breakers). Before the fix the sender was wrapped twice.
    /// </summary>
    [Fact]
    public async Task AddStandardResilience_twice_wraps_the_sender_once_with_both_configurations()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["SmtpResilience:Retry:Delay"] = "00:00:03",
        }).Build();
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddStandardResilience(configuration.GetSection("SmtpResilience"));
        services.AddMailPipe(o => o.Port = 2525)
            .AddStandardResilience(o => o.Retry.MaxRetryAttempts = 5);
        services.AddKeyedMailPipe("bulk", o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience();
        services.AddKeyedMailPipe("bulk", o => o.Port = 2526).AddStandardResilience();
        await using var provider = services.BuildServiceProvider();

        var sender = provider.GetRequiredService<ISmtpSender>().Should().BeOfType<ResilientSmtpSender>().Subject;
        var bulk = provider.GetRequiredKeyedService<ISmtpSender>("bulk").Should().BeOfType<ResilientSmtpSender>().Subject;

        sender.InnerSender.Should().BeSameAs(provider.GetRequiredService<SmtpSender>(), "one resilient sender around the pooled one");
        bulk.InnerSender.Should().BeSameAs(provider.GetRequiredKeyedService<SmtpSender>("bulk"));
        var options = provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName);
        options.Retry.Delay.Should().Be(TimeSpan.FromSeconds(3));
        options.Retry.MaxRetryAttempts.Should().Be(5);
    }

    /// <summary>
    /// Retry:BackoffType is taken by name only, as Smtp:TlsMode is: a number (<c>2</c>) or a list of names
    /// (<c>Constant, Linear</c>, which Enum.TryParse ORs into Linear) would pick a back-off nobody reading the file can
    /// see. Before the fix both were accepted silently.
    /// </summary>
    [Theory]
    [InlineData("2")]
    [InlineData("Constant, Linear")]
    [InlineData("-1")]
    public async Task Retry_BackoffType_is_taken_by_name_only(string value)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["SmtpResilience:Retry:BackoffType"] = value }).Build();
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience(configuration.GetSection("SmtpResilience"));
        await using var provider = services.BuildServiceProvider();

        var read = () => provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName);

        read.Should().Throw<OptionsValidationException>().WithMessage($"*SmtpResilience:Retry:BackoffType = '{value}'*Constant, Linear, Exponential*");
    }

    /// <summary>
    /// CircuitBreaker:FailureRatio is read with the invariant culture, where ',' groups thousands: "0,1" (a tenth, in
    /// many locales) was read as 1 — a breaker that opens only when every attempt fails — and passed validation.
    /// </summary>
    [Theory]
    [InlineData("0,1")]
    [InlineData("0,5")]
    public async Task A_failure_ratio_with_a_decimal_comma_is_refused_not_read_as_a_whole_number(string value)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["SmtpResilience:CircuitBreaker:FailureRatio"] = value }).Build();
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience(configuration.GetSection("SmtpResilience"));
        await using var provider = services.BuildServiceProvider();

        var read = () => provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName);

        read.Should().Throw<OptionsValidationException>().WithMessage($"*SmtpResilience:CircuitBreaker:FailureRatio = '{value}' cannot be read*");
    }

    [Theory]
    [InlineData("exponential", Polly.DelayBackoffType.Exponential)]
    [InlineData(" Linear ", Polly.DelayBackoffType.Linear)]
    public async Task Retry_BackoffType_names_are_taken_in_any_case(string value, Polly.DelayBackoffType expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["SmtpResilience:Retry:BackoffType"] = value }).Build();
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience(configuration.GetSection("SmtpResilience"));
        await using var provider = services.BuildServiceProvider();

        provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName).Retry.BackoffType.Should().Be(expected);
    }

    [Fact]
    public async Task A_configuration_section_is_read_key_by_key_and_a_typo_fails_naming_the_key()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["SmtpResilience:Retry:MaxRetryAttempts"] = "1",
            ["SmtpResilience:Retry:Delay"] = "00:00:03",
            ["SmtpResilience:Retry:RetryUnknownOutcome"] = "true",
            ["SmtpResilience:AttemptTimeout:Timeout"] = "00:00:20",
            ["Bad:Retry:MaxRetryAttempt"] = "1",
        }).Build();
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience(configuration.GetSection("SmtpResilience"));
        services.AddKeyedMailPipe("bad", o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience(configuration.GetSection("Bad"));
        await using var provider = services.BuildServiceProvider();
        var monitor = provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>();

        var options = monitor.Get(Options.DefaultName);
        var bad = () => monitor.Get("bad");

        options.Retry.MaxRetryAttempts.Should().Be(1);
        options.Retry.Delay.Should().Be(TimeSpan.FromSeconds(3));
        options.Retry.RetryUnknownOutcome.Should().BeTrue();
        options.AttemptTimeout.Timeout.Should().Be(TimeSpan.FromSeconds(20));
        bad.Should().Throw<OptionsValidationException>().WithMessage("*Bad:Retry:MaxRetryAttempt is not a MailPipe.Resilience setting*");
    }

    [Fact]
    public async Task Sample_post_mail_retries_tempfail_and_answers_the_attempts()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort, ("SmtpResilience:Retry:Delay", "00:00:00"));
        using var client = app.CreateClient();
        var ordinary = TestServers.UniqueRecipient("resilient");

        var response = await client.PostAsJsonAsync("/mail", new { from = "alice@example.test", to = new[] { "tempfail@example.test", ordinary }, subject = "retried", body = "Sent once to the ordinary recipient.\n" });

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        json.GetProperty("outcome").GetString().Should().Be("Accepted");
        json.GetProperty("attempts").GetInt32().Should().BeGreaterThan(1).And.Be(3, "the sample's appsettings allow 2 retries");
        var recipients = json.GetProperty("recipients").EnumerateArray().ToList();
        recipients[0].GetProperty("address").GetString().Should().Be("tempfail@example.test");
        recipients[0].GetProperty("replyCode").GetInt32().Should().Be(450);
        recipients[0].GetProperty("accepted").GetBoolean().Should().BeFalse();
        recipients[1].GetProperty("accepted").GetBoolean().Should().BeTrue();

        (await TestServers.WaitForMaildirAsync(ordinary)).Should().HaveCount(1);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Directory.GetFiles(Path.Combine(TestServers.PostfixMaildir, ordinary, "new")).Should().HaveCount(1, "the ordinary recipient is delivered exactly once");
    }
}
