using System.Text;
using MailPipe.Extensions.Tests.Support;
using MailPipe.Resilience;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests.Peer;

/// <summary>
/// Peer acceptance of MailPipe.Resilience in a host (<c>AddMailPipe(...).AddStandardResilience(section)</c> from
/// appsettings JSON) against Postfix: what is retried (a 4yz, a transient failure to connect) and what is not (a 5yz,
/// a 5yz after the data), each message delivered exactly once, counted in the Maildir by its Message-Id.
/// </summary>
public sealed class PeerResilienceTests
{
    private static IHost Start(int port, string resilience = "{ \"Retry\": { \"MaxRetryAttempts\": 2, \"Delay\": \"00:00:00.010\", \"MaxDelay\": \"00:00:00.050\", \"ThrottledDelay\": \"00:00:00.010\" } }")
    {
        var builder = PeerHost.Builder($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{port}}, "TlsMode": "None", "Pool": { "MaxConnections": 1 } },
              "SmtpResilience": {{resilience}} }
            """);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        var host = builder.Build();
        host.Start();
        return host;
    }

    [Fact]
    public async Task The_standard_pipeline_from_configuration_has_the_documented_defaults_and_wraps_the_sender()
    {
        using var host = Start(TestServers.PostfixPort, "{}");
        host.Services.GetRequiredService<ISmtpSender>().Should().BeOfType<ResilientSmtpSender>();
        host.Services.GetRequiredService<SmtpSender>().Should().NotBeNull("the pooled sender stays registered");

        var options = host.Services.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName);
        options.TotalRequestTimeout.Timeout.Should().Be(TimeSpan.FromMinutes(5));
        options.Retry.MaxRetryAttempts.Should().Be(3);
        options.Retry.Delay.Should().Be(TimeSpan.FromSeconds(2));
        options.Retry.MaxDelay.Should().Be(TimeSpan.FromMinutes(5));
        options.Retry.BackoffType.Should().Be(Polly.DelayBackoffType.Exponential);
        options.Retry.UseJitter.Should().BeTrue();
        options.Retry.ThrottledDelay.Should().Be(TimeSpan.FromSeconds(30));
        options.Retry.RetryUnknownOutcome.Should().BeFalse();
        options.CircuitBreaker.FailureRatio.Should().Be(0.5);
        options.CircuitBreaker.MinimumThroughput.Should().Be(10);
        options.CircuitBreaker.SamplingDuration.Should().Be(TimeSpan.FromSeconds(30));
        options.CircuitBreaker.BreakDuration.Should().Be(TimeSpan.FromSeconds(15));
        options.AttemptTimeout.Timeout.Should().Be(TimeSpan.FromSeconds(90));
    }

    [Theory]
    [InlineData("{ \"Retry\": { \"MaxRetryAttempts\": -1 } }", "SmtpResilience:Retry:MaxRetryAttempts must be between 0 (no retries) and 2147483647; it is -1.")]
    [InlineData("{ \"Retry\": { \"Delay\": \"2\" } }", "SmtpResilience:Retry:Delay")]
    [InlineData("{ \"Retry\": { \"BackoffType\": \"2\" } }", "SmtpResilience:Retry:BackoffType")]
    [InlineData("{ \"Retry\": { \"MaxRetryAtempts\": 2 } }", "SmtpResilience:Retry:MaxRetryAtempts")]
    [InlineData("{ \"AttemptTimeout\": { \"Timeout\": \"2.00:00:00\" } }", "SmtpResilience:AttemptTimeout:Timeout must be between 00:00:00.0100000 and 1.00:00:00; it is 2.00:00:00.")]
    [InlineData("{ \"TotalRequestTimeout\": { \"Timeout\": \"00:01:00\" } }", "AttemptTimeout")]
    public void A_wrong_resilience_setting_stops_the_start_naming_the_key(string resilience, string expected)
    {
        var builder = PeerHost.Builder($$"""{ "Smtp": { "Host": "127.0.0.1", "TlsMode": "None" }, "SmtpResilience": {{resilience}} }""");
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp")).AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        using var host = builder.Build();
        var start = () => host.Start();
        start.Should().Throw<OptionsValidationException>().Which.Message.Should().Contain(expected);
    }

    [Fact]
    public async Task A_450_recipient_is_retried_alone_and_the_accepting_recipient_gets_the_message_exactly_once()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        using var host = Start(TestServers.PostfixPort);
        var good = TestServers.UniqueRecipient("peer-retry");
        var (id, content) = PeerHost.Message("retry to the 450 recipient only");

        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", good, "tempfail@example.test"), content);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(3, "MaxRetryAttempts 2: tempfail@ answered 450 three times");
        result.Recipients.Single(r => r.Recipient.Address == good).Accepted.Should().BeTrue();
        result.Recipients.Single(r => r.Recipient.Address == "tempfail@example.test").Reply!.Code.Should().Be(450);
        (await PeerHost.CopiesAsync(good, id, () => PeerHost.SendMarkerAsync(good))).Should().Be(1, "a retry never goes again to a recipient that accepted");
    }

    [Fact]
    public async Task A_421_greeting_is_retried_and_the_message_is_delivered_exactly_once()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { RefuseWith = "421 4.3.2 Peer proxy: try again later", RefuseFirst = 1 };
        using var host = Start(proxy.Port);
        var recipient = TestServers.UniqueRecipient("peer-421");
        var (id, content) = PeerHost.Message("after a 421 greeting");

        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", recipient), content);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(2, "the first attempt was NotSent (421 greeting, transient), the second was accepted");
        (await PeerHost.CopiesAsync(recipient, id, () => PeerHost.SendMarkerAsync(recipient))).Should().Be(1);
    }

    [Fact]
    public async Task A_permanent_refusal_is_not_retried()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        using var host = Start(TestServers.PostfixPort);
        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(
            new SmtpEnvelope("peer@example.test", "unknown-peer-" + Guid.NewGuid().ToString("N") + "@example.test"), PeerHost.Message("550").Content);

        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.Attempts.Should().Be(1);
        result.Recipients.Single().Reply!.Code.Should().Be(550);
    }

    [Fact]
    public async Task A_554_after_the_data_is_not_retried_and_a_451_after_the_data_is()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        using var host = Start(TestServers.PostfixPort);
        var sender = host.Services.GetRequiredService<ISmtpSender>();

        var rejected = await sender.SendAsync(new SmtpEnvelope("eod-reject@example.test", TestServers.UniqueRecipient("peer-eod")), PeerHost.Message("554").Content);
        rejected.Outcome.Should().Be(SmtpSendOutcome.Refused, rejected.ToString());
        rejected.FinalReply!.Code.Should().Be(554);
        rejected.Attempts.Should().Be(1);

        var tempfailed = await sender.SendAsync(new SmtpEnvelope("eod-tempfail@example.test", TestServers.UniqueRecipient("peer-eod")), PeerHost.Message("451").Content);
        tempfailed.Outcome.Should().Be(SmtpSendOutcome.Refused, tempfailed.ToString());
        tempfailed.FinalReply!.Code.Should().Be(451);
        tempfailed.IsTransientFailure.Should().BeTrue();
        tempfailed.Attempts.Should().Be(3);
    }

    [Fact]
    public async Task MaxRetryAttempts_0_from_configuration_sends_once()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        using var host = Start(TestServers.PostfixPort, "{ \"Retry\": { \"MaxRetryAttempts\": 0 } }");
        var good = TestServers.UniqueRecipient("peer-noretry");
        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", good, "tempfail@example.test"), PeerHost.Message("no retry").Content);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(1);
    }

    [Fact]
    public async Task An_unknown_outcome_is_not_retried()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var marker = "peer-unknown-" + Guid.NewGuid().ToString("N");
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { HoldOn = marker };
        var builder = PeerHost.Builder($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{proxy.Port}}, "TlsMode": "None", "Pool": { "MaxConnections": 1 } },
              "SmtpResilience": { "Retry": { "Delay": "00:00:00.010" } } }
            """);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"))
            .ConfigureSender((_, o) => o.Timeouts = o.Timeouts with { Reply = TimeSpan.FromSeconds(3), DataTermination = TimeSpan.FromSeconds(3) });   // the wait for the held replies; long enough for a loaded Postfix's greeting
        using var host = builder.Build();
        await host.StartAsync();

        // The proxy holds the data (the marker is in it): the end of data was written, no reply comes.
        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(
            new SmtpEnvelope("peer@example.test", TestServers.UniqueRecipient("peer-unknown")), Encoding.ASCII.GetBytes($"Subject: {marker}\r\n\r\nx\r\n"));

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Attempts.Should().Be(1, "an unknown outcome may have been delivered: never retried unless RetryUnknownOutcome");
        proxy.Accepted.Should().Be(1, "no second connection was opened for a retry");
    }

    [Fact]
    public async Task An_open_circuit_returns_NotSent_without_a_connection_attempt()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { RefuseWith = "421 4.3.2 Peer proxy: closing", RefuseFirst = int.MaxValue };
        using var host = Start(proxy.Port, """
            { "Retry": { "MaxRetryAttempts": 0 },
              "CircuitBreaker": { "FailureRatio": 0.5, "MinimumThroughput": 2, "SamplingDuration": "00:01:00", "BreakDuration": "00:01:00" } }
            """);
        var sender = host.Services.GetRequiredService<ISmtpSender>();
        SmtpEnvelope Envelope() => new("peer@example.test", TestServers.UniqueRecipient("peer-circuit"));

        for (var i = 0; i < 2; i++)
        {
            var failed = await sender.SendAsync(Envelope(), PeerHost.Message("circuit").Content);
            failed.Outcome.Should().Be(SmtpSendOutcome.NotSent, failed.ToString());
            failed.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused, "the pooled sender's name for a session the server refused");
        }

        proxy.Accepted.Should().Be(2);

        // Open now: the caller gets a result, not Polly's BrokenCircuitException, and nothing is tried.
        var broken = await sender.SendAsync(Envelope(), PeerHost.Message("circuit").Content);
        broken.Outcome.Should().Be(SmtpSendOutcome.NotSent, broken.ToString());
        broken.IsTransientFailure.Should().BeTrue();
        var error = broken.Exception.Should().BeOfType<SmtpException>().Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        error.InnerException.Should().BeOfType<Polly.CircuitBreaker.BrokenCircuitException>();
        proxy.Accepted.Should().Be(2, "an open circuit sends nothing");
    }

    [Fact]
    public async Task The_total_timeout_returns_NotSent_TimedOut_when_no_attempt_got_a_result()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { HoldOn = "EHLO" };
        using var host = Start(proxy.Port, """
            { "TotalRequestTimeout": { "Timeout": "00:00:02" }, "AttemptTimeout": { "Timeout": "00:00:01" },
              "Retry": { "MaxRetryAttempts": 5, "Delay": "00:00:00.010", "MaxDelay": "00:00:00.010" } }
            """);

        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", TestServers.UniqueRecipient("peer-total")), PeerHost.Message("total").Content);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.IsTransientFailure.Should().BeTrue();
        var error = result.Exception.Should().BeOfType<SmtpException>().Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        result.Attempts.Should().BeGreaterThanOrEqualTo(1);
    }

    [Fact]
    public async Task A_421_greeting_keeps_its_reply_and_is_throttling()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { RefuseWith = "421 4.7.0 Peer proxy: too many connections from 127.0.0.1", RefuseFirst = int.MaxValue };
        using var host = Start(proxy.Port, "{ \"Retry\": { \"MaxRetryAttempts\": 0 } }");

        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", TestServers.UniqueRecipient("peer-421-reply")), PeerHost.Message("421").Content);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.IsTransientFailure.Should().BeTrue();
        var error = result.Exception.Should().BeOfType<SmtpException>().Which;
        error.Reply.Should().NotBeNull("the DI README: the whole reply stays in the exception (an SmtpException with Reply)");
        error.Reply!.Code.Should().Be(421);
        SmtpResiliencePredicates.IsThrottling(result).Should().BeTrue("the Resilience README: after a 421 or a 4.7.x reply the retry waits longer");
    }

    [Fact]
    public async Task After_a_421_greeting_the_retry_waits_ThrottledDelay_not_the_ordinary_delay()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { RefuseWith = "421 4.7.0 Peer proxy: too many connections from 127.0.0.1", RefuseFirst = int.MaxValue };
        var clock = new RetryDelayClock(ordinary: TimeSpan.FromMilliseconds(10), throttledFrom: TimeSpan.FromSeconds(225), throttledTo: TimeSpan.FromSeconds(375));
        var builder = PeerHost.Builder($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{proxy.Port}}, "TlsMode": "None", "Pool": { "MaxConnections": 1 } },
              "SmtpResilience": { "TotalRequestTimeout": { "Timeout": "00:20:00" },
                                  "Retry": { "MaxRetryAttempts": 1, "Delay": "00:00:00.010", "MaxDelay": "00:30:00", "UseJitter": false, "ThrottledDelay": "00:05:00" } } }
            """);
        builder.Services.AddSingleton<TimeProvider>(clock);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp")).AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        using var host = builder.Build();
        await host.StartAsync();

        using var cancel = new CancellationTokenSource();
        var sending = host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", TestServers.UniqueRecipient("peer-throttled")), PeerHost.Message("throttled").Content, cancel.Token);

        var delay = await clock.RetryDelay.WaitAsync(TimeSpan.FromSeconds(60));
        delay.Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(225), "ThrottledDelay 5 min ±25 %, not the ordinary 10 ms, after a server's 421");
        await cancel.CancelAsync();
        var ending = async () => await sending;
        await ending.Should().ThrowAsync<OperationCanceledException>();
    }

    [Fact]
    public async Task AddStandardResilience_called_twice_for_one_sender_is_one_pipeline_with_both_configurations()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var builder = PeerHost.Builder($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{TestServers.PostfixPort}}, "TlsMode": "None" },
              "SmtpResilience": { "Retry": { "Delay": "00:00:00.010", "MaxDelay": "00:00:00.050" } } }
            """);
        var mailPipe = builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        mailPipe.AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        mailPipe.AddStandardResilience(o => o.Retry.MaxRetryAttempts = 1);   // a shared module adds its own call
        using var host = builder.Build();
        await host.StartAsync();

        var options = host.Services.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName);
        options.Retry.Delay.Should().Be(TimeSpan.FromMilliseconds(10));
        options.Retry.MaxRetryAttempts.Should().Be(1);
        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(
            new SmtpEnvelope("peer@example.test", TestServers.UniqueRecipient("peer-twice"), "tempfail@example.test"), PeerHost.Message("twice").Content);
        result.Attempts.Should().Be(2, "one pipeline: not a second retrying inside the first (which would make 4)");
        await host.StopAsync();
    }

    [Fact]
    public async Task Stopping_the_host_during_a_retry_delay_ends_the_send_with_the_merged_result_at_once()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var delay = TimeSpan.FromSeconds(7);
        var clock = new RetryDelayClock(ordinary: delay, throttledFrom: TimeSpan.MaxValue, throttledTo: TimeSpan.MaxValue);
        var builder = PeerHost.Builder($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{TestServers.PostfixPort}}, "TlsMode": "None" },
              "SmtpResilience": { "Retry": { "MaxRetryAttempts": 2, "Delay": "00:00:07", "BackoffType": "constant", "UseJitter": false } } }
            """);
        builder.Services.AddSingleton<TimeProvider>(clock);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp")).AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        var host = builder.Build();
        await host.StartAsync();
        var good = TestServers.UniqueRecipient("peer-stop");
        var (id, content) = PeerHost.Message("stop during the delay");
        var sending = host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", good, "tempfail@example.test"), content);

        (await clock.RetryDelay.WaitAsync(TimeSpan.FromSeconds(60))).Should().Be(delay, "the first attempt is over and the retry waits");
        await host.StopAsync();
        host.Dispose();   // the container disposes the ResilientSmtpSender: the wait for the retry ends (the fake clock never reaches it)

        var result = await sending.WaitAsync(TimeSpan.FromSeconds(60));
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "the first attempt delivered to the good recipient: " + result);
        result.Attempts.Should().Be(1);
        (await PeerHost.CopiesAsync(good, id, () => PeerHost.SendMarkerAsync(good))).Should().Be(1);
    }

    /// <summary>A fake clock that reports the first timer armed with the ordinary retry delay or one in the throttled window.</summary>
    private sealed class RetryDelayClock(TimeSpan ordinary, TimeSpan throttledFrom, TimeSpan throttledTo) : Microsoft.Extensions.Time.Testing.FakeTimeProvider
    {
        private readonly TaskCompletionSource<TimeSpan> _delay = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<TimeSpan> RetryDelay => _delay.Task;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime == ordinary || (dueTime >= throttledFrom && dueTime <= throttledTo))
            {
                _delay.TrySetResult(dueTime);
            }

            return base.CreateTimer(callback, state, dueTime, period);
        }
    }
}
