using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using MailPipe.Extensions.Tests.Support;
using MailPipe.IntegrationTests.Peer;
using MailPipe.IntegrationTests.Support;
using OpenTelemetry.Metrics;
using static MailPipe.OpenTelemetry.Tests.Peer.PeerOptions;

namespace MailPipe.OpenTelemetry.Tests.Peer;

/// <summary>
/// Peer acceptance of the sender pool's instruments (in use, idle, max, pending, opened, discarded by reason, retries,
/// batch size), of a 421 (or 454) to STARTTLS or AUTH while the pool opens a connection (the connection span must say
/// why it failed), of the documented unit and type of every instrument, and of "a listener that throws".
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class PeerPoolTests
{
    private static readonly byte[] Content = "Subject: pool\r\n\r\nbody\r\n"u8.ToArray();

    private static SmtpEnvelope Envelope() => new("peer-pool@example.test", TestServers.UniqueRecipient("peer-pool"));

    private static long Gauge(PeerCapture capture, string name, string sender, params (string Key, object? Value)[] tags) =>
        capture.Sum(name, [("mailpipe.sender.name", sender), .. tags]);

    [Fact]
    public async Task While_a_message_is_held_the_connection_counts_as_used_a_second_as_pending_and_after_its_caller_cancels_as_none()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.HoldFinalReply);
        var options = Plain(server.Port);
        options.MaxBatchSize = 1;
        options.DisposeTimeout = TimeSpan.FromMilliseconds(100);
        var name = options.Name!;
        long used = -1, idle = -1, pending = -1, max = -1, pendingAfterCancel = -1;
        await PeerCapture.RunAsync(async (c, flush) =>
        {
            await using var sender = new SmtpSender(options);
            var held = sender.SendAsync(Envelope(), Content);
            await server.EndOfDataReceived.WaitAsync(TimeSpan.FromSeconds(30));
            using var cts = new CancellationTokenSource();
            var waiting = sender.SendAsync(Envelope(), Content, cts.Token);
            while (sender.GetStatistics().PendingRequests == 0)
            {
                await Task.Yield();
            }

            await flush();
            used = Gauge(c, "mailpipe.sender.connection.count", name, ("mailpipe.sender.connection.state", "used"));
            idle = Gauge(c, "mailpipe.sender.connection.count", name, ("mailpipe.sender.connection.state", "idle"));
            pending = Gauge(c, "mailpipe.sender.pending_requests", name);
            max = Gauge(c, "mailpipe.sender.connection.max", name);
            await cts.CancelAsync();
            var cancelled = () => waiting;
            await cancelled.Should().ThrowAsync<OperationCanceledException>();
            await flush();
            pendingAfterCancel = Gauge(c, "mailpipe.sender.pending_requests", name);
            await server.DisposeAsync();
            (await held.WaitAsync(TimeSpan.FromSeconds(30))).Outcome.Should().Be(SmtpSendOutcome.Unknown, "the connection was lost after the end of data");
        });

        used.Should().Be(1);
        idle.Should().Be(0);
        pending.Should().Be(1, "MaxConnections 1, MaxBatchSize 1: the second message waits");
        max.Should().Be(1);
        pendingAfterCancel.Should().Be(0, "a waiting message whose caller cancels leaves the queue there and then");
    }

    [Fact]
    public async Task After_a_send_the_connection_is_idle_opened_once_and_discarded_as_disposed_with_the_sender()
    {
        var options = Plain(TestServers.PostfixPort);
        var name = options.Name!;
        long idle = -1, used = -1, opened = -1, batches = -1, idleAfter = -1;
        var capture = await PeerCapture.RunAsync(async (c, flush) =>
        {
            var sender = new SmtpSender(options);
            (await sender.SendAsync(Envelope(), Content)).IsAccepted.Should().BeTrue();
            while (sender.GetStatistics().Idle == 0)
            {
                // The result may reach the caller just before the connection is back in the pool.
                await Task.Yield();
            }

            await flush();
            idle = Gauge(c, "mailpipe.sender.connection.count", name, ("mailpipe.sender.connection.state", "idle"));
            used = Gauge(c, "mailpipe.sender.connection.count", name, ("mailpipe.sender.connection.state", "used"));
            opened = Gauge(c, "mailpipe.sender.connection.opened", name);
            batches = Gauge(c, "mailpipe.sender.batch.size", name);
            await sender.DisposeAsync();
            await flush();
            idleAfter = Gauge(c, "mailpipe.sender.connection.count", name, ("mailpipe.sender.connection.state", "idle"));
        });

        idleAfter.Should().Be(0, "the connection was closed with the sender: its series must not keep the last value");
        idle.Should().Be(1);
        used.Should().Be(0);
        opened.Should().Be(1);
        batches.Should().Be(1, "one batch (of one message) was recorded");
        Gauge(capture, "mailpipe.sender.connection.discarded", name, ("mailpipe.sender.connection.discard_reason", "disposed")).Should().Be(1);
    }

    [Fact]
    public async Task MaxMessagesPerConnection_discards_with_reason_max_messages_and_opens_anew()
    {
        var options = Plain(TestServers.PostfixPort);
        options.MaxMessagesPerConnection = 1;
        var name = options.Name!;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(options);
            for (var i = 0; i < 3; i++)
            {
                (await sender.SendAsync(Envelope(), Content)).IsAccepted.Should().BeTrue();
            }
        });

        Gauge(capture, "mailpipe.sender.connection.opened", name).Should().Be(3);
        Gauge(capture, "mailpipe.sender.connection.discarded", name, ("mailpipe.sender.connection.discard_reason", "max_messages")).Should().BeGreaterThanOrEqualTo(2);
        capture.SpansOn(TestServers.PostfixPort, "smtp connection").Should().HaveCount(3).And.OnlyContain(s => Equals(s.GetTagItem("smtp.transactions"), 1));
    }

    [Fact]
    public async Task A_content_writer_that_fails_midway_on_a_DATA_server_discards_the_connection_as_transaction_aborted()
    {
        var options = Plain(TestServers.AiosmtpdPort);
        var name = options.Name!;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(options);
            var message = SmtpMessage.FromWriter(Envelope(), async (stream, ct) =>
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes("Subject: broken\r\n\r\n" + new string('x', 200_000) + "\r\n"), ct);
                await stream.FlushAsync(ct);
                throw new IOException("peer writer broke");
            });
            var result = await sender.SendAsync(message);
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
            (await sender.SendAsync(Envelope(), Content)).IsAccepted.Should().BeTrue("the next message goes on a fresh connection");
        });

        Gauge(capture, "mailpipe.sender.connection.discarded", name, ("mailpipe.sender.connection.discard_reason", "transaction_aborted")).Should().Be(1);
        Gauge(capture, "mailpipe.sender.connection.opened", name).Should().Be(2);
        var failed = capture.SpansOn(TestServers.AiosmtpdPort, "smtp transaction").Should().Contain(s => Equals(s.GetTagItem("smtp.outcome"), "not_sent")).Which;
        failed.GetTagItem("error.type").Should().Be("ContentReadFailed");
        failed.Status.Should().Be(ActivityStatusCode.Error);
        capture.Sum("mailpipe.smtp.messages", ("server.port", TestServers.AiosmtpdPort), ("smtp.outcome", "not_sent"), ("error.type", "ContentReadFailed")).Should().Be(1);
    }

    [Fact]
    public async Task A_connection_lost_after_the_end_of_data_is_unknown_on_the_span_and_discarded_as_broken()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.CloseAfterEndOfData);
        var options = Plain(server.Port);
        var name = options.Name!;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(options);
            (await sender.SendAsync(Envelope(), Content)).Outcome.Should().Be(SmtpSendOutcome.Unknown);
        });

        var tx = capture.SpansOn(server.Port, "smtp transaction").Should().ContainSingle().Which;
        tx.GetTagItem("smtp.outcome").Should().Be("unknown");
        tx.GetTagItem("error.type").Should().NotBeNull();
        tx.Status.Should().Be(ActivityStatusCode.Error);
        Gauge(capture, "mailpipe.sender.connection.discarded", name, ("mailpipe.sender.connection.discard_reason", "broken")).Should().Be(1);
        capture.Sum("mailpipe.sender.retries", ("mailpipe.sender.name", name)).Should().Be(0, "Unknown is never retried");
    }

    [Fact]
    public async Task A_connection_dropped_at_MAIL_is_retried_once_on_a_fresh_connection_and_counted_in_retries()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.DropFirstConnectionAtMail);
        var options = Plain(server.Port);
        var name = options.Name!;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(options);
            var result = await sender.SendAsync(Envelope(), Content);
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
            result.Attempts.Should().Be(2);
        });

        capture.Sum("mailpipe.sender.retries", ("mailpipe.sender.name", name)).Should().Be(1);
        Gauge(capture, "mailpipe.sender.connection.opened", name).Should().Be(2);
        Gauge(capture, "mailpipe.sender.connection.discarded", name, ("mailpipe.sender.connection.discard_reason", "broken")).Should().Be(1);
    }

    public static TheoryData<string, string> RefusedSteps => new()
    {
        { "STARTTLS", "421 4.3.2 peer.scripted shutting down" },
        { "STARTTLS", "454 4.7.0 TLS not available due to local problem" },
        { "AUTH", "421 4.3.2 peer.scripted shutting down" },
        { "AUTH", "454 4.7.0 Temporary authentication failure" },
    };

    [Theory]
    [MemberData(nameof(RefusedSteps))]
    public async Task A_refusal_of_STARTTLS_or_AUTH_while_the_pool_opens_a_connection_sets_error_type_on_the_connection_span(string step, string reply)
    {
        const string Password = "Peer-Scripted-Secret-55";
        var code = reply[..3];
        await using var server = new LineServer(async (c, ct) =>
        {
            await c.SendAsync("220 peer.scripted ESMTP", ct);
            await c.ExpectAsync("EHLO", ct);
            await c.SendAsync(step == "STARTTLS" ? "250-peer.scripted\r\n250 STARTTLS" : "250-peer.scripted\r\n250 AUTH PLAIN", ct);
            await c.ExpectAsync(step, ct);
            await c.SendAsync(reply, ct);
        });
        var options = step == "STARTTLS" ? Tls(server.Port, SmtpTlsMode.StartTlsRequired) : Plain(server.Port);
        if (step == "AUTH")
        {
            options.Credentials = new NetworkCredential("peer-user", Password);
        }

        SmtpSendResult? result = null;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(options);
            result = await sender.SendAsync(Envelope(), Content);
        });

        result!.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var connection = capture.SpansOn(server.Port, "smtp connection").Should().ContainSingle().Which;
        var tags = string.Join(", ", connection.TagObjects.Select(t => $"{t.Key}={t.Value}"));
        connection.GetTagItem("error.type").Should().NotBeNull("the connection failed to open ({0}); tags: {1}", result.Exception?.Message, tags);
        connection.Status.Should().Be(ActivityStatusCode.Error);
        if (code == "421")
        {
            connection.GetTagItem("error.type").Should().Be("421", "as for a 421 greeting or EHLO: the reply that refused the session");
        }

        connection.GetTagItem("error.type").Should().Be(code == "421" ? "421" : step == "AUTH" ? "AuthenticationError" : "StartTlsNotOffered");
        if (step == "AUTH")
        {
            var child = capture.SpansOn(server.Port, "smtp auth").Should().ContainSingle().Which;
            child.Status.Should().Be(ActivityStatusCode.Error);
            child.GetTagItem("error.type").Should().Be(code, "a refusal has error.type = the reply code");
            capture.Sum("mailpipe.smtp.auth.failures", ("server.port", server.Port), ("error.type", code)).Should().Be(1);
            capture.TelemetryTexts().Should().NotContain(t => t.Contains(Password, StringComparison.Ordinal));
        }
        else
        {
            // A refused STARTTLS is a TLS failure: the tls span and mailpipe.smtp.tls.failures carry its reply code.
            var tls = capture.SpansOn(server.Port, "smtp tls").Should().ContainSingle().Which;
            tls.GetTagItem("error.type").Should().Be(code);
            tls.GetTagItem("smtp.reply.code").Should().Be(int.Parse(code, System.Globalization.CultureInfo.InvariantCulture));
            tls.Status.Should().Be(ActivityStatusCode.Error);
            capture.Sum("mailpipe.smtp.tls.failures", ("server.port", server.Port), ("error.type", code)).Should().Be(1);
        }

        capture.Sum("mailpipe.sender.connection.open_failures", ("mailpipe.sender.name", options.Name)).Should().Be(1);
    }

    public static TheoryData<string, string, MetricType> Instruments => new()
    {
        { "mailpipe.smtp.messages", "{message}", MetricType.LongSum },
        { "mailpipe.smtp.recipients", "{recipient}", MetricType.LongSum },
        { "mailpipe.smtp.bytes_sent", "By", MetricType.LongSum },
        { "mailpipe.smtp.transaction.duration", "s", MetricType.Histogram },
        { "mailpipe.smtp.connection.duration", "s", MetricType.Histogram },
        { "mailpipe.smtp.connect.duration", "s", MetricType.Histogram },
        { "mailpipe.smtp.tls.duration", "s", MetricType.Histogram },
        { "mailpipe.smtp.auth.duration", "s", MetricType.Histogram },
        { "mailpipe.smtp.connect.failures", "{connection}", MetricType.LongSum },
        { "mailpipe.smtp.tls.failures", "{connection}", MetricType.LongSum },
        { "mailpipe.smtp.auth.failures", "{connection}", MetricType.LongSum },
        { "mailpipe.sender.connection.count", "{connection}", MetricType.LongSumNonMonotonic },
        { "mailpipe.sender.connection.max", "{connection}", MetricType.LongSumNonMonotonic },
        { "mailpipe.sender.pending_requests", "{message}", MetricType.LongSumNonMonotonic },
        { "mailpipe.sender.connection.opened", "{connection}", MetricType.LongSum },
        { "mailpipe.sender.connection.open_failures", "{connection}", MetricType.LongSum },
        { "mailpipe.sender.connection.discarded", "{connection}", MetricType.LongSum },
        { "mailpipe.sender.retries", "{message}", MetricType.LongSum },
        { "mailpipe.sender.batch.size", "{message}", MetricType.Histogram },
    };

    [Theory]
    [MemberData(nameof(Instruments))]
    public async Task Every_instrument_has_its_documented_unit_type_and_dimensions(string name, string unit, MetricType type)
    {
        var capture = await EveryInstrument.Value;

        var metric = capture.Last(name);
        metric.Should().NotBeNull($"{name} was recorded by the scenarios");
        metric!.Unit.Should().Be(unit);
        metric.MetricType.Should().Be(type);
        metric.MeterName.Should().Be("MailPipe");
        string[] server = ["server.address", "server.port"];
        string[] allowed = name switch
        {
            "mailpipe.smtp.messages" or "mailpipe.smtp.transaction.duration" => [.. server, "smtp.outcome", "error.type"],
            "mailpipe.smtp.recipients" => [.. server, "smtp.recipient.status"],
            "mailpipe.smtp.bytes_sent" or "mailpipe.smtp.connection.duration" => server,
            _ when name.StartsWith("mailpipe.smtp.", StringComparison.Ordinal) => [.. server, "error.type"],
            "mailpipe.sender.connection.count" => ["mailpipe.sender.name", "mailpipe.sender.connection.state"],
            "mailpipe.sender.connection.discarded" => ["mailpipe.sender.name", "mailpipe.sender.connection.discard_reason"],
            _ => ["mailpipe.sender.name"],
        };
        foreach (var point in metric.MetricPoints)
        {
            var keys = PeerCapture.Tags(point).Keys.ToList();
            keys.Should().BeSubsetOf(allowed, name);
            keys.Should().Contain(allowed.Where(k => k != "error.type"), name);
            if (name.EndsWith(".failures", StringComparison.Ordinal))
            {
                keys.Should().Contain("error.type");
            }
        }
    }

    private static readonly Lazy<Task<PeerCapture>> EveryInstrument = new(() => PeerCapture.RunAsync(async (c, flush) =>
    {
        // Accepted + refused + TLS + AUTH on 2525; a closed port; an untrusted certificate; a refused AUTH; a retry.
        var good = Tls(TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired);
        good.Credentials = new NetworkCredential(TestServers.User, TestServers.Password);
        await using (var sender = new SmtpSender(good))
        {
            await sender.SendAsync(Envelope(), Content);
            await sender.SendAsync(new SmtpEnvelope("peer-pool@example.test", "tempfail@example.test"), Content);
            await flush();
        }

        await using (var sender = new SmtpSender(Plain(FreePort())))
        {
            await sender.SendAsync(Envelope(), Content);
        }

        var untrusted = Plain(TestServers.PostfixTlsPort);
        untrusted.TlsMode = SmtpTlsMode.Implicit;
        await using (var sender = new SmtpSender(untrusted))
        {
            await sender.SendAsync(Envelope(), Content);
        }

        var badAuth = Plain(TestServers.PostfixPort);
        badAuth.Credentials = new NetworkCredential(TestServers.User, "wrong-peer-pass");
        await using (var sender = new SmtpSender(badAuth))
        {
            await sender.SendAsync(Envelope(), Content);
        }

        await using (var server = new PeerScriptedServer(PeerScriptedServer.Mode.DropFirstConnectionAtMail))
        await using (var sender = new SmtpSender(Plain(server.Port)))
        {
            await sender.SendAsync(Envelope(), Content);
        }
    }));

    [Theory]
    [InlineData("started")]
    [InlineData("stopped")]
    [InlineData("measurement")]
    public async Task A_listener_that_throws_changes_no_send(string where)
    {
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == "MailPipe",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = _ => Throw(where == "started", "peer listener started"),
            ActivityStopped = _ => Throw(where == "stopped", "peer listener stopped"),
        };
        ActivitySource.AddActivityListener(listener);
        using var meterListener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "MailPipe" && where == "measurement")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        meterListener.SetMeasurementEventCallback<long>((_, _, _, _) => throw new InvalidOperationException("peer measurement"));
        meterListener.SetMeasurementEventCallback<double>((_, _, _, _) => throw new InvalidOperationException("peer measurement"));
        meterListener.SetMeasurementEventCallback<int>((_, _, _, _) => throw new InvalidOperationException("peer measurement"));
        meterListener.Start();
        var recipient = TestServers.UniqueRecipient("peer-throwing");
        await using var sender = new SmtpSender(Plain(TestServers.PostfixPort));

        var result = await sender.SendAsync(new SmtpEnvelope("peer-pool@example.test", recipient), Content).WaitAsync(TimeSpan.FromSeconds(60));
        var second = await sender.SendAsync(Envelope(), Content).WaitAsync(TimeSpan.FromSeconds(60));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        second.Outcome.Should().Be(SmtpSendOutcome.Accepted, second.ToString());
        (await Maildir.WaitForPostfixAsync(recipient)).Should().ContainSingle();
    }

    private static void Throw(bool when, string message)
    {
        if (when)
        {
            throw new InvalidOperationException(message);
        }
    }
}
