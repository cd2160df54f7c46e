using MailPipe.IntegrationTests.Support;
using MailPipe.Tests.Pooling;
using MailPipe.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Polly;
using PoolProxy = MailPipe.Tests.Pooling.FaultProxy;
using RecordingProxy = MailPipe.Resilience.Tests.Support.FaultProxy;

namespace MailPipe.Resilience.Tests.Peer;

/// <summary>
/// <c>AddMailPipe(...).AddStandardResilience(section)</c> from appsettings JSON, per the Resilience README: every
/// documented key is read, a bad value stops the start with an <see cref="OptionsValidationException"/> naming the key,
/// and what is read is what the pipeline does against the real Postfix.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PeerConfigurationTests
{
    private const string Zero = "\"Delay\": \"00:00:00\", \"ThrottledDelay\": \"00:00:00\", \"UseJitter\": false";

    [Theory]
    [InlineData("TotalRequestTimeout", "Timeout", "\"00:07:00\"")]
    [InlineData("Retry", "MaxRetryAttempts", "5")]
    [InlineData("Retry", "Delay", "\"00:00:03\"")]
    [InlineData("Retry", "MaxDelay", "\"00:01:00\"")]
    [InlineData("Retry", "BackoffType", "\"Linear\"")]
    [InlineData("Retry", "UseJitter", "false")]
    [InlineData("Retry", "ThrottledDelay", "\"00:01:00\"")]
    [InlineData("Retry", "RetryUnknownOutcome", "true")]
    [InlineData("CircuitBreaker", "FailureRatio", "0.25")]
    [InlineData("CircuitBreaker", "MinimumThroughput", "20")]
    [InlineData("CircuitBreaker", "SamplingDuration", "\"00:01:00\"")]
    [InlineData("CircuitBreaker", "BreakDuration", "\"00:00:45\"")]
    [InlineData("AttemptTimeout", "Timeout", "\"00:02:00\"")]
    public async Task Each_documented_key_is_read_from_appsettings(string strategy, string key, string value)
    {
        using var host = PeerSupport.ResilientHost(TestServers.PostfixPort, $$"""{ "{{strategy}}": { "{{key}}": {{value}} } }""");
        await host.StartAsync();
        var o = host.Services.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName);

        object read = (strategy, key) switch
        {
            ("TotalRequestTimeout", _) => o.TotalRequestTimeout.Timeout,
            ("AttemptTimeout", _) => o.AttemptTimeout.Timeout,
            (_, "MaxRetryAttempts") => o.Retry.MaxRetryAttempts,
            (_, "Delay") => o.Retry.Delay,
            (_, "MaxDelay") => o.Retry.MaxDelay!.Value,
            (_, "BackoffType") => o.Retry.BackoffType,
            (_, "UseJitter") => o.Retry.UseJitter,
            (_, "ThrottledDelay") => o.Retry.ThrottledDelay,
            (_, "RetryUnknownOutcome") => o.Retry.RetryUnknownOutcome,
            (_, "FailureRatio") => o.CircuitBreaker.FailureRatio,
            (_, "MinimumThroughput") => o.CircuitBreaker.MinimumThroughput,
            (_, "SamplingDuration") => o.CircuitBreaker.SamplingDuration,
            _ => o.CircuitBreaker.BreakDuration,
        };
        object expected = (strategy, key) switch
        {
            ("TotalRequestTimeout", _) => TimeSpan.FromMinutes(7),
            ("AttemptTimeout", _) => TimeSpan.FromMinutes(2),
            (_, "MaxRetryAttempts") => 5,
            (_, "Delay") => TimeSpan.FromSeconds(3),
            (_, "MaxDelay") => TimeSpan.FromMinutes(1),
            (_, "BackoffType") => DelayBackoffType.Linear,
            (_, "UseJitter") => false,
            (_, "ThrottledDelay") => TimeSpan.FromMinutes(1),
            (_, "RetryUnknownOutcome") => true,
            (_, "FailureRatio") => 0.25,
            (_, "MinimumThroughput") => 20,
            (_, "SamplingDuration") => TimeSpan.FromMinutes(1),
            _ => TimeSpan.FromSeconds(45),
        };
        read.Should().Be(expected);
        host.Services.GetRequiredService<ISmtpSender>().Should().BeOfType<ResilientSmtpSender>();
        await host.StopAsync();
    }

    [Theory]
    [InlineData("{ \"Retry\": { \"UseJitter\": \"yes\" } }", "SmtpResilience:Retry:UseJitter")]
    [InlineData("{ \"Retry\": { \"RetryUnknownOutcome\": \"sometimes\" } }", "SmtpResilience:Retry:RetryUnknownOutcome")]
    [InlineData("{ \"Retry\": { \"MaxRetryAttempts\": \"3.5\" } }", "SmtpResilience:Retry:MaxRetryAttempts")]
    [InlineData("{ \"Retry\": { \"MaxDelay\": \"5\" } }", "SmtpResilience:Retry:MaxDelay")]
    [InlineData("{ \"Retry\": { \"MaxRetryAttempts\": 0, \"Delay\": \"2\" } }", "SmtpResilience:Retry:Delay")]
    [InlineData("{ \"CircuitBreaker\": { \"MinimumThroughput\": \"ten\" } }", "SmtpResilience:CircuitBreaker:MinimumThroughput")]
    [InlineData("{ \"CircuitBreaker\": { \"SamplingDuration\": \"00:00:00.1\" } }", "SmtpResilience:CircuitBreaker:SamplingDuration")]
    [InlineData("{ \"CircuitBreaker\": { \"FailureRatio\": \"-0.5\" } }", "SmtpResilience:CircuitBreaker:FailureRatio")]
    [InlineData("{ \"CircuitBreaker\": { \"BreakDurations\": \"00:00:10\" } }", "SmtpResilience:CircuitBreaker:BreakDurations")]
    [InlineData("{ \"Retries\": { \"MaxRetryAttempts\": 1 } }", "SmtpResilience:Retries")]
    [InlineData("{ \"TotalRequestTimeout\": { \"Timeout\": \"soon\" } }", "SmtpResilience:TotalRequestTimeout:Timeout")]
    public async Task A_bad_value_stops_the_start_with_an_OptionsValidationException_naming_the_key(string resilience, string expected)
    {
        using var host = PeerSupport.ResilientHost(TestServers.PostfixPort, resilience);

        var act = () => host.StartAsync();

        var thrown = await act.Should().ThrowAsync<OptionsValidationException>();
        thrown.Which.Message.Should().Contain(expected);
    }

    [Fact]
    public async Task A_total_timeout_no_longer_than_the_attempt_timeout_names_both()
    {
        using var host = PeerSupport.ResilientHost(TestServers.PostfixPort, "{ \"TotalRequestTimeout\": { \"Timeout\": \"00:01:30\" }, \"AttemptTimeout\": { \"Timeout\": \"00:01:30\" } }");

        var act = () => host.StartAsync();

        (await act.Should().ThrowAsync<OptionsValidationException>()).Which.Message.Should().Contain("TotalRequestTimeout").And.Contain("AttemptTimeout");
    }

    [Fact]
    public async Task RetryUnknownOutcome_true_from_appsettings_resends_after_a_drop_after_the_final_dot()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        using var host = PeerSupport.ResilientHost(proxy.Port, $$"""{ "Retry": { {{Zero}}, "RetryUnknownOutcome": true } }""");
        await host.StartAsync();
        var recipient = TestServers.UniqueRecipient("p18b-json-unknown");
        var mail = PeerSupport.Mail(recipient);
        proxy.DropNext(DropPoint.AfterFinalDot);

        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(2);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail, 2)).Should().Be(2);
        await host.StopAsync();
    }

    [Fact]
    public async Task The_default_RetryUnknownOutcome_from_an_empty_section_never_resends_after_a_drop_after_the_final_dot()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        using var host = PeerSupport.ResilientHost(proxy.Port, $$"""{ "Retry": { {{Zero}} } }""");
        await host.StartAsync();
        var recipient = TestServers.UniqueRecipient("p18b-json-unknown-default");
        var mail = PeerSupport.Mail(recipient);
        proxy.DropNext(DropPoint.AfterFinalDot);

        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Attempts.Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_resilience_section_inside_the_sender_s_own_section_passes_its_unknown_key_check_and_is_applied()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        var builder = PeerSupport.Host($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{proxy.Port}}, "TlsMode": "None",
                        "Resilience": { "Retry": { "MaxRetryAttempts": 1, {{Zero}} } } } }
            """);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience(builder.Configuration.GetSection("Smtp:Resilience"));
        using var host = builder.Build();
        await host.StartAsync();
        var recipient = TestServers.UniqueRecipient("p18b-json-nested");

        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(PeerSupport.Mail(PeerSupport.TempFail, recipient).Message).WaitAsync(PeerSupport.Guard);

        result.Attempts.Should().Be(2);
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(2);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_keyed_sender_s_nested_section_inherits_nothing_from_the_default_s()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        var builder = PeerSupport.Host($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{TestServers.PostfixPort}}, "TlsMode": "None",
                        "Bulk": { "Host": "127.0.0.1", "Port": {{proxy.Port}}, "TlsMode": "None" } },
              "SmtpResilience": { "Retry": { "MaxRetryAttempts": 1, {{Zero}} },
                                  "Bulk": { "Retry": { {{Zero}} } } } }
            """);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"))
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience:Bulk"));
        using var host = builder.Build();
        await host.StartAsync();

        var result = await host.Services.GetRequiredKeyedService<ISmtpSender>("bulk")
            .SendAsync(PeerSupport.Mail(PeerSupport.TempFail).Message).WaitAsync(PeerSupport.Guard);

        result.Attempts.Should().Be(4, "the bulk pipeline has the default 3 retries, not the default sender's 1");
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(4);
        await host.StopAsync();
    }

    [Fact]
    public async Task The_container_s_TimeProvider_drives_the_retry_delay_read_from_appsettings()
    {
        PeerSupport.RequireServers();
        var clock = new ObservableTimeProvider();
        var builder = PeerSupport.Host($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{TestServers.PostfixPort}}, "TlsMode": "None" },
              "SmtpResilience": { "Retry": { "MaxRetryAttempts": 1, "Delay": "00:02:00", "UseJitter": false, "BackoffType": "Constant" } } }
            """);
        builder.Services.AddSingleton<TimeProvider>(clock);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        using var host = builder.Build();
        await host.StartAsync();
        var recipient = TestServers.UniqueRecipient("p18b-json-clock");
        var mail = PeerSupport.Mail(PeerSupport.TempFail, recipient);

        var send = host.Services.GetRequiredService<ISmtpSender>().SendAsync(mail.Message);
        await clock.WaitUntilArmedAsync(TimeSpan.FromMinutes(2), 1).WaitAsync(PeerSupport.Guard);
        send.IsCompleted.Should().BeFalse("the two minutes of the delay have not passed on the container's clock");
        clock.Advance(TimeSpan.FromMinutes(2));
        var result = await send.WaitAsync(PeerSupport.Guard);

        result.Attempts.Should().Be(2);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
        await host.StopAsync();
    }
}
