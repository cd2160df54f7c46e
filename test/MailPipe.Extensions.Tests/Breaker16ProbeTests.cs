using System.Diagnostics.Metrics;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>breaker16's probes of the DI package README: environment variables, keyed senders side by side, health states on TLS and AUTH failures.</summary>
public sealed class Breaker16ProbeTests
{
    private const int AiosmtpdPort = 2527;
    private const int SubmissionPort = 5870;

    private static SmtpMessage Message(string recipient) =>
        SmtpMessage.FromBytes(new SmtpEnvelope("probe16@example.test", recipient), "Subject: probe16\r\n\r\nx\r\n"u8.ToArray());

    [Fact]
    public async Task Environment_variables_with_double_underscores_configure_the_sender_case_insensitively()
    {
        var prefix = "B16_" + Guid.NewGuid().ToString("N")[..8] + "_";
        var variables = new Dictionary<string, string>
        {
            ["Smtp__Host"] = "127.0.0.1",
            ["Smtp__Port"] = "2599",
            ["Smtp__TlsMode"] = "implicit",
            ["Smtp__Tls__AcceptCertificateNameMismatch"] = "TRUE",
            ["Smtp__Pool__MaxConnections"] = "2",
            ["Smtp__Pool__IdleTimeout"] = "00:00:45",
            ["Smtp__Timeouts__Connect"] = "0:0:5",
        };
        try
        {
            foreach (var (key, value) in variables)
            {
                Environment.SetEnvironmentVariable(prefix + key, value);
            }

            var configuration = new ConfigurationBuilder().AddEnvironmentVariables(prefix).Build();
            SmtpSenderOptions? seen = null;
            var services = new ServiceCollection();
            services.AddMailPipe(configuration.GetSection("Smtp")).ConfigureSender((_, o) => seen = o);
            await using var provider = services.BuildServiceProvider();
            _ = provider.GetRequiredService<ISmtpSender>();

            seen!.Port.Should().Be(2599);
            seen.TlsMode.Should().Be(SmtpTlsMode.Implicit);
            seen.Tls.AcceptCertificateNameMismatch.Should().BeTrue();
            seen.MaxConnections.Should().Be(2);
            seen.IdleTimeout.Should().Be(TimeSpan.FromSeconds(45));
            seen.Timeouts.Connect.Should().Be(TimeSpan.FromSeconds(5));
        }
        finally
        {
            foreach (var key in variables.Keys)
            {
                Environment.SetEnvironmentVariable(prefix + key, null);
            }
        }
    }

    [Theory]
    [InlineData("Timeouts:Connect", "30")]
    [InlineData("Timeouts:Reply", "45")]
    [InlineData("Pool:IdleTimeout", "30")]
    [InlineData("Pool:MaxLifetime", "10")]
    public async Task A_bare_number_for_a_time_span_is_reported_naming_the_key_not_taken_as_days(string key, string value)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Smtp:Host"] = "127.0.0.1",
            ["Smtp:TlsMode"] = "None",
            ["Smtp:" + key] = value,
        }).Build();
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddMailPipe(configuration.GetSection("Smtp"));
        using var host = builder.Build();

        var start = async () => await host.StartAsync();

        var failure = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        failure.Failures.Should().ContainSingle().Which.Should().StartWith($"Smtp:{key} must be a time span such as 00:00:30").And.Contain($"'{value}'");
    }

    [Fact]
    public async Task Two_keyed_senders_side_by_side_each_reach_their_own_server_with_their_own_name_in_logs_and_metrics()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        TestServers.RequireListening(AiosmtpdPort);
        var logs = new LogCapture();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Smtp:Transactional:Host"] = "127.0.0.1",
            ["Smtp:Transactional:Port"] = TestServers.PostfixPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Smtp:Transactional:TlsMode"] = "None",
            ["Smtp:Bulk:Host"] = "127.0.0.1",
            ["Smtp:Bulk:Port"] = AiosmtpdPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Smtp:Bulk:TlsMode"] = "None",
        }).Build();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        services.AddMetrics();
        services.AddKeyedMailPipe("transactional", configuration.GetSection("Smtp:Transactional")).AddHealthCheck();
        services.AddKeyedMailPipe("bulk", configuration.GetSection("Smtp:Bulk")).AddHealthCheck(tags: ["ready"]);
        await using var provider = services.BuildServiceProvider();
        var names = new List<string?>();

        // Only this container's meters (its IMeterFactory is their scope): other tests' senders run in parallel in the
        // process (an unnamed one for 127.0.0.1:2525 was seen in a CI run).
        var meterFactory = provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "mailpipe.sender.connection.opened" && ReferenceEquals(instrument.Meter.Scope, meterFactory))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "mailpipe.sender.name")
                {
                    lock (names)
                    {
                        names.Add(tag.Value as string);
                    }
                }
            }
        });
        listener.Start();

        var transactional = provider.GetRequiredKeyedService<ISmtpSender>("transactional");
        var bulk = provider.GetRequiredKeyedService<ISmtpSender>("bulk");
        transactional.Should().NotBeSameAs(bulk);
        (await transactional.SendAsync(Message(TestServers.UniqueRecipient("probe16-t")))).IsAccepted.Should().BeTrue();
        (await bulk.SendAsync(Message(TestServers.UniqueRecipient("probe16-b")))).IsAccepted.Should().BeTrue();

        provider.GetRequiredKeyedService<SmtpSender>("transactional").GetStatistics().Opened.Should().Be(1);
        provider.GetRequiredKeyedService<SmtpSender>("bulk").GetStatistics().Opened.Should().Be(1);
        lock (names)
        {
            names.Should().BeEquivalentTo(["transactional", "bulk"]);
        }

        var transcript = logs.Entries.Where(e => e.EventId.Id == MailPipeEventId.ClientLine).ToList();
        transcript.Where(e => (string?)e.ScopeValue("MailPipe.Server") == $"127.0.0.1:{TestServers.PostfixPort}").Should().NotBeEmpty()
            .And.OnlyContain(e => (string?)e.ScopeValue("MailPipe.Sender") == "transactional");
        transcript.Where(e => (string?)e.ScopeValue("MailPipe.Server") == $"127.0.0.1:{AiosmtpdPort}").Should().NotBeEmpty()
            .And.OnlyContain(e => (string?)e.ScopeValue("MailPipe.Sender") == "bulk");

        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        report.Entries.Keys.Should().BeEquivalentTo(["mailpipe-transactional", "mailpipe-bulk"]);
        report.Entries["mailpipe-bulk"].Tags.Should().BeEquivalentTo(["mailpipe", "smtp", "ready"]);
        report.Status.Should().Be(HealthStatus.Healthy);
    }

    [Theory]
    [InlineData("tls")]
    [InlineData("auth")]
    public async Task The_health_check_is_unhealthy_when_TLS_or_AUTH_fails_and_reports_its_failure_status(string failing)
    {
        TestServers.RequireListening(SubmissionPort);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = SubmissionPort;
            o.TlsMode = SmtpTlsMode.StartTlsRequired;
            o.UserName = "testuser";
            o.Password = failing == "auth" ? "wrong-probe16" : "Test-Pass-123";
            o.Tls.CaFile = failing == "tls" ? null : TestServers.TlsCertificate;
        }).AddHealthCheck(failureStatus: HealthStatus.Degraded);
        await using var provider = services.BuildServiceProvider();

        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        report.Entries["mailpipe"].Status.Should().Be(HealthStatus.Degraded, report.Entries["mailpipe"].Description);
        report.Entries["mailpipe"].Description.Should().NotContain("Test-Pass-123").And.NotContain("wrong-probe16");
    }
    [Fact]
    public async Task Logs_use_the_documented_categories_levels_and_event_ids_and_never_show_an_address_or_the_password()
    {
        TestServers.RequireListening(SubmissionPort);
        var logs = new LogCapture();
        var recipient = TestServers.UniqueRecipient("probe16-logs");
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        services.AddKeyedMailPipe("relay", o =>
        {
            o.Host = "127.0.0.1";
            o.Port = SubmissionPort;
            o.TlsMode = SmtpTlsMode.StartTlsRequired;
            o.UserName = "testuser";
            o.Password = "Test-Pass-123";
            o.Tls.CaFile = TestServers.TlsCertificate;
        });
        await using (var provider = services.BuildServiceProvider())
        {
            var result = await provider.GetRequiredKeyedService<ISmtpSender>("relay").SendAsync(Message(recipient));
            result.IsAccepted.Should().BeTrue(result.ToString());
        }

        var entries = logs.Entries.Where(e => e.Category.StartsWith("MailPipe", StringComparison.Ordinal)).ToList();
        var dump = string.Join("\n", entries.Select(e => $"{e.Category} {e.Level} {e.EventId.Id} {e.Message}"));
        void Has(string category, LogLevel level, int id) =>
            entries.Should().Contain(e => e.Category == category && e.Level == level && e.EventId.Id == id, $"{category} {level} {id}\n{dump}");
        Has("MailPipe.Protocol", LogLevel.Trace, MailPipeEventId.ClientLine);
        Has("MailPipe.Protocol", LogLevel.Trace, MailPipeEventId.ServerLine);
        Has("MailPipe.Session", LogLevel.Debug, MailPipeEventId.Connecting);
        Has("MailPipe.Session", LogLevel.Debug, MailPipeEventId.Connected);
        Has("MailPipe.Session", LogLevel.Debug, MailPipeEventId.TlsEstablished);
        Has("MailPipe.Pool", LogLevel.Debug, MailPipeEventId.PoolConnectionOpened);
        entries.Where(e => e.EventId.Id is MailPipeEventId.ClientLine or MailPipeEventId.ServerLine)
            .Should().OnlyContain(e => (string?)e.ScopeValue("MailPipe.Sender") == "relay" && e.ScopeValue("MailPipe.ConnectionId") is long);
        var password64 = Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes("\0testuser\0Test-Pass-123"));
        entries.Should().NotContain(e => e.Message.Contains("Test-Pass-123", StringComparison.Ordinal) || e.Message.Contains(password64, StringComparison.Ordinal), dump);
        entries.Should().NotContain(e => e.Message.Contains(recipient, StringComparison.OrdinalIgnoreCase) || e.Message.Contains("probe16@example.test", StringComparison.OrdinalIgnoreCase), dump);
    }
    [Fact]
    public async Task The_sender_is_disposed_with_the_host_closing_its_connections_with_QUIT()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var logs = new LogCapture();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders().AddProvider(logs).AddFilter("MailPipe", LogLevel.Trace); // over the sample's appsettings.json copied here
        builder.Services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.Port = TestServers.PostfixPort; o.TlsMode = SmtpTlsMode.None; });
        ISmtpSender sender;
        using (var host = builder.Build())
        {
            await host.StartAsync();
            sender = host.Services.GetRequiredService<ISmtpSender>();
            (await sender.SendAsync(Message(TestServers.UniqueRecipient("probe16-stop")))).IsAccepted.Should().BeTrue();
            await host.StopAsync();
        }

        var send = async () => await sender.SendAsync(Message(TestServers.UniqueRecipient("probe16-stop")));
        await send.Should().ThrowAsync<ObjectDisposedException>();
        logs.Entries.Should().Contain(e => e.Category == "MailPipe.Protocol" && e.Message == "C: QUIT");
        logs.Entries.Should().Contain(e => e.EventId.Id == MailPipeEventId.Disconnected && e.Level == LogLevel.Debug);
    }
    [Theory]
    [InlineData("TotalRequestTimeout:Timeout")]
    [InlineData("AttemptTimeout:Timeout")]
    [InlineData("Retry:Delay")]
    [InlineData("Retry:MaxDelay")]
    [InlineData("Retry:ThrottledDelay")]
    [InlineData("CircuitBreaker:SamplingDuration")]
    [InlineData("CircuitBreaker:BreakDuration")]
    public async Task A_bare_number_for_a_resilience_time_span_is_reported_naming_the_key_not_taken_as_a_day(string key)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["SmtpResilience:" + key] = "1" }).Build();
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience(configuration.GetSection("SmtpResilience"));
        await using var provider = services.BuildServiceProvider();

        var read = () => provider.GetRequiredService<IOptionsMonitor<MailPipe.Resilience.SmtpStandardResilienceOptions>>().Get(Options.DefaultName);

        read.Should().Throw<OptionsValidationException>().WithMessage($"*SmtpResilience:{key} = '1' cannot be read as TimeSpan*");
    }
    [Fact]
    public async Task Concurrent_health_checks_on_a_pool_of_one_are_all_healthy_and_open_one_connection()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.Port = TestServers.PostfixPort; o.TlsMode = SmtpTlsMode.None; o.Pool.MaxConnections = 1; })
            .AddHealthCheck();
        await using var provider = services.BuildServiceProvider();
        var health = provider.GetRequiredService<HealthCheckService>();

        var reports = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => health.CheckHealthAsync())));

        reports.Should().OnlyContain(r => r.Entries["mailpipe"].Status == HealthStatus.Healthy, string.Join("\n", reports.Select(r => r.Entries["mailpipe"].Description)));
        provider.GetRequiredService<SmtpSender>().GetStatistics().Opened.Should().Be(1);
    }
}
