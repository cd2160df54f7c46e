using System.Buffers;
using MailPipe.Tests.Pooling;

namespace MailPipe.Tests.Diagnostics;

/// <summary>
/// brk15res: with a listener attached (an OpenTelemetry SDK with MailPipe's instrumentation is one), the transaction's
/// measurements read the content's length after the end of data (mailpipe.smtp.bytes_sent). A seekable stream whose
/// Length throws once it has been read (an InvalidOperationException: a response stream consumed) failed the result
/// of a message the server had accepted, and the batch's result stream was never completed: the caller's SendAsync
/// waited for ever, and the message was delivered. The length was then left out of the measurements; now the octets read are counted, and the stream is not asked.
/// </summary>
[Collection(nameof(TelemetryCollection))]
public sealed class Brk15LengthAfterDataTests
{
    [Fact]
    public async Task A_stream_whose_Length_fails_after_the_end_of_data_gets_its_result_with_a_listener_attached()
    {
        await using var server = new LoopbackSmtpServer();
        using var capture = new TelemetryTests.Capture();
        var (template, id) = PoolTestMessages.Create("brk15-length", 1);
        var content = template.Bytes!.Value.ToArray();
        await using var stream = new LengthFailsOnceRead(content);
        var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));

        var result = await sender.SendAsync(SmtpMessage.FromStream(template.Envelope, stream)).WaitAsync(TimeSpan.FromSeconds(30));
        await sender.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf(id).Should().Be(1);
        capture.Single(MailPipeTelemetry.TransactionSpan, server.Port).GetTagItem("smtp.outcome").Should().Be("accepted");
        capture.Sum("mailpipe.smtp.bytes_sent", server.Port).Should().Be(content.Length, "the octets read are counted: the stream is not asked after the end of data");
    }

    private sealed class LengthFailsOnceRead(byte[] content) : MemoryStream(content)
    {
        public override long Length => Position > 0 && Position >= base.Length ? throw new InvalidOperationException("The response stream was consumed.") : base.Length;
    }
}
