using System.Diagnostics;
using MailPipe.IntegrationTests.Support;
using static MailPipe.OpenTelemetry.Tests.Peer.PeerOptions;

namespace MailPipe.OpenTelemetry.Tests.Peer;

/// <summary>
/// The transaction span against each real server: <c>smtp.transfer</c> follows the server's CHUNKING, the enhanced
/// status code is the one the final reply's text carries (none from Exim), and a server without PIPELINING costs more
/// round trips than one with it.
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class PeerServerMatrixTests
{
    public static TheoryData<string, int, string, string?> Servers => new()
    {
        { "postfix", TestServers.PostfixPort, "BDAT", "2.0.0" },
        { "exim", TestServers.EximPort, "BDAT", null },
        { "aiosmtpd", TestServers.AiosmtpdPort, "DATA", "2.0.0" },
        { "sink", TestServers.SinkPort, "DATA", "2.0.0" },
    };

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task The_transaction_span_says_how_each_server_took_the_message(string server, int port, string transfer, string? enhanced)
    {
        TestServers.RequireListening(port);
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(Plain(port));
            var result = await sender.SendAsync(new SmtpEnvelope("peer-matrix@example.test", TestServers.UniqueRecipient("peer-matrix-" + server)), "Subject: m\r\n\r\nx\r\n"u8.ToArray());
            result.IsAccepted.Should().BeTrue(result.ToString());
        });

        var tx = capture.SpansOn(port, "smtp transaction").Should().ContainSingle().Which;
        tx.GetTagItem("smtp.transfer").Should().Be(transfer);
        tx.GetTagItem("smtp.reply.code").Should().Be(250);
        tx.GetTagItem("smtp.reply.enhanced_status_code").Should().Be(enhanced, "the code the reply text starts with (SmtpReply.EnhancedStatusCode: aiosmtpd writes one without offering ENHANCEDSTATUSCODES, Exim none)");
        var roundTrips = Convert.ToInt32(tx.GetTagItem("smtp.round_trips"), System.Globalization.CultureInfo.InvariantCulture);
        if (server == "aiosmtpd")
        {
            roundTrips.Should().BeGreaterThanOrEqualTo(4, "without PIPELINING: MAIL, RCPT, DATA and the end of data each wait");
        }
        else
        {
            roundTrips.Should().BeLessThanOrEqualTo(2, "with PIPELINING the commands go together");
        }

        tx.Status.Should().Be(ActivityStatusCode.Unset);
    }
}
