using MailPipe.IntegrationTests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests.Integration;

/// <summary>
/// Runs alone: the live heap the probe measures is the whole process's, and a test class running beside it (xunit's
/// default) counted its own buffers in it — the BDAT case failed so once in a full run (session 20) and passed alone.
/// </summary>
[CollectionDefinition(nameof(LargeAttachmentAlone), DisableParallelization = true)]
public sealed class LargeAttachmentAlone;

/// <summary>
/// Breaker17 probe of issue #14: a MimeMessage with a 50 MiB attachment is streamed, never buffered whole. The live
/// managed heap is measured (after a full collection) at the moment MimeKit has read half of the attachment: a message
/// buffered whole (or half of it) would hold at least 25 MiB there.
/// </summary>
[Trait("Category", "Integration")]
[Collection(nameof(LargeAttachmentAlone))]
public sealed class Breaker17LargeAttachmentProbeTests
{
    private const long Size = 50L * 1024 * 1024;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_50_MiB_attachment_is_streamed_with_bounded_memory(bool chunking)
    {
        TestServers.RequireListening(TestServers.SinkPort);
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        var content = new SyntheticStream(Size);
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse("big@example.test"));
        message.Bcc.Add(MailboxAddress.Parse("hidden@example.test"));
        message.Subject = "large attachment";
        message.Body = new Multipart("mixed")
        {
            new TextPart("plain") { Text = "A large attachment follows." },
            new MimePart("application", "octet-stream") { Content = new MimeContent(content), ContentTransferEncoding = ContentEncoding.Base64, FileName = "big.bin" },
        };
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
        await session.ConnectAsync(TestServers.Host, TestServers.SinkPort);
        await session.EhloAsync("client.example.test");

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        content.MaxPosition.Should().Be(Size, "the attachment was read to its end");
        content.LiveHeapAtHalf.Should().BeGreaterThan(0);
        (content.LiveHeapAtHalf - baseline).Should().BeLessThan(16L * 1024 * 1024, "half of a 50 MiB attachment is never held in memory");
    }

    /// <summary>Deterministic bytes of a given length, seekable, held nowhere; records the live heap when half is read.</summary>
    private sealed class SyntheticStream(long length) : Stream
    {
        private long _position;

        public long LiveHeapAtHalf { get; private set; }

        public long MaxPosition { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => _position; set => _position = value; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            for (var i = 0; i < n; i++)
            {
                buffer[offset + i] = (byte)((_position + i) * 31 % 251);
            }

            var before = _position;
            _position += n;
            MaxPosition = Math.Max(MaxPosition, _position);
            if (before < length / 2 && _position >= length / 2 && LiveHeapAtHalf == 0)
            {
                LiveHeapAtHalf = GC.GetTotalMemory(forceFullCollection: true);
            }

            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
