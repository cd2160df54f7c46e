using System.Buffers;
using System.IO.Pipelines;
using MailPipe.Tests.Pooling;

namespace MailPipe.Tests.Diagnostics;

/// <summary>
/// mailpipe.smtp.bytes_sent and the transaction span's smtp.message.bytes took the content's length from its source
/// after the end of data, so content whose length is not known before (a content writer, and so every MimeMessage of
/// MailPipe.MimeKit, a stream that cannot seek, a pipe) was never counted: a service sending MimeMessages saw no bytes
/// at all (newuser16). They now count the octets read from the source, as given (before line-end conversion and
/// dot-stuffing), with DATA and with BDAT.
/// </summary>
[Collection(nameof(TelemetryCollection))]
public sealed class StreamedLengthTelemetryTests
{
    public static TheoryData<string, bool> Sources => new()
    {
        { "writer", true }, { "writer", false }, { "one-way-stream", true }, { "one-way-stream", false },
        { "pipe", true }, { "pipe", false }, { "seekable-stream", true }, { "bytes", false },
    };

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Content_from_any_source_is_counted_once_its_end_of_data_was_written(string source, bool chunking)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        using var capture = new TelemetryTests.Capture();
        var (template, id) = PoolTestMessages.Create($"streamed-{source}", 1, bodyBytes: 200_000); // more than one read
        var content = template.Bytes!.Value.ToArray();
        var message = source switch
        {
            "writer" => SmtpMessage.FromWriter(template.Envelope, (stream, token) => stream.WriteAsync(content, token).AsTask()),
            "one-way-stream" => SmtpMessage.FromStream(template.Envelope, new OneWayStream(content)),
            "pipe" => SmtpMessage.FromPipeReader(template.Envelope, PipeReader.Create(new OneWayStream(content))),
            "seekable-stream" => SmtpMessage.FromStream(template.Envelope, new MemoryStream(content)),
            _ => template,
        };

        await using (var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1)))
        {
            (await sender.SendAsync(message)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        }

        server.CountOf(id).Should().Be(1);
        capture.Single(MailPipeTelemetry.TransactionSpan, server.Port).GetTagItem("smtp.message.bytes").Should().Be((long)content.Length);
        capture.Sum("mailpipe.smtp.bytes_sent", server.Port).Should().Be(content.Length);
    }

    /// <summary>A stream that can only be read forward (a response body): no Length.</summary>
    private sealed class OneWayStream(byte[] content) : MemoryStream(content)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();
    }
}
