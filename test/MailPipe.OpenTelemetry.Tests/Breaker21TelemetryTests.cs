using System.Diagnostics;
using MailPipe.IntegrationTests.Peer;
using MailPipe.IntegrationTests.Support;
using MailPipe.OpenTelemetry.Tests.Peer;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using static MailPipe.OpenTelemetry.Tests.Peer.PeerOptions;

namespace MailPipe.OpenTelemetry.Tests;

/// <summary>
/// breaker21's probes of the package README as an ASP.NET Core team reads it: the pool's instruments against
/// <see cref="SmtpSender.GetStatistics"/> after a run, two providers at once, a retried message's spans under its
/// caller, a cancelled and a disposed-away send's span.
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class Breaker21TelemetryTests
{
    private static readonly ActivitySource Caller = new("MailPipe.OpenTelemetry.Tests.Breaker21");
    private static readonly byte[] Content = "Subject: b21\r\n\r\nbody\r\n"u8.ToArray();

    private static SmtpEnvelope Envelope() => new("b21@example.test", TestServers.UniqueRecipient("b21"));

    [Fact]
    public async Task After_a_concurrent_run_the_pool_instruments_equal_GetStatistics()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var options = Plain(TestServers.PostfixPort);
        options.MaxConnections = 3;
        options.MaxMessagesPerConnection = 2;
        var name = options.Name!;
        SmtpSenderStatistics? before = null;
        SmtpSenderStatistics? after = null;
        long idle = -1, used = -1, opening = -1, pending = -1;
        var capture = await PeerCapture.RunAsync(async (c, flush) =>
        {
            var sender = new SmtpSender(options);
            var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => Task.Run(() => sender.SendAsync(Envelope(), Content))));
            results.Should().OnlyContain(r => r.IsAccepted);
            while (sender.GetStatistics() is { InUse: > 0 } or { Opening: > 0 })
            {
                await Task.Delay(10);
            }

            before = sender.GetStatistics();
            await flush();
            idle = c.Sum("mailpipe.sender.connection.count", ("mailpipe.sender.name", name), ("mailpipe.sender.connection.state", "idle"));
            used = c.Sum("mailpipe.sender.connection.count", ("mailpipe.sender.name", name), ("mailpipe.sender.connection.state", "used"));
            opening = c.Sum("mailpipe.sender.connection.count", ("mailpipe.sender.name", name), ("mailpipe.sender.connection.state", "opening"));
            pending = c.Sum("mailpipe.sender.pending_requests", ("mailpipe.sender.name", name));
            await sender.DisposeAsync();
            after = sender.GetStatistics();
        });

        idle.Should().Be(before!.Idle);
        used.Should().Be(before.InUse);
        opening.Should().Be(before.Opening);
        pending.Should().Be(before.PendingRequests);
        capture.Sum("mailpipe.sender.connection.opened", ("mailpipe.sender.name", name)).Should().Be(after!.Opened);
        capture.Sum("mailpipe.sender.connection.open_failures", ("mailpipe.sender.name", name)).Should().Be(after.OpenFailures);
        capture.Sum("mailpipe.sender.connection.discarded", ("mailpipe.sender.name", name)).Should().Be(after.Discarded);
        capture.Sum("mailpipe.sender.retries", ("mailpipe.sender.name", name)).Should().Be(after.Retries);
        capture.Sum("mailpipe.sender.batch.size", ("mailpipe.sender.name", name)).Should().Be(after.Batches, "one batch.size measurement per batch");
        capture.Points("mailpipe.sender.batch.size").Where(p => PeerCapture.Has(p, "mailpipe.sender.name", name)).Sum(p => (long)p.GetHistogramSum())
            .Should().Be(after.Messages, "the batch sizes add up to the messages taken");
        capture.Sum("mailpipe.smtp.messages", ("server.port", TestServers.PostfixPort), ("smtp.outcome", "accepted")).Should().BeGreaterThanOrEqualTo(12);
        capture.SpansOn(TestServers.PostfixPort, "smtp connection").Count(s => s.GetTagItem("smtp.transactions") is int).Should().BeGreaterThanOrEqualTo((int)after.Opened);
    }

    [Fact]
    public async Task Two_tracer_and_two_meter_providers_at_once_each_get_every_span_and_count()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var spans1 = new List<Activity>();
        var spans2 = new List<Activity>();
        var metrics1 = new List<Metric>();
        var metrics2 = new List<Metric>();
        var options = Plain(TestServers.PostfixPort);
        using (var tracer1 = Sdk.CreateTracerProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(spans1).Build())
        using (var tracer2 = Sdk.CreateTracerProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(spans2).Build())
        using (var meter1 = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics1).Build())
        using (var meter2 = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics2).Build())
        {
            await using (var sender = new SmtpSender(options))
            {
                for (var i = 0; i < 3; i++)
                {
                    (await sender.SendAsync(Envelope(), Content)).IsAccepted.Should().BeTrue();
                }
            }

            meter1.ForceFlush().Should().BeTrue();
            meter2.ForceFlush().Should().BeTrue();
            tracer1.ForceFlush().Should().BeTrue();
            tracer2.ForceFlush().Should().BeTrue();
        }

        foreach (var spans in new[] { spans1, spans2 })
        {
            spans.Where(s => s.OperationName == "smtp transaction" && Equals(s.GetTagItem("server.port"), TestServers.PostfixPort)).Should().HaveCount(3);
        }

        foreach (var metrics in new[] { metrics1, metrics2 })
        {
            var last = metrics.Last(m => m.Name == "mailpipe.sender.connection.opened");
            long opened = 0;
            foreach (var point in last.GetMetricPoints())
            {
                if (PeerCapture.Has(point, "mailpipe.sender.name", options.Name))
                {
                    opened += point.GetSumLong();
                }
            }

            opened.Should().Be(1);
        }
    }

    [Fact]
    public async Task A_message_retried_on_a_fresh_connection_has_its_transaction_spans_under_its_callers_activity()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.DropFirstConnectionAtMail);
        var spans = new List<Activity>();
        ActivitySpanId request = default;
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        {
            await using (var sender = new SmtpSender(Plain(server.Port)))
            {
                using var activity = Caller.StartActivity("request")!;
                request = activity.SpanId;
                var result = await sender.SendAsync(Envelope(), Content);
                result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
                result.Attempts.Should().Be(2);
            }

            tracer.ForceFlush().Should().BeTrue();
        }

        var transactions = spans.Where(s => s.OperationName == "smtp transaction").ToList();
        transactions.Should().NotBeEmpty().And.OnlyContain(t => t.ParentSpanId == request, "the retried message's caller is the same request");
        transactions.Select(t => t.GetTagItem("smtp.outcome")).Should().Equal(["not_sent", "accepted"], "each attempt is a transaction of its own: the one whose connection was lost, then the retry");
    }

    [Fact]
    public async Task A_caller_cancelling_after_the_end_of_data_ends_its_transaction_span_as_unknown_with_status_Error_and_no_reply_code()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.HoldFinalReply);
        var options = Plain(server.Port);
        options.DisposeTimeout = TimeSpan.FromMilliseconds(200);
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(options);
            using var cts = new CancellationTokenSource();
            var send = sender.SendAsync(Envelope(), Content, cts.Token);
            await server.EndOfDataReceived.WaitAsync(TimeSpan.FromSeconds(30));
            await cts.CancelAsync();
            try
            {
                var result = await send.WaitAsync(TimeSpan.FromSeconds(30));
                result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
            }
            catch (OperationCanceledException)
            {
                // The README allows either: what matters here is the span.
            }
        });

        var tx = capture.SpansOn(server.Port, "smtp transaction").Should().ContainSingle("the transaction ended (cancelled after its end of data)").Subject;
        var tags = string.Join(", ", tx.TagObjects.Select(t => $"{t.Key}={t.Value}"));
        tx.GetTagItem("smtp.outcome").Should().Be("unknown", tags);
        tx.GetTagItem("error.type").Should().Be(typeof(OperationCanceledException).FullName, "the README: else the exception's type");
        tx.GetTagItem("smtp.reply.code").Should().BeNull("no reply decided it: the end of data's never came, and DATA's 354 only invited the content ({0})", tags);
        tx.Status.Should().Be(ActivityStatusCode.Error);
        capture.Sum("mailpipe.smtp.messages", ("server.port", server.Port), ("smtp.outcome", "unknown")).Should().Be(1);
    }

    [Fact]
    public async Task A_sender_disposed_with_a_message_in_flight_ends_its_spans_while_the_provider_lives()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.HoldFinalReply);
        var options = Plain(server.Port);
        options.DisposeTimeout = TimeSpan.FromMilliseconds(200);
        var name = options.Name!;
        long usedAfter = -1;
        var capture = await PeerCapture.RunAsync(async (c, flush) =>
        {
            var sender = new SmtpSender(options);
            var send = sender.SendAsync(Envelope(), Content);
            await server.EndOfDataReceived.WaitAsync(TimeSpan.FromSeconds(30));
            await sender.DisposeAsync();
            (await send.WaitAsync(TimeSpan.FromSeconds(30))).Outcome.Should().Be(SmtpSendOutcome.Unknown);
            await flush();
            usedAfter = c.Sum("mailpipe.sender.connection.count", ("mailpipe.sender.name", name), ("mailpipe.sender.connection.state", "used"));
        });

        usedAfter.Should().Be(0);
        capture.SpansOn(server.Port, "smtp transaction").Should().ContainSingle().Which.Status.Should().Be(ActivityStatusCode.Error);
        capture.SpansOn(server.Port, "smtp connection").Should().ContainSingle("the connection span ends when the sender closes it");
    }
    [Fact]
    public async Task Two_live_senders_of_one_name_report_the_sum_of_their_connections_not_the_last_ones()
    {
        // The default name is host:port: two senders to one relay (other credentials, another part of the application) share it.
        TestServers.RequireListening(TestServers.PostfixPort);
        var name = "b21-shared-" + Guid.NewGuid().ToString("N");
        long idle = -1, max = -1, pending = -1;
        await PeerCapture.RunAsync(async (c, flush) =>
        {
            var first = Plain(TestServers.PostfixPort);
            first.Name = name;
            var second = Plain(TestServers.PostfixPort);
            second.Name = name;
            second.MaxConnections = 2;
            await using var one = new SmtpSender(first);
            await using var two = new SmtpSender(second);
            (await one.SendAsync(Envelope(), Content)).IsAccepted.Should().BeTrue();
            (await two.SendAsync(Envelope(), Content)).IsAccepted.Should().BeTrue();
            while (one.GetStatistics().Idle == 0 || two.GetStatistics().Idle == 0)
            {
                await Task.Delay(10);
            }

            await flush();
            idle = c.Sum("mailpipe.sender.connection.count", ("mailpipe.sender.name", name), ("mailpipe.sender.connection.state", "idle"));
            max = c.Sum("mailpipe.sender.connection.max", ("mailpipe.sender.name", name));
            pending = c.Sum("mailpipe.sender.pending_requests", ("mailpipe.sender.name", name));
        });

        idle.Should().Be(2, "each sender holds one idle connection");
        max.Should().Be(3, "1 + 2 connections at most");
        pending.Should().Be(0);
    }
    [Fact]
    public async Task Against_a_closed_port_open_failures_and_connect_failures_equal_GetStatistics_and_no_message_is_counted()
    {
        var port = FreePort();
        var options = Plain(port);
        options.MaxConnections = 2;
        var name = options.Name!;
        SmtpSenderStatistics? statistics = null;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(options);
            var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => sender.SendAsync(Envelope(), Content)));
            results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.NotSent);
            statistics = sender.GetStatistics();
        });

        statistics!.OpenFailures.Should().BeGreaterThan(0);
        capture.Sum("mailpipe.sender.connection.open_failures", ("mailpipe.sender.name", name)).Should().Be(statistics.OpenFailures);
        capture.Sum("mailpipe.smtp.connect.failures", ("server.port", port), ("error.type", "ConnectionRefused")).Should().Be(statistics.OpenFailures);
        capture.Sum("mailpipe.smtp.messages", ("server.port", port)).Should().Be(0, "the README: no connection took them, so no transaction");
        capture.SpansOn(port, "smtp transaction").Should().BeEmpty();
        capture.SpansOn(port, "smtp connection").Should().HaveCount((int)statistics.OpenFailures).And.OnlyContain(s => Equals(s.GetTagItem("error.type"), "ConnectionRefused"));
    }
    [Fact]
    public async Task Two_hundred_callers_through_four_connections_add_up_in_spans_counts_and_GetStatistics()
    {
        TestServers.RequireListening(TestServers.SinkPort);
        var options = Plain(TestServers.SinkPort);
        options.MaxConnections = 4;
        options.MaxMessagesPerConnection = 7;
        var name = options.Name!;
        SmtpSenderStatistics? statistics = null;
        var requests = new System.Collections.Concurrent.ConcurrentDictionary<ActivitySpanId, bool>();
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        using (var meter = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics).Build())
        {
            var sender = new SmtpSender(options);
            var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(async () =>
            {
                using var request = Caller.StartActivity("b21-request")!;
                requests[request.SpanId] = true;
                return await sender.SendAsync(Envelope(), Content);
            })));
            results.Should().OnlyContain(r => r.IsAccepted);
            await sender.DisposeAsync();
            statistics = sender.GetStatistics();
            meter.ForceFlush().Should().BeTrue();
            tracer.ForceFlush().Should().BeTrue();
        }

        long Sum(string metric, Func<MetricPoint, long> value, params (string Key, object? Value)[] tags)
        {
            var last = metrics.LastOrDefault(m => m.Name == metric);
            long sum = 0;
            if (last is not null)
            {
                foreach (var point in last.GetMetricPoints())
                {
                    if (tags.All(t => PeerCapture.Has(point, t.Key, t.Value)))
                    {
                        sum += value(point);
                    }
                }
            }

            return sum;
        }

        var transactions = spans.Where(s => s.OperationName == "smtp transaction" && Equals(s.GetTagItem("server.port"), TestServers.SinkPort)).ToList();
        transactions.Should().HaveCount(200);
        transactions.Select(t => t.ParentSpanId).Should().OnlyHaveUniqueItems().And.OnlyContain(p => requests.ContainsKey(p));
        var connections = spans.Where(s => s.OperationName == "smtp connection" && Equals(s.GetTagItem("server.port"), TestServers.SinkPort)).ToList();
        connections.Should().HaveCount((int)statistics!.Opened);
        connections.Sum(c => (int)c.GetTagItem("smtp.transactions")!).Should().Be(200);
        connections.Should().OnlyContain(c => (int)c.GetTagItem("smtp.transactions")! <= 7);
        Sum("mailpipe.smtp.messages", p => p.GetSumLong(), ("server.port", TestServers.SinkPort), ("smtp.outcome", "accepted")).Should().Be(200);
        Sum("mailpipe.sender.connection.opened", p => p.GetSumLong(), ("mailpipe.sender.name", name)).Should().Be(statistics.Opened);
        Sum("mailpipe.sender.connection.discarded", p => p.GetSumLong(), ("mailpipe.sender.name", name)).Should().Be(statistics.Discarded);
        statistics.Discarded.Should().Be(statistics.Opened, "every connection was closed by the end");
        Sum("mailpipe.sender.batch.size", p => p.GetHistogramCount(), ("mailpipe.sender.name", name)).Should().Be(statistics.Batches);
        Sum("mailpipe.sender.batch.size", p => (long)p.GetHistogramSum(), ("mailpipe.sender.name", name)).Should().Be(statistics.Messages);
        statistics.Messages.Should().Be(200);
        Sum("mailpipe.smtp.transaction.duration", p => p.GetHistogramCount(), ("server.port", TestServers.SinkPort)).Should().Be(200);
        Sum("mailpipe.smtp.connection.duration", p => p.GetHistogramCount(), ("server.port", TestServers.SinkPort)).Should().Be(statistics.Opened);
    }
}
