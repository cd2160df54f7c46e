using System.Diagnostics;
using System.Net;
using MailPipe.IntegrationTests.Support;
using static MailPipe.OpenTelemetry.Tests.Peer.PeerOptions;

namespace MailPipe.OpenTelemetry.Tests.Peer;

/// <summary>
/// More of the pool's telemetry: a credentials provider that throws fails the connection's span and counts an open
/// failure (the message has no transaction), and <c>mailpipe.sender.batch.size</c> adds up to the messages sent.
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class PeerPoolEdgeTests
{
    private static readonly byte[] Content = "Subject: edge\r\n\r\nbody\r\n"u8.ToArray();

    [Fact]
    public async Task A_credentials_provider_that_throws_fails_the_connection_span_and_counts_an_open_failure()
    {
        var port = TestServers.PostfixPort;
        var options = Tls(port, SmtpTlsMode.StartTlsRequired);
        options.CredentialsProvider = _ => throw new HttpRequestException("peer vault unreachable");
        SmtpSendResult? result = null;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(options);
            result = await sender.SendAsync(new SmtpEnvelope("peer-edge@example.test", TestServers.UniqueRecipient("peer-edge")), Content);
        });

        result!.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        var connection = capture.SpansOn(port, "smtp connection").Should().ContainSingle().Which;
        connection.GetTagItem("error.type").Should().Be("AuthenticationError");
        connection.Status.Should().Be(ActivityStatusCode.Error);
        capture.SpansOn(port, "smtp transaction").Should().BeEmpty();
        capture.Sum("mailpipe.sender.connection.open_failures", ("mailpipe.sender.name", options.Name)).Should().Be(1);
        capture.Sum("mailpipe.sender.connection.opened", ("mailpipe.sender.name", options.Name)).Should().Be(0);
    }

    [Fact]
    public async Task The_batch_size_histogram_adds_up_to_the_messages_sent()
    {
        var options = Plain(TestServers.PostfixPort);
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(options);
            var messages = Enumerable.Range(0, 8).Select(i => SmtpMessage.FromBytes(new SmtpEnvelope("peer-edge@example.test", TestServers.UniqueRecipient("peer-batch")), Content));
            (await sender.SendBatchAsync(messages)).Should().OnlyContain(r => r.IsAccepted);
        });

        var point = capture.Points("mailpipe.sender.batch.size").Should().ContainSingle(p => PeerCapture.Has(p, "mailpipe.sender.name", options.Name)).Which;
        point.GetHistogramSum().Should().Be(8);
        point.GetHistogramCount().Should().BeInRange(1, 8);
        capture.Sum("mailpipe.smtp.messages", ("server.port", TestServers.PostfixPort), ("smtp.outcome", "accepted")).Should().Be(8);
    }
}
