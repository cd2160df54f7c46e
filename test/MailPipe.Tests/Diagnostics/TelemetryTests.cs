using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using MailPipe.Tests.Pooling;

namespace MailPipe.Tests.Diagnostics;

/// <summary>The "MailPipe" ActivitySource and Meter as a listener sees them (#13).</summary>
[Collection(nameof(TelemetryCollection))]
public sealed class TelemetryTests
{
    [Fact]
    public async Task One_send_gives_a_root_connection_span_a_connect_child_and_a_transaction_under_the_caller_linked_to_the_connection()
    {
        await using var server = new LoopbackSmtpServer();
        using var capture = new Capture();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        SmtpSendResult result;
        using var caller = new Activity("caller").Start();
        await using (var sender = new SmtpSender(options))
        {
            result = await sender.SendAsync(PoolTestMessages.Create("otel", 1).Message);
        }

        caller.Stop();
        result.IsAccepted.Should().BeTrue();
        var connection = capture.Single(MailPipeTelemetry.ConnectionSpan, server.Port);
        connection.Parent.Should().BeNull("a connection outlives the request that opened it: a root span");
        connection.ParentSpanId.Should().Be(default(ActivitySpanId));
        connection.TraceId.Should().NotBe(caller.TraceId);
        connection.GetTagItem("server.address").Should().Be("127.0.0.1");
        connection.GetTagItem("network.protocol.name").Should().Be("smtp");
        connection.GetTagItem("network.peer.address").Should().Be("127.0.0.1");

        var connect = capture.Single(MailPipeTelemetry.ConnectSpan, server.Port);
        connect.ParentSpanId.Should().Be(connection.SpanId);
        connect.Status.Should().Be(ActivityStatusCode.Unset);

        var tx = capture.Single(MailPipeTelemetry.TransactionSpan, server.Port);
        tx.ParentSpanId.Should().Be(caller.SpanId);
        tx.TraceId.Should().Be(caller.TraceId);
        tx.Kind.Should().Be(ActivityKind.Client);
        tx.Links.Select(l => l.Context.SpanId).Should().Equal(connection.SpanId);
        tx.GetTagItem("server.port").Should().Be(server.Port);
        tx.GetTagItem("smtp.outcome").Should().Be("accepted");
        tx.GetTagItem("smtp.reply.code").Should().Be(250);
        tx.GetTagItem("smtp.recipients").Should().Be(1);
        tx.GetTagItem("smtp.recipients.accepted").Should().Be(1);
        tx.GetTagItem("smtp.recipients.refused").Should().Be(0);
        tx.GetTagItem("smtp.transfer").Should().Be("BDAT");
        ((int)tx.GetTagItem("smtp.round_trips")!).Should().BePositive();
        ((long)tx.GetTagItem("smtp.message.bytes")!).Should().BeGreaterThan(1024);
        tx.GetTagItem("error.type").Should().BeNull();

        capture.Sum("mailpipe.smtp.messages", server.Port, ("smtp.outcome", "accepted")).Should().Be(1);
        capture.Sum("mailpipe.smtp.recipients", server.Port, ("smtp.recipient.status", "accepted")).Should().Be(1);
        capture.Sum("mailpipe.smtp.bytes_sent", server.Port).Should().Be((long)tx.GetTagItem("smtp.message.bytes")!);
        capture.Count("mailpipe.smtp.transaction.duration", server.Port).Should().Be(1);
        capture.Count("mailpipe.smtp.connect.duration", server.Port).Should().Be(1);
        capture.Count("mailpipe.smtp.connection.duration", server.Port).Should().Be(1, "the connection closed at disposal");
        capture.Count("mailpipe.smtp.connect.failures", server.Port).Should().Be(0);
    }

    [Fact]
    public async Task A_refused_connect_is_a_failed_connect_span_and_a_failure_by_error_type()
    {
        using var capture = new Capture();
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }

        await using var session = new AsyncSmtpSession();
        var connecting = () => session.ConnectAsync("127.0.0.1", port);
        (await connecting.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        var connect = capture.Single(MailPipeTelemetry.ConnectSpan, port);
        connect.Status.Should().Be(ActivityStatusCode.Error);
        connect.GetTagItem("error.type").Should().Be("ConnectionRefused");
        capture.Single(MailPipeTelemetry.ConnectionSpan, port).GetTagItem("error.type").Should().Be("ConnectionRefused");
        capture.Sum("mailpipe.smtp.connect.failures", port, ("error.type", "ConnectionRefused")).Should().Be(1);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task No_tag_event_link_baggage_or_dimension_holds_a_local_part_or_an_at_sign_unless_opted_in(bool logAddresses)
    {
        await using var server = new LoopbackSmtpServer();
        using var capture = new Capture();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.Session = new SmtpSessionOptions { LogAddresses = logAddresses };
        const string From = "zqxfromlocalpart";
        const string To = "zqxrcptlocalpart";
        var content = Encoding.ASCII.GetBytes($"From: {From}@example.test\r\nTo: {To}@example.test\r\nSubject: zqxsubject\r\n\r\nHello.\r\n");
        using var caller = new Activity("caller").Start();
        await using (var sender = new SmtpSender(options))
        {
            (await sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope($"{From}@example.test", $"{To}@example.test", $"{To}2@example.test"), content))).IsAccepted.Should().BeTrue();
        }

        caller.Stop();
        var spans = capture.Activities.Where(a => Equals(a.GetTagItem("server.port"), server.Port)).ToList();
        spans.Select(a => a.OperationName).Should().Contain([MailPipeTelemetry.ConnectionSpan, MailPipeTelemetry.ConnectSpan, MailPipeTelemetry.TransactionSpan]);
        var texts = new List<string>();
        foreach (var span in spans)
        {
            texts.Add(span.DisplayName);
            texts.AddRange(span.TagObjects.Select(t => $"{t.Key}={t.Value}"));
            texts.AddRange(span.Events.SelectMany(e => e.Tags.Select(t => $"{e.Name} {t.Key}={t.Value}").Append(e.Name)));
            texts.AddRange(span.Links.SelectMany(l => (l.Tags ?? []).Select(t => $"{t.Key}={t.Value}")));
            texts.AddRange(span.Baggage.Select(b => $"{b.Key}={b.Value}"));
        }

        var dimensions = capture.Measurements.SelectMany(m => m.Tags.Select(t => $"{m.Instrument}: {t.Key}={t.Value}")).ToList();
        dimensions.Should().NotBeEmpty();
        dimensions.Should().NotContain(d => d.Contains('@') || d.Contains("zqx"), "metric dimensions never name an address, opted in or not");
        if (logAddresses)
        {
            var tx = spans.Single(a => a.OperationName == MailPipeTelemetry.TransactionSpan);
            tx.GetTagItem("smtp.mail_from").Should().Be($"{From}@example.test");
            tx.GetTagItem("smtp.rcpt_to").Should().Be($"{To}@example.test,{To}2@example.test");
        }
        else
        {
            texts.Should().NotContain(t => t.Contains('@') || t.Contains("zqx", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Callers_coalesced_into_one_batch_each_find_their_transaction_span_under_their_own_activity()
    {
        await using var server = new LoopbackSmtpServer { DataDelay = TimeSpan.FromMilliseconds(300) };
        using var capture = new Capture();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        await using var sender = new SmtpSender(options);

        // The first caller's transaction holds the only connection (DataDelay); the next ones queue and go together.
        var callers = new List<(Activity Activity, Task<SmtpSendResult> Send)>();
        for (var i = 0; i < 6; i++)
        {
            var activity = new Activity("caller-" + i).Start();
            callers.Add((activity, sender.SendAsync(PoolTestMessages.Create("coalesce", i).Message)));
            activity.Stop(); // Activity.Current back to none: the next caller is a sibling, not a child
            if (i == 0)
            {
                await server.WaitUntilAsync(s => s.Connections == 1);
                await Task.Delay(50);
            }
        }

        foreach (var (_, send) in callers)
        {
            (await send).IsAccepted.Should().BeTrue();
        }

        sender.GetStatistics().Batches.Should().BeLessThan(callers.Count, "waiting callers were coalesced into one batch");
        var transactions = capture.Activities.Where(a => a.OperationName == MailPipeTelemetry.TransactionSpan && Equals(a.GetTagItem("server.port"), server.Port)).ToList();
        transactions.Should().HaveCount(callers.Count);
        foreach (var (activity, _) in callers)
        {
            transactions.Should().ContainSingle(t => t.ParentSpanId == activity.SpanId && t.TraceId == activity.TraceId, $"{activity.OperationName}'s transaction is under it");
        }

        await sender.DisposeAsync(); // the connection span ends with the connection
        var connection = capture.Single(MailPipeTelemetry.ConnectionSpan, server.Port);
        transactions.Should().OnlyContain(t => t.Links.Single().Context.SpanId == connection.SpanId);
    }

    [Fact]
    public async Task A_session_batch_puts_every_transaction_under_the_caller_not_under_the_previous_transaction()
    {
        await using var server = new LoopbackSmtpServer();
        using var capture = new Capture();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync("127.0.0.1", server.Port, SmtpTlsMode.None, "client.test");
        using var caller = new Activity("caller").Start();
        var results = await session.SendBatchAsync([.. Enumerable.Range(0, 4).Select(i => PoolTestMessages.Create("chain", i).Message)]);
        Activity.Current.Should().BeSameAs(caller, "a transaction span never stays in Activity.Current");
        caller.Stop();
        results.Should().OnlyContain(r => r.IsAccepted);
        var transactions = capture.Activities.Where(a => a.OperationName == MailPipeTelemetry.TransactionSpan && Equals(a.GetTagItem("server.port"), server.Port)).ToList();
        transactions.Should().HaveCount(4).And.OnlyContain(t => t.ParentSpanId == caller.SpanId);
    }

    [Fact]
    public async Task Without_listeners_no_span_is_made_and_a_send_works()
    {
        await using var server = new LoopbackSmtpServer();
        await using var session = new AsyncSmtpSession();
        MailPipeTelemetry.Source.HasListeners().Should().BeFalse("no listener in this collection's other tests is alive");
        await session.ConnectAsync("127.0.0.1", server.Port, SmtpTlsMode.None, "client.test");
        session.TelemetryConnection.Should().BeNull();
        (await session.SendAsync(PoolTestMessages.Create("quiet", 1).Message)).IsAccepted.Should().BeTrue();
    }

    [Fact]
    public void Without_listeners_the_telemetry_entry_points_allocate_nothing()
    {
        using var session = new AsyncSmtpSession();
        var message = PoolTestMessages.Create("alloc", 1).Message;
        var tx = new MailTransaction(message);
        var result = SmtpSendResult.Accepted(message.Envelope);
        var parent = default(ActivityContext);
        void Run()
        {
            SessionTelemetry.StartTransaction(session, tx, chunking: true);
            tx.StopTelemetry(result);
            using var tls = SessionTelemetry.StartTls(session);
            SessionTelemetry.Attached(session, null, "127.0.0.1");
            SessionTelemetry.ConnectionEnded(session);
            _ = MailPipeTelemetry.WithParent(message, parent);
            parent = MailPipeTelemetry.CaptureParent();
        }

        Run(); // the session's instrument set is looked up once
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            Run();
        }

        (GC.GetAllocatedBytesForCurrentThread() - before).Should().Be(0);
        tx.Telemetry.Should().BeNull();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_send_cancelled_inside_its_content_ends_its_transaction_span_as_not_sent_with_an_error(bool chunking)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        using var capture = new Capture();
        var started = new ConcurrentBag<Activity>();
        using var starts = new ActivityListener
        {
            ShouldListenTo = s => s.Name == MailPipeDiagnostics.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = started.Add,
        };
        ActivitySource.AddActivityListener(starts);
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync("127.0.0.1", server.Port, SmtpTlsMode.None, "client.test");
        using var cts = new CancellationTokenSource();
        var message = SmtpMessage.FromWriter(PoolTestMessages.Create("cancel", 1).Message.Envelope, async (stream, ct) =>
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes("Subject: cancelled\r\n\r\n" + new string('x', 40_000) + "\r\n"), ct);
            await cts.CancelAsync();
            ct.ThrowIfCancellationRequested();
        });

        var sending = () => session.SendAsync(message, cts.Token);

        await sending.Should().ThrowAsync<OperationCanceledException>();
        var transactions = started.Where(a => a.OperationName == MailPipeTelemetry.TransactionSpan && Equals(a.GetTagItem("server.port"), server.Port)).ToList();
        transactions.Should().ContainSingle();
        var tx = transactions[0];
        tx.IsStopped.Should().BeTrue("a transaction span is always ended, a cancelled one too");
        tx.Status.Should().Be(ActivityStatusCode.Error);
        tx.GetTagItem("smtp.outcome").Should().Be("not_sent");
        tx.GetTagItem("error.type").Should().NotBeNull();
        capture.Sum("mailpipe.smtp.messages", server.Port, ("smtp.outcome", "not_sent")).Should().Be(1);
    }

    [Fact]
    public async Task A_connection_closed_before_its_greeting_ends_the_connection_span_with_an_error()
    {
        // TCP is up, but the server closes before any greeting: the connection failed to open (README: error.type on
        // the connection span when the connection failed to open).
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        var closing = Task.Run(async () =>
        {
            using var peer = await listener.AcceptTcpClientAsync();
        });
        using var capture = new Capture();
        await using var session = new AsyncSmtpSession();

        var connecting = () => session.ConnectAsync("127.0.0.1", port);

        await connecting.Should().ThrowAsync<SmtpException>();
        await closing;
        var connection = capture.Single(MailPipeTelemetry.ConnectionSpan, port);
        connection.Status.Should().Be(ActivityStatusCode.Error);
        connection.GetTagItem("error.type").Should().NotBeNull();
    }

    [Fact]
    public async Task A_failed_implicit_TLS_handshake_ends_the_connection_span_with_an_error()
    {
        // The server answers the ClientHello in plain text: implicit TLS fails, so the connection failed to open.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        var plain = Task.Run(async () =>
        {
            using var peer = await listener.AcceptTcpClientAsync();
            var stream = peer.GetStream();
            await stream.WriteAsync("220 plain text, not TLS\r\n"u8.ToArray());
            var buffer = new byte[4096];
            while (await stream.ReadAsync(buffer) > 0)
            {
            }
        });
        using var capture = new Capture();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync("127.0.0.1", port, waitForGreeting: false);

        var handshake = () => session.ConnectTlsAsync("localhost", waitForGreeting: true);

        (await handshake.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.TlsHandshakeFailed);
        await plain.WaitAsync(TimeSpan.FromSeconds(10));
        var connection = capture.Single(MailPipeTelemetry.ConnectionSpan, port);
        connection.Status.Should().Be(ActivityStatusCode.Error);
        connection.GetTagItem("error.type").Should().NotBeNull();
    }

    [Fact]
    public async Task A_send_cancelled_after_its_end_of_data_ends_its_transaction_span_as_unknown()
    {
        var endOfDataRead = new TaskCompletionSource();
        var script = Sending.SendScripts.Script(
                Sending.SendScripts.Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go ahead")
            .Then(Sending.SendScripts.DataLines("Subject: x\r\n\r\nbody\r\n"))
            .Signal(endOfDataRead)
            .ExpectClosed();
        await using var server = MailPipe.Tests.Support.ScriptedSmtpServer.Start(script);
        using var capture = new Capture();
        using var session = await Sending.SendScripts.ConnectedAsync(server);
        using var caller = new Activity("caller").Start();
        using var cts = new CancellationTokenSource();

        var send = session.SendAsync(Sending.SendScripts.Envelope("one@example.test"), Encoding.ASCII.GetBytes("Subject: x\r\n\r\nbody\r\n"), cts.Token);
        await endOfDataRead.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();

        await send.Invoking(async s => await s).Should().ThrowAsync<SmtpOutcomeUnknownException>();
        caller.Stop();
        await server.WaitAsync();
        var tx = capture.Activities.Should().ContainSingle(a => a.OperationName == MailPipeTelemetry.TransactionSpan && a.ParentSpanId == caller.SpanId).Subject;
        tx.GetTagItem("smtp.outcome").Should().Be("unknown");
        tx.Status.Should().Be(ActivityStatusCode.Error);
        tx.GetTagItem("error.type").Should().NotBeNull();
    }

    /// <summary>Collects the MailPipe spans and measurements of one test.</summary>
    internal sealed class Capture : IDisposable
    {
        private readonly ActivityListener _activities;
        private readonly MeterListener _meters = new();

        public Capture()
        {
            _activities = new ActivityListener
            {
                ShouldListenTo = s => s.Name == MailPipeDiagnostics.ActivitySourceName,
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStopped = a => Activities.Add(a),
            };
            ActivitySource.AddActivityListener(_activities);
            _meters.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == MailPipeDiagnostics.MeterName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _meters.SetMeasurementEventCallback<long>((i, v, t, _) => Add(i, v, t));
            _meters.SetMeasurementEventCallback<int>((i, v, t, _) => Add(i, v, t));
            _meters.SetMeasurementEventCallback<double>((i, v, t, _) => Add(i, v, t));
            _meters.Start();
        }

        public ConcurrentBag<Activity> Activities { get; } = [];

        public ConcurrentBag<(string Instrument, double Value, KeyValuePair<string, object?>[] Tags)> Measurements { get; } = [];

        public Activity Single(string name, int port) =>
            Activities.Should().ContainSingle(a => a.OperationName == name && Equals(a.GetTagItem("server.port"), port)).Subject;

        public double Sum(string instrument, int port, params (string Key, object Value)[] tags) =>
            Of(instrument, port, tags).Sum(m => m.Value);

        public int Count(string instrument, int port, params (string Key, object Value)[] tags) => Of(instrument, port, tags).Count();

        public void Dispose()
        {
            _activities.Dispose();
            _meters.Dispose();
        }

        private IEnumerable<(string Instrument, double Value, KeyValuePair<string, object?>[] Tags)> Of(string instrument, int port, (string Key, object Value)[] tags) =>
            Measurements.Where(m => m.Instrument == instrument
                && m.Tags.Any(t => t.Key == "server.port" && Equals(t.Value, port))
                && tags.All(w => m.Tags.Any(t => t.Key == w.Key && Equals(t.Value, w.Value))));

        private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags) =>
            Measurements.Add((instrument.Name, value, tags.ToArray()));
    }
}

/// <summary>The telemetry tests attach process-wide listeners: they run one at a time.</summary>
[CollectionDefinition(nameof(TelemetryCollection), DisableParallelization = true)]
public sealed class TelemetryCollection;
