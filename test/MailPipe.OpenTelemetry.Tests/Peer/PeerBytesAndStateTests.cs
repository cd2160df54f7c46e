using System.IO.Pipelines;
using System.Text;
using MailPipe.IntegrationTests.Peer;
using MailPipe.IntegrationTests.Support;
using Microsoft.Extensions.Time.Testing;
using static MailPipe.OpenTelemetry.Tests.Peer.PeerOptions;

namespace MailPipe.OpenTelemetry.Tests.Peer;

/// <summary>
/// Peer acceptance of <c>mailpipe.smtp.bytes_sent</c> / <c>smtp.message.bytes</c> for each kind of content (content as
/// given, before line-end conversion and dot-stuffing), of the pool's <c>opening</c> state, and of the discard reasons
/// a clock decides (<c>idle_timeout</c>, <c>lifetime</c>), with the sender's TimeProvider.
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class PeerBytesAndStateTests
{
    // LF-only lines and lines starting with a dot: the wire gets CRLF and dot-stuffing, the count does not.
    private static readonly byte[] Content = Encoding.ASCII.GetBytes("Subject: bytes\n\n.one\n..two\nthree\n" + new string('z', 70_000) + "\n");

    [Theory]
    [InlineData("bytes")]
    [InlineData("seekable")]
    [InlineData("forward-only")]
    [InlineData("writer")]
    [InlineData("pipe")]
    public async Task The_bytes_sent_are_the_content_as_given_for_every_kind_of_content(string kind)
    {
        var port = TestServers.PostfixPort;
        var envelope = new SmtpEnvelope("peer-bytes@example.test", TestServers.UniqueRecipient("peer-bytes"));
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(Plain(port));
            var message = kind switch
            {
                "bytes" => SmtpMessage.FromBytes(envelope, Content),
                "seekable" => SmtpMessage.FromStream(envelope, new MemoryStream(Content)),
                "forward-only" => SmtpMessage.FromStream(envelope, new ForwardOnly(Content)),
                "writer" => SmtpMessage.FromWriter(envelope, async (stream, ct) =>
                {
                    await stream.WriteAsync(Content.AsMemory(0, 10), ct);
                    await stream.WriteAsync(Content.AsMemory(10), ct);
                }),
                _ => SmtpMessage.FromPipeReader(envelope, PipeReader.Create(new MemoryStream(Content))),
            };
            var result = await sender.SendAsync(message);
            result.IsAccepted.Should().BeTrue(result.ToString());
        });

        var tx = capture.SpansOn(port, "smtp transaction").Should().ContainSingle().Which;
        Convert.ToInt64(tx.GetTagItem("smtp.message.bytes"), System.Globalization.CultureInfo.InvariantCulture).Should().Be(Content.Length);
        capture.Sum("mailpipe.smtp.bytes_sent", ("server.port", port)).Should().Be(Content.Length);
    }

    [Fact]
    public async Task A_connection_waiting_for_its_greeting_counts_as_opening_and_as_none_after_the_sender_is_disposed()
    {
        await using var server = new PeerScriptedServer(PeerScriptedServer.Mode.BlackHole);
        var options = Plain(server.Port);
        options.DisposeTimeout = TimeSpan.FromMilliseconds(100);
        var name = options.Name!;
        long opening = -1, used = -1, pending = -1, openingAfter = -1, pendingAfter = -1;
        await PeerCapture.RunAsync(async (c, flush) =>
        {
            var sender = new SmtpSender(options);
            var send = sender.SendAsync(new SmtpEnvelope("peer-open@example.test", "x@example.test"), Content);
            await server.ConnectionAccepted.WaitAsync(TimeSpan.FromSeconds(30));
            await flush();
            opening = c.Sum("mailpipe.sender.connection.count", ("mailpipe.sender.name", name), ("mailpipe.sender.connection.state", "opening"));
            used = c.Sum("mailpipe.sender.connection.count", ("mailpipe.sender.name", name), ("mailpipe.sender.connection.state", "used"));
            pending = c.Sum("mailpipe.sender.pending_requests", ("mailpipe.sender.name", name));
            await sender.DisposeAsync();
            var outcome = async () => await send;
            await outcome.Should().ThrowAsync<ObjectDisposedException>("a message still waiting fails with ObjectDisposedException at disposal");
            sender.GetStatistics().Opening.Should().Be(0, "disposal completes when every connection is closed");
            await flush();
            openingAfter = c.Sum("mailpipe.sender.connection.count", ("mailpipe.sender.name", name), ("mailpipe.sender.connection.state", "opening"));
            pendingAfter = c.Sum("mailpipe.sender.pending_requests", ("mailpipe.sender.name", name));
        });

        opening.Should().Be(1);
        used.Should().Be(0);
        pending.Should().Be(1, "the message waits for the connection being opened");
        openingAfter.Should().Be(0, "a disposed sender's series report 0, not the last value before its disposal, which an exporter would keep");
        pendingAfter.Should().Be(0);
    }

    [Theory]
    [InlineData("idle_timeout")]
    [InlineData("lifetime")]
    public async Task A_connection_past_its_idle_timeout_or_lifetime_is_discarded_with_that_reason(string reason)
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = Plain(TestServers.PostfixPort);
        options.TimeProvider = clock;
        options.IdleTimeout = reason == "idle_timeout" ? TimeSpan.FromSeconds(30) : Timeout.InfiniteTimeSpan;
        options.MaxLifetime = reason == "lifetime" ? TimeSpan.FromMinutes(1) : Timeout.InfiniteTimeSpan;
        var name = options.Name!;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(options);
            (await sender.SendAsync(new SmtpEnvelope("peer-clock@example.test", TestServers.UniqueRecipient("peer-clock")), Content)).IsAccepted.Should().BeTrue();
            while (sender.GetStatistics().Idle == 0)
            {
                await Task.Yield();
            }

            clock.Advance(TimeSpan.FromMinutes(2));
            if (reason == "lifetime")
            {
                (await sender.SendAsync(new SmtpEnvelope("peer-clock@example.test", TestServers.UniqueRecipient("peer-clock")), Content)).IsAccepted.Should().BeTrue();
            }

            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (sender.GetStatistics().Discarded == 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }
        });

        capture.Sum("mailpipe.sender.connection.discarded", ("mailpipe.sender.name", name), ("mailpipe.sender.connection.discard_reason", reason)).Should().Be(1);
    }

    private sealed class ForwardOnly(byte[] content) : MemoryStream(content, writable: false)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override long Seek(long offset, SeekOrigin loc) => throw new NotSupportedException();
    }
}
