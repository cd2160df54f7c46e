using System.Diagnostics;
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
}
