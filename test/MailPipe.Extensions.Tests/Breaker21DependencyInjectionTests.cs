using System.Net;
using System.Net.Sockets;
using System.Text;
using MailPipe.Extensions.Tests.Support;
using MailPipe.IntegrationTests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// breaker21's probes of the DI package README as an ASP.NET Core team reads it: a wrong setting fails the same way at
/// start-up and at first resolve, the health check against a server that refuses its greeting, and a host that stops
/// with a message in flight.
/// </summary>
public sealed class Breaker21DependencyInjectionTests
{
    private static IConfigurationSection Section(params (string Key, string? Value)[] overrides)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Smtp:Host"] = "127.0.0.1",
            ["Smtp:Port"] = "2525",
            ["Smtp:TlsMode"] = "None",
        };
        foreach (var (key, value) in overrides)
        {
            settings[key] = value;
        }

        return new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Smtp");
    }

    [Fact]
    public void Without_a_host_wrong_keys_fail_at_first_resolve_with_an_OptionsValidationException_naming_each_key()
    {
        var services = new ServiceCollection();
        services.AddMailPipe(Section(("Smtp:Port", "70000"), ("Smtp:TlsMode", "starttls"), ("Smtp:Timeouts:Connect", "-00:00:05"), ("Smtp:Pool:MaxConnections", "0")));
        using var provider = services.BuildServiceProvider();

        var resolve = () => provider.GetRequiredService<ISmtpSender>();
        var failures = resolve.Should().Throw<OptionsValidationException>().Which.Failures.ToList();
        failures.Should().HaveCount(4);
        failures.Should().Contain(f => f.StartsWith("Smtp:Port ", StringComparison.Ordinal))
            .And.Contain(f => f.StartsWith("Smtp:TlsMode ", StringComparison.Ordinal))
            .And.Contain(f => f.StartsWith("Smtp:Timeouts:Connect ", StringComparison.Ordinal))
            .And.Contain(f => f.StartsWith("Smtp:Pool:MaxConnections ", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_a_host_a_ConfigureSender_setting_the_sender_refuses_fails_at_first_resolve_as_it_does_at_start_up()
    {
        // The README: "Without a host (a ServiceProvider alone) both checks happen when the sender is first resolved".
        var services = new ServiceCollection();
        services.AddMailPipe(Section()).ConfigureSender((_, o) => o.MaxBatchSize = 0);
        using var provider = services.BuildServiceProvider();

        var resolve = () => provider.GetRequiredService<ISmtpSender>();
        resolve.Should().Throw<OptionsValidationException>()
            .Which.Failures.Should().ContainSingle().Which.Should().StartWith("SmtpSenderOptions.MaxBatchSize (set in code with ConfigureSender) was refused");
    }

    [Theory]
    [InlineData("421 4.3.2 Service shutting down, try later")]
    [InlineData("554 5.3.2 No SMTP service here")]
    public async Task The_health_check_is_unhealthy_against_a_server_refusing_its_greeting_and_names_the_reply(string greeting)
    {
        await using var server = new GreetingServer(greeting);
        var services = new ServiceCollection();
        services.AddMailPipe(Section(("Smtp:Port", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)))).AddHealthCheck();
        services.AddLogging();
        await using var provider = services.BuildServiceProvider();

        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        var entry = report.Entries["mailpipe"];
        entry.Status.Should().Be(HealthStatus.Unhealthy);
        entry.Description.Should().Contain(greeting[..3]).And.Contain("127.0.0.1:" + server.Port);
        entry.Exception.Should().BeOfType<SmtpException>().Which.Reply!.Code.Should().Be(int.Parse(greeting[..3], System.Globalization.CultureInfo.InvariantCulture));
        provider.GetRequiredService<SmtpSender>().GetStatistics().Idle.Should().Be(0, "a refused session is not kept");
    }

    [Fact]
    public async Task A_host_stopping_with_a_message_in_flight_gives_it_its_true_result_and_sends_QUIT()
    {
        await using var server = new HeldReplyServer();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = server.Port;
            o.TlsMode = SmtpTlsMode.None;
        });
        var host = builder.Build();
        await host.StartAsync();
        var sender = host.Services.GetRequiredService<ISmtpSender>();
        var send = sender.SendAsync(new SmtpEnvelope("b21@example.test", "b21-rcpt@example.test"), "Subject: b21\r\n\r\nin flight\r\n"u8.ToArray());
        await server.EndOfData.WaitAsync(TimeSpan.FromSeconds(30));

        await host.StopAsync();
        var disposal = ((IAsyncDisposable)host).DisposeAsync().AsTask();
        await Task.Delay(200);
        disposal.IsCompleted.Should().BeFalse("the disposal waits for the message in flight (DisposeTimeout, 5 s)");
        server.Release();

        await disposal.WaitAsync(TimeSpan.FromSeconds(30));
        var result = await send.WaitAsync(TimeSpan.FromSeconds(30));
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        await server.Quit.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_host_stopping_past_DisposeTimeout_reports_the_message_in_flight_Unknown_and_the_waiting_one_ObjectDisposed()
    {
        await using var server = new HeldReplyServer();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = server.Port;
            o.TlsMode = SmtpTlsMode.None;
            o.Pool.MaxConnections = 1;
        }).ConfigureSender((_, o) =>
        {
            o.DisposeTimeout = TimeSpan.FromMilliseconds(300);
            o.MaxBatchSize = 1;
        });
        var host = builder.Build();
        await host.StartAsync();
        var sender = host.Services.GetRequiredService<ISmtpSender>();
        var inFlight = sender.SendAsync(new SmtpEnvelope("b21@example.test", "b21-rcpt@example.test"), "Subject: b21\r\n\r\nin flight\r\n"u8.ToArray());
        await server.EndOfData.WaitAsync(TimeSpan.FromSeconds(30));
        var waiting = sender.SendAsync(new SmtpEnvelope("b21@example.test", "b21-rcpt@example.test"), "Subject: b21\r\n\r\nwaiting\r\n"u8.ToArray());
        while (host.Services.GetRequiredService<SmtpSender>().GetStatistics().PendingRequests == 0)
        {
            await Task.Delay(10);
        }

        await host.StopAsync();
        await ((IAsyncDisposable)host).DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        var waited = async () => await waiting;
        await waited.Should().ThrowAsync<ObjectDisposedException>();
        try
        {
            var result = await inFlight.WaitAsync(TimeSpan.FromSeconds(30));
            result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        }
        catch (SmtpOutcomeUnknownException ex)
        {
            ex.Result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        }
    }

    [Theory]
    [InlineData(5870, "StartTlsRequired", true)]
    [InlineData(4650, "Implicit", true)]
    [InlineData(2526, "None", false)]
    [InlineData(2527, "None", false)]
    public async Task The_health_check_is_healthy_and_a_send_accepted_with_the_READMEs_keys_for_each_real_server(int port, string tlsMode, bool auth)
    {
        TestServers.RequireListening(port);
        var settings = new List<(string, string?)>
        {
            ("Smtp:Port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("Smtp:TlsMode", tlsMode),
            ("Smtp:Timeouts:Connect", "00:00:05"),
        };
        if (tlsMode != "None")
        {
            settings.Add(("Smtp:Tls:CaFile", TestServers.TlsCertificate));
        }

        if (auth)
        {
            settings.Add(("Smtp:UserName", "testuser"));
            settings.Add(("Smtp:Password", "Test-Pass-123"));
        }

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(Section([.. settings])).AddHealthCheck();
        await using var provider = services.BuildServiceProvider();

        var entry = (await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["mailpipe"];
        entry.Status.Should().Be(HealthStatus.Healthy, entry.Description);
        var result = await provider.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("b21@example.test", TestServers.UniqueRecipient("b21-health")), "Subject: b21\r\n\r\nx\r\n"u8.ToArray());
        result.IsAccepted.Should().BeTrue(result.ToString());
        provider.GetRequiredService<SmtpSender>().GetStatistics().Opened.Should().Be(1, "the check's connection served the message");
    }

    [Fact]
    public async Task The_health_check_stays_healthy_after_the_server_timed_out_the_idle_connection_it_opened()
    {
        // Postfix 2540: smtpd_timeout = 2s, a real "421 4.4.2 ... timeout exceeded" to an idle client.
        const int IdlePort = 2540;
        TestServers.RequireListening(IdlePort);
        await using var relay = new LoopbackRelay(IdlePort);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(Section(("Smtp:Port", relay.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)))).AddHealthCheck();
        await using var provider = services.BuildServiceProvider();
        var checks = provider.GetRequiredService<HealthCheckService>();

        var first = (await checks.CheckHealthAsync()).Entries["mailpipe"];
        first.Status.Should().Be(HealthStatus.Healthy, first.Description);

        // Postfix says 421 and closes after 2 s idle: the relay tells when it has, and the client's socket holds the 421 and
        // the end of the stream (a 3.5 s sleep checked a live connection with NOOP when a loaded Postfix ran late).
        await relay.WaitUntilServerClosedAllAsync(TimeSpan.FromSeconds(60));
        var second = (await checks.CheckHealthAsync()).Entries["mailpipe"];
        second.Status.Should().Be(HealthStatus.Healthy, "the server is up; only the idle connection was gone: {0}", second.Description);
        var statistics = provider.GetRequiredService<SmtpSender>().GetStatistics();
        statistics.Opened.Should().Be(2);
        statistics.Discarded.Should().Be(1);
    }

    [Fact]
    public async Task Many_health_checks_against_Exim_stay_healthy_under_its_nonmail_limit_and_a_send_after_them_is_accepted()
    {
        // Each check of an idle connection is a NOOP: Exim ends a session after smtp_accept_max_nonmail (10) of them.
        const int EximPort = 2526;
        TestServers.RequireListening(EximPort);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(Section(("Smtp:Port", EximPort.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("Smtp:Pool:MaxConnections", "1"))).AddHealthCheck();
        await using var provider = services.BuildServiceProvider();
        var checks = provider.GetRequiredService<HealthCheckService>();

        for (var i = 0; i < 25; i++)
        {
            var entry = (await checks.CheckHealthAsync()).Entries["mailpipe"];
            entry.Status.Should().Be(HealthStatus.Healthy, "check {0}: {1}", i, entry.Description);
        }

        var result = await provider.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("b21@example.test", TestServers.UniqueRecipient("b21-exim")), "Subject: b21\r\n\r\nx\r\n"u8.ToArray());
        result.IsAccepted.Should().BeTrue(result.ToString());
        result.Attempts.Should().Be(1, "no connection the checks left was at Exim's limit");
    }

    /// <summary>Answers every connection with one greeting line, then reads until the client closes.</summary>
    private sealed class GreetingServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _run;

        public GreetingServer(string greeting)
        {
            _listener.Start();
            _run = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    _ = Task.Run(async () =>
                    {
                        using (client)
                        {
                            var stream = client.GetStream();
                            await stream.WriteAsync(Encoding.ASCII.GetBytes(greeting + "\r\n"), _stop.Token);
                            var reader = new StreamReader(stream, Encoding.ASCII);
                            while (await reader.ReadLineAsync(_stop.Token) is { } line)
                            {
                                if (line.StartsWith("QUIT", StringComparison.OrdinalIgnoreCase))
                                {
                                    await stream.WriteAsync("221 bye\r\n"u8.ToArray(), _stop.Token);
                                    break;
                                }

                                await stream.WriteAsync("503 5.5.1 refused session\r\n"u8.ToArray(), _stop.Token);
                            }
                        }
                    });
                }
            });
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _run;
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }

            _stop.Dispose();
        }
    }

    /// <summary>One connection, one-at-a-time SMTP (no PIPELINING), whose reply to the end of data waits for <see cref="Release"/>.</summary>
    private sealed class HeldReplyServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource _endOfData = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _quit = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _run;

        public HeldReplyServer()
        {
            _listener.Start();
            _run = Task.Run(RunAsync);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public Task EndOfData => _endOfData.Task;

        public Task Quit => _quit.Task;

        public void Release() => _release.TrySetResult();

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _run;
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
            {
            }

            _stop.Dispose();
        }

        private async Task RunAsync()
        {
            using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            var stream = client.GetStream();
            var reader = new StreamReader(stream, Encoding.ASCII);
            async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), _stop.Token);
            await Say("220 held.test ESMTP");
            var inData = false;
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                if (inData)
                {
                    if (line == ".")
                    {
                        inData = false;
                        _endOfData.TrySetResult();
                        await _release.Task.WaitAsync(_stop.Token);
                        await Say("250 2.0.0 queued");
                    }

                    continue;
                }

                var verb = line.Split(' ')[0].ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        await Say("250-held.test");
                        await Say("250 8BITMIME");
                        break;
                    case "DATA":
                        inData = true;
                        await Say("354 go ahead");
                        break;
                    case "QUIT":
                        _quit.TrySetResult();
                        await Say("221 2.0.0 bye");
                        return;
                    default:
                        await Say("250 2.0.0 ok");
                        break;
                }
            }
        }
    }
}
