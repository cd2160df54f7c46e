using System.Diagnostics.Metrics;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MailPipe.Extensions.Tests;

/// <summary>What AddMailPipe registers and what the sender takes from the container.</summary>
public sealed class RegistrationTests
{
    [Fact]
    public async Task One_singleton_sender_behind_ISmtpSender()
    {
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; });
        await using var provider = services.BuildServiceProvider();

        var sender = provider.GetRequiredService<ISmtpSender>();
        sender.Should().BeSameAs(provider.GetRequiredService<SmtpSender>()).And.BeSameAs(provider.GetRequiredService<ISmtpSender>());
        ((SmtpSender)sender).Name.Should().Be("127.0.0.1:587");
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("\t")]
    public void A_key_that_is_empty_or_white_space_is_refused(string key)
    {
        var services = new ServiceCollection();

        FluentActions.Invoking(() => services.AddKeyedMailPipe(key, o => o.Host = "127.0.0.1")).Should().Throw<ArgumentException>()
            .Which.ParamName.Should().Be("serviceKey");
    }

    [Fact]
    public async Task Keyed_senders_for_several_servers()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Smtp:Transactional:Host"] = "127.0.0.1",
            ["Smtp:Transactional:Port"] = "2525",
            ["Smtp:Transactional:TlsMode"] = "StartTlsRequired",
            ["Smtp:Bulk:Host"] = "127.0.0.1",
            ["Smtp:Bulk:Port"] = "2542",
            ["Smtp:Bulk:TlsMode"] = "None",
        }).Build();
        var services = new ServiceCollection();
        var transactional = services.AddKeyedMailPipe("transactional", configuration.GetSection("Smtp:Transactional"));
        var bulk = services.AddKeyedMailPipe("bulk", configuration.GetSection("Smtp:Bulk"));
        await using var provider = services.BuildServiceProvider();

        transactional.Name.Should().Be("transactional");
        bulk.Name.Should().Be("bulk");
        var a = provider.GetRequiredKeyedService<ISmtpSender>("transactional");
        var b = provider.GetRequiredKeyedService<ISmtpSender>("bulk");
        a.Should().NotBeSameAs(b);
        ((SmtpSender)a).Name.Should().Be("transactional");
        ((SmtpSender)b).Name.Should().Be("bulk");
        provider.GetService<ISmtpSender>().Should().BeNull("only keyed senders were registered");
    }

    [Fact]
    public async Task Decorators_wrap_in_order_and_the_sender_stays_registered()
    {
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddSenderDecorator((_, inner) => new Wrapper("inner", inner))
            .AddSenderDecorator((_, inner) => new Wrapper("outer", inner))
            .ConfigureSender((_, o) => o.Name = "configured");
        await using var provider = services.BuildServiceProvider();

        var outer = provider.GetRequiredService<ISmtpSender>().Should().BeOfType<Wrapper>().Subject;
        outer.Label.Should().Be("outer");
        var inner = outer.Inner.Should().BeOfType<Wrapper>().Subject;
        inner.Label.Should().Be("inner");
        inner.Inner.Should().BeSameAs(provider.GetRequiredService<SmtpSender>());
        provider.GetRequiredService<SmtpSender>().Name.Should().Be("configured");
    }

    [Fact]
    public async Task A_decorator_that_returns_null_is_named()
    {
        // It was resolved as a missing registration: "No service for type 'MailPipe.ISmtpSender' has been registered",
        // right after AddMailPipe registered it.
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddSenderDecorator((_, _) => null!);
        await using var provider = services.BuildServiceProvider();

        var resolve = () => provider.GetRequiredService<ISmtpSender>();
        resolve.Should().Throw<InvalidOperationException>().WithMessage("*AddSenderDecorator*returned null*");
    }

    [Fact]
    public async Task Logger_factory_time_provider_and_meter_factory_come_from_the_container()
    {
        var logs = new LogCapture();
        var time = new CountingTimeProvider();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        services.AddMetrics();
        services.AddSingleton<TimeProvider>(time);
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.Port = TestServers.UnusedPort(); o.TlsMode = SmtpTlsMode.None; });
        await using var provider = services.BuildServiceProvider();
        var meterFactory = provider.GetRequiredService<IMeterFactory>();
        var published = new List<Instrument>();
        using var listener = new MeterListener { InstrumentPublished = (instrument, _) => { lock (published) { published.Add(instrument); } } };
        listener.Start();

        var sender = provider.GetRequiredService<ISmtpSender>();
        var result = await sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "b@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray()));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        time.TimersCreated.Should().BeGreaterThan(0, "the pool's timers run on the container's TimeProvider");
        logs.Entries.Should().Contain(e => e.Category == "MailPipe.Pool" && e.Level == LogLevel.Warning && e.EventId.Id == MailPipeEventId.PoolConnectionOpenFailed);
        lock (published)
        {
            published.Should().Contain(i => i.Meter.Name == SmtpSender.MeterName && i.Meter.Scope == meterFactory);

            // #13: the sessions' instruments live on the same meter of the container's factory, each instrument once.
            var ours = published.Where(i => i.Meter.Scope == meterFactory).ToList();
            ours.Select(i => i.Meter).Distinct().Should().ContainSingle().Which.Name.Should().Be(MailPipeDiagnostics.MeterName);
            ours.Select(i => i.Name).Should().Contain(["mailpipe.smtp.connect.failures", "mailpipe.smtp.transaction.duration", "mailpipe.sender.connection.opened"]).And.OnlyHaveUniqueItems();
        }
    }

    [Fact]
    public async Task Each_connections_transcript_carries_its_connection_id_and_server()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var logs = new LogCapture();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.Port = TestServers.PostfixPort; o.TlsMode = SmtpTlsMode.None; o.Pool.MaxConnections = 3; })
            .ConfigureSender((_, o) => o.MaxBatchSize = 1);
        await using var provider = services.BuildServiceProvider();
        var sender = provider.GetRequiredService<ISmtpSender>();

        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ =>
            sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", TestServers.UniqueRecipient("scope")), "Subject: scope\r\n\r\nx\r\n"u8.ToArray()))));

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        var transcript = logs.Entries.Where(e => e.EventId.Id is MailPipeEventId.ClientLine or MailPipeEventId.ServerLine).ToList();
        transcript.Should().NotBeEmpty();
        transcript.Should().OnlyContain(e => e.ScopeValue("MailPipe.ConnectionId") is long && (string?)e.ScopeValue("MailPipe.Server") == $"127.0.0.1:{TestServers.PostfixPort}");
        var byConnection = transcript.GroupBy(e => (long)e.ScopeValue("MailPipe.ConnectionId")!).ToList();
        byConnection.Should().HaveCountGreaterThan(1, "twelve concurrent messages with batches of one use several connections");
        byConnection.Should().OnlyContain(g => g.Count(e => e.Message.StartsWith("C: EHLO", StringComparison.Ordinal)) == 1, "each connection's transcript has its own EHLO, and only one");
    }

    [Fact]
    public async Task A_connection_lost_while_sending_is_a_warning_with_its_scope()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { DropOn = "MAIL FROM:<drop@" };
        var logs = new LogCapture();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.Port = proxy.Port; o.TlsMode = SmtpTlsMode.None; });
        await using var provider = services.BuildServiceProvider();
        var sender = provider.GetRequiredService<ISmtpSender>();

        var result = await sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("drop@example.test", "b@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray()));

        // MAIL, RCPT and BDAT LAST went out in one pipelined write before the drop: the end of data was written.
        result.Outcome.Should().Be(SmtpSendOutcome.Unknown);

        // The caller has its result as soon as it is known; the pool logs the loss right after.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!logs.Entries.Any(e => e.EventId.Id == MailPipeEventId.PoolConnectionLost) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        var lost = logs.Entries.Where(e => e.EventId.Id == MailPipeEventId.PoolConnectionLost).ToList();
        lost.Should().NotBeEmpty(string.Join("\n", logs.Entries.Select(e => $"{e.Category} {e.Level} {e.EventId.Id} {e.Message}")));
        lost.Should().OnlyContain(e => e.Level == LogLevel.Warning && e.Category == "MailPipe.Pool" && e.ScopeValue("MailPipe.ConnectionId") is long);
        lost[0].Message.Should().MatchRegex(@"^Pool 127\.0\.0\.1:\d+: connection \d+ lost \(broken\) after 1 messages$");
        lost[0].Exception.Should().BeOfType<SmtpException>();
    }

    private sealed class Wrapper(string label, ISmtpSender inner) : ISmtpSender
    {
        public string Label => label;

        public ISmtpSender Inner => inner;

        public Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default) => inner.SendAsync(message, cancellationToken);

        public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) => inner.SendBatchAsync(messages, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private sealed class CountingTimeProvider : TimeProvider
    {
        private int _timers;

        public int TimersCreated => Volatile.Read(ref _timers);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Interlocked.Increment(ref _timers);
            return base.CreateTimer(callback, state, dueTime, period);
        }
    }
}
