using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MailPipe.IntegrationTests.Support;
using static MailPipe.OpenTelemetry.Tests.Peer.PeerOptions;

namespace MailPipe.OpenTelemetry.Tests;

/// <summary>
/// breaker21: the pooled sender's connections are the pool's, not a caller's (their <c>smtp connection</c> span is a
/// root). The worker that opens them and sends every caller's messages was started on the flow of the caller whose
/// message woke the pool, and kept that caller's <see cref="Activity.Current"/> (and logger scopes) for all it did
/// next: the runtime's own spans of a connection opened for another caller's message (the socket connect) went under
/// the first caller's request.
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class Breaker21WorkerContextTests
{
    private const string CallerName = "MailPipe.OpenTelemetry.Tests.Breaker21Worker";
    private static readonly ActivitySource Caller = new(CallerName);

    [Fact]
    public async Task A_connection_the_pool_opens_for_another_callers_message_is_not_under_the_first_callers_request()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var started = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == CallerName || s.Name.StartsWith("Experimental.System.Net", StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = a =>
            {
                lock (started)
                {
                    started.Add(a);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        var options = Plain(TestServers.PostfixPort);
        options.MaxConnections = 1;
        options.MaxMessagesPerConnection = 1;
        options.MaxBatchSize = 1;
        await using var sender = new SmtpSender(options);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<SmtpSendResult> Send(string request) => Task.Run(async () =>
        {
            using var activity = Caller.StartActivity(request)!;
            return await sender.SendAsync(new SmtpEnvelope("b21@example.test", TestServers.UniqueRecipient("b21-worker")), "Subject: w\r\n\r\nx\r\n"u8.ToArray());
        });

        var first = Send("request-A");
        var second = Send("request-B");
        var third = Send("request-C");
        (await Task.WhenAll(first, second, third)).Should().OnlyContain(r => r.IsAccepted);

        List<Activity> snapshot;
        lock (started)
        {
            snapshot = [.. started];
        }

        var connects = snapshot.Where(a => a.Source.Name.StartsWith("Experimental.System.Net.Sockets", StringComparison.Ordinal)).ToList();
        connects.Should().HaveCountGreaterThanOrEqualTo(3, "one connection per message (MaxMessagesPerConnection 1); the runtime's socket spans show where each was opened");
        var requests = snapshot.Where(a => a.Source.Name == CallerName).ToDictionary(a => a.SpanId, a => a.OperationName);
        connects.Where(c => requests.ContainsKey(c.ParentSpanId)).Select(c => requests[c.ParentSpanId]).Should().BeEmpty(
            "a pool connection serves every caller: what opening it does is under no caller's request (its smtp connection span is a root too)");
    }
    [Fact]
    public async Task The_sweep_that_closes_an_idle_connection_logs_under_no_trace_of_whoever_made_the_sender()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == CallerName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        var entries = new List<(string Message, string Scopes)>();
        using var loggerFactory = LoggerFactory.Create(b => b
            .Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId)
            .SetMinimumLevel(LogLevel.Trace)
            .AddProvider(new ScopeCapture(entries)));
        var options = Plain(TestServers.PostfixPort, loggerFactory);
        options.IdleTimeout = TimeSpan.FromMilliseconds(300);

        SmtpSender sender;
        string makerTrace;
        using (var maker = Caller.StartActivity("request-that-made-the-sender")!)
        {
            makerTrace = maker.TraceId.ToHexString();
            sender = new SmtpSender(options);
        }

        await using (sender)
        {
            (await sender.SendAsync(new SmtpEnvelope("b21@example.test", TestServers.UniqueRecipient("b21-sweep")), "Subject: s\r\n\r\nx\r\n"u8.ToArray())).IsAccepted.Should().BeTrue();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (sender.GetStatistics().Discarded == 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            sender.GetStatistics().Discarded.Should().Be(1, "the sweep closed the idle connection");
        }

        List<(string Message, string Scopes)> snapshot;
        lock (entries)
        {
            snapshot = [.. entries];
        }

        snapshot.Should().Contain(e => e.Message.Contains("idle_timeout", StringComparison.Ordinal));
        snapshot.Where(e => e.Scopes.Contains(makerTrace, StringComparison.Ordinal)).Select(e => e.Message).Should().BeEmpty(
            "the sweep is the pool's, not the request's that happened to make the sender");
    }

    /// <summary>Keeps every entry with the text of its scopes (the TraceId that ActivityTrackingOptions adds among them).</summary>
    private sealed class ScopeCapture(List<(string Message, string Scopes)> entries) : ILoggerProvider, ISupportExternalScope
    {
        private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

        public void Dispose()
        {
        }

        private sealed class Logger(ScopeCapture owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => owner._scopes.Push(state);

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var scopes = new System.Text.StringBuilder();
                owner._scopes.ForEachScope((scope, sb) =>
                {
                    if (scope is IEnumerable<KeyValuePair<string, object?>> pairs)
                    {
                        foreach (var pair in pairs)
                        {
                            sb.Append(pair.Key).Append('=').Append(pair.Value).Append(';');
                        }
                    }
                    else
                    {
                        sb.Append(scope).Append(';');
                    }
                }, scopes);
                owner.Add(formatter(state, exception), scopes.ToString());
            }
        }

        private void Add(string message, string scopes)
        {
            lock (entries)
            {
                entries.Add((message, scopes));
            }
        }
    }
}
