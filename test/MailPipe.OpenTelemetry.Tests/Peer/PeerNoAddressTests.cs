using System.Text;
using MailPipe.IntegrationTests.Support;
using static MailPipe.OpenTelemetry.Tests.Peer.PeerOptions;

namespace MailPipe.OpenTelemetry.Tests.Peer;

/// <summary>
/// "No span, event, link, baggage or metric dimension holds a mail address, local part or subject" on the paths
/// whose replies and exceptions name an address: a refused recipient (Postfix quotes it), an address the server cannot
/// take (no SMTPUTF8), a refusal after the data, a transaction that fails in its content; and the logs (transcript
/// included) mask every address without LogAddresses, in the server's replies too.
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class PeerNoAddressTests
{
    private const string Local = "peer-hidden-local";

    [Theory]
    [InlineData("refused-recipient")]
    [InlineData("utf8-without-smtputf8")]
    [InlineData("eod-reject")]
    [InlineData("content-failure")]
    public async Task Error_paths_put_no_address_or_subject_in_telemetry(string path)
    {
        var port = path == "utf8-without-smtputf8" ? TestServers.SinkPort : TestServers.PostfixPort;
        var content = Encoding.ASCII.GetBytes("Subject: peer-hidden-subject\r\n\r\nx\r\n");
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(Plain(port, c.LoggerFactory));
            var message = path switch
            {
                "refused-recipient" => SmtpMessage.FromBytes(new SmtpEnvelope("peer-from@example.test", $"unknown-{Local}@example.test"), content),
                "utf8-without-smtputf8" => SmtpMessage.FromBytes(new SmtpEnvelope("peer-from@example.test", $"zoë-{Local}@example.test"), content),
                "eod-reject" => SmtpMessage.FromBytes(new SmtpEnvelope("eod-reject@example.test", $"{Local}@example.test"), content),
                _ => SmtpMessage.FromWriter(new SmtpEnvelope("peer-from@example.test", $"{Local}@example.test"), async (s, ct) =>
                {
                    await s.WriteAsync(content, ct);
                    throw new IOException($"source of {Local}@example.test broke");
                }),
            };
            var result = await sender.SendAsync(message);
            result.IsAccepted.Should().BeFalse(result.ToString());
        });

        capture.Spans.Should().Contain(s => s.OperationName == "smtp transaction");
        capture.TelemetryTexts().Should().NotContain(
            t => t.Contains('@') || t.Contains(Local, StringComparison.Ordinal) || t.Contains("peer-hidden-subject", StringComparison.Ordinal),
            "no span, event, link, baggage or metric dimension holds an address, a local part or the subject");
        capture.Logs.Should().NotBeEmpty();
        capture.Logs.Should().NotContain(l => l.Contains(Local, StringComparison.Ordinal), "without LogAddresses the logs mask the addresses, in the server's replies too");
    }
}
