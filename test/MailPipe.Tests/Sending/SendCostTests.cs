using System.Net;
using System.Net.Sockets;
using System.Text;
using MailPipe.Tests.Support;
using MailPipe.Transport;

namespace MailPipe.Tests.Sending;

/// <summary>
/// What one <c>SendAsync</c> costs apart from the wire (issue #9 acceptance 5): the per-message objects stay as small
/// as before the features that came after b245159, and the unsolicited-reply check needs no pending read on a
/// plaintext socket with nothing received (a pending read makes the next reply's read complete through the socket
/// engine, a thread-pool hop per reply).
/// </summary>
public sealed class SendCostTests
{
    private static readonly SmtpEnvelope Envelope = new("sender@example.test", "rcpt@example.test");
    private static readonly byte[] Content = Encoding.ASCII.GetBytes("Subject: cost\r\n\r\nbody\r\n");

    [Fact]
    public void An_in_memory_message_and_its_transaction_allocate_no_more_than_before_the_later_features()
    {
        _ = new MailTransaction(SmtpMessage.FromBytes(Envelope, Content)); // JIT and statics first
        var start = GC.GetAllocatedBytesForCurrentThread();
        var message = SmtpMessage.FromBytes(Envelope, Content);
        var afterMessage = GC.GetAllocatedBytesForCurrentThread();
        var tx = new MailTransaction(message);
        var afterTransaction = GC.GetAllocatedBytesForCurrentThread();

        // b245159 (before the replay hooks, WithCancellation and telemetry): 72 B message, 88 B transaction + its
        // one-recipient result array (32 B). 8df88da had 160 + 24 (a StrongBox per message) and 104.
        (afterMessage - start).Should().BeLessThanOrEqualTo(72);
        (afterTransaction - afterMessage).Should().BeLessThanOrEqualTo(88 + 32);
        tx.Message.Should().BeSameAs(message);
    }

    [Fact]
    public void Copies_of_a_message_share_whether_its_one_pass_source_was_read_and_keep_their_own_token()
    {
        using var cts = new CancellationTokenSource();
        var message = SmtpMessage.FromStream(Envelope, new NonSeekableStream(Content));
        var copy = message.WithCancellation(cts.Token);
        copy.CancellationToken.Should().Be(cts.Token);
        message.CancellationToken.Should().Be(CancellationToken.None);
        message.IsReplayable.Should().BeTrue();

        _ = copy.Stream!.ReadByte();

        message.IsReplayable.Should().BeFalse("the copy read the stream both share");
        copy.IsReplayable.Should().BeFalse();
        message.WithRecipients([Envelope.Recipients[0]]).IsReplayable.Should().BeFalse();
    }

    [Fact]
    public async Task A_plaintext_socket_has_nothing_to_read_until_bytes_arrive_and_again_after_they_are_read()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accept = listener.AcceptSocketAsync();
        await using var connection = await SmtpConnection.ConnectAsync("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port, CancellationToken.None);
        using var server = await accept.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        connection.NothingToRead().Should().BeTrue("nothing was sent");

        await server.SendAsync("250 ok\r\n"u8.ToArray(), SocketFlags.None);
        await WaitUntilAsync(() => !connection.NothingToRead());

        var read = await connection.Input.ReadAsync();
        read.Buffer.Length.Should().Be(8);
        connection.Input.AdvanceTo(read.Buffer.End);
        connection.NothingToRead().Should().BeTrue("what arrived was read");
    }

    [Fact]
    public async Task A_closed_plaintext_socket_is_never_taken_for_one_with_nothing_to_read()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accept = listener.AcceptSocketAsync();
        await using var connection = await SmtpConnection.ConnectAsync("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port, CancellationToken.None);
        using (var server = await accept.WaitAsync(ScriptedSmtpServer.SafetyTimeout))
        {
            server.Shutdown(SocketShutdown.Both);
        }

        // The end of the stream must be seen by a read (the read-ahead), never skipped.
        await WaitUntilAsync(() => !connection.NothingToRead());
    }

    [Fact]
    public async Task A_stream_connection_always_needs_a_read_to_tell()
    {
        var toClient = new System.IO.Pipelines.Pipe();
        var toServer = new System.IO.Pipelines.Pipe();
        await using var connection = SmtpConnection.FromStream(new DuplexStream(toClient.Reader, toServer.Writer));
        connection.NothingToRead().Should().BeFalse("only a read can look into a caller's stream (or TLS)");
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var limit = new CancellationTokenSource(ScriptedSmtpServer.SafetyTimeout);
        while (!condition())
        {
            await Task.Delay(5, limit.Token);
        }
    }

    private sealed class NonSeekableStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
