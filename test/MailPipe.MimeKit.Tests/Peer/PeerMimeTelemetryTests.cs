using System.Diagnostics;
using System.Diagnostics.Metrics;
using MailPipe.IntegrationTests.Support;
using MimeKit;
using static MailPipe.MimeKit.Tests.Peer.PeerMimeServers;

namespace MailPipe.MimeKit.Tests.Peer;

/// <summary>
/// MailPipe.OpenTelemetry's promises for MimeMessages (content written as it goes, <c>SmtpMessage.FromWriter</c>), read
/// with the BCL's own listeners: the transaction span is a child of the caller's activity also through the pooled
/// sender, <c>smtp.message.bytes</c> and <c>mailpipe.smtp.bytes_sent</c> are the octets MimeKit wrote, and a message
/// refused before MAIL is a <c>not_sent</c> transaction with its error code.
/// </summary>
[Collection(nameof(PeerMimeTelemetryCollection))]
[Trait("Category", "Integration")]
public sealed class PeerMimeTelemetryTests
{
    private static readonly ActivitySource Caller = new("MailPipe.MimeKit.Tests.Peer");

    [Theory]
    [InlineData(Postfix, Session)]
    [InlineData(Postfix, Pool)]
    [InlineData(Aiosmtpd, Session)]
    [InlineData(Aiosmtpd, Pool)]
    public async Task A_MimeMessages_transaction_is_a_child_of_the_callers_activity_and_counts_the_octets_MimeKit_wrote(string server, string via)
    {
        var to = TestServers.UniqueRecipient("peer-mtel");
        var message = MimeTestMessages.MultipartWithAttachments(to, TestServers.UniqueRecipient("peer-mtel-cc"), TestServers.UniqueRecipient("peer-mtel-bcc"));
        var expected = MimeTestMessages.ExpectedData(message).Length;
        using var recorder = new Recorder();
        Activity? request;
        SmtpSendResult result;
        using (request = Caller.StartActivity("peer request"))
        {
            result = await SendAsync(server, via, message);
        }

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        var tx = recorder.Spans.Should().ContainSingle(s => s.OperationName == "smtp transaction" && s.TraceId == request!.TraceId).Which;
        tx.ParentSpanId.Should().Be(request!.SpanId);
        Convert.ToInt64(tx.GetTagItem("smtp.message.bytes"), System.Globalization.CultureInfo.InvariantCulture).Should().Be(expected);
        recorder.Measurements("mailpipe.smtp.bytes_sent", Port(server)).Should().Contain(expected);
    }

    [Theory]
    [InlineData(Session)]
    [InlineData(Pool)]
    public async Task A_UTF8_local_part_refused_before_MAIL_is_a_not_sent_transaction_with_ExtensionNotSupported(string via)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(new MailboxAddress("Zoë", $"zoë-{Guid.NewGuid():N}@example.test"));
        message.Subject = "peer telemetry";
        message.Body = new TextPart("plain") { Text = "x" };
        using var recorder = new Recorder();
        Activity? request;
        SmtpSendResult result;
        using (request = Caller.StartActivity("peer request"))
        {
            result = await SendAsync(Sink, via, message);
        }

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var tx = recorder.Spans.Should().ContainSingle(s => s.OperationName == "smtp transaction" && s.TraceId == request!.TraceId).Which;
        tx.GetTagItem("smtp.outcome").Should().Be("not_sent");
        tx.GetTagItem("error.type").Should().Be("ExtensionNotSupported");
        tx.Status.Should().Be(ActivityStatusCode.Error);
        recorder.Measurements("mailpipe.smtp.bytes_sent", TestServers.SinkPort).Should().BeEmpty("no end of data was written");
    }

    /// <summary>Records MailPipe's stopped activities and its long measurements with their server.port.</summary>
    private sealed class Recorder : IDisposable
    {
        private readonly ActivityListener _activities;
        private readonly MeterListener _meters = new();
        private readonly List<Activity> _spans = [];
        private readonly List<(string Name, object? Port, long Value)> _measurements = [];

        public Recorder()
        {
            _activities = new ActivityListener
            {
                ShouldListenTo = s => s.Name is "MailPipe" or "MailPipe.MimeKit.Tests.Peer",
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStopped = a =>
                {
                    lock (_spans)
                    {
                        _spans.Add(a);
                    }
                },
            };
            ActivitySource.AddActivityListener(_activities);
            _meters.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "MailPipe")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _meters.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                object? port = null;
                foreach (var tag in tags)
                {
                    port = tag.Key == "server.port" ? tag.Value : port;
                }

                lock (_measurements)
                {
                    _measurements.Add((instrument.Name, port, value));
                }
            });
            _meters.Start();
        }

        public List<Activity> Spans
        {
            get
            {
                lock (_spans)
                {
                    return [.. _spans];
                }
            }
        }

        public List<long> Measurements(string name, int port)
        {
            lock (_measurements)
            {
                return [.. _measurements.Where(m => m.Name == name && Equals(m.Port, port)).Select(m => m.Value)];
            }
        }

        public void Dispose()
        {
            _activities.Dispose();
            _meters.Dispose();
        }
    }
}

/// <summary>Process-wide listeners: these tests one at a time.</summary>
[CollectionDefinition(nameof(PeerMimeTelemetryCollection), DisableParallelization = true)]
public sealed class PeerMimeTelemetryCollection;
