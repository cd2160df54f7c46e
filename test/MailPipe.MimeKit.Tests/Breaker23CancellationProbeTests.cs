using MailPipe.Tests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>Breaker23 probe of issue #14: a send of a MimeMessage cancelled while MimeKit waits on an attachment stream, then sent again.</summary>
public class Breaker23CancellationProbeTests
{
    [Fact]
    public async Task A_send_cancelled_while_MimeKit_waits_on_an_attachment_stream_does_not_hold_up_the_retry_which_sends_the_message_whole()
    {
        var bytes = MimeTestMessages.BinaryBytes(300_000);
        var attachment = new GatedStream(bytes, blockAt: 100_000);
        var message = MimeTestMessages.MultipartWithAttachments("bob@example.test", "carol@example.test", "dave@example.test");
        ((Multipart)message.Body!).Add(new MimePart("application", "octet-stream") { Content = new MimeContent(attachment), ContentTransferEncoding = ContentEncoding.Base64, FileName = "big.bin" });
        var smtp = message.ToSmtpMessage();
        string[] transaction = ["C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: RCPT TO:<carol@example.test>", "C: RCPT TO:<dave@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 354 go"];

        // The first send stops inside the data: MimeKit waits on the attachment stream (a slow disk, a network share)
        // and the caller cancels.
        await using (var server = ScriptedSmtpServer.Start(Ehlo().Then(transaction).ReadUntilClosed()))
        {
            using var session = await ConnectedAsync(server);
            using var cts = new CancellationTokenSource();
            var send = session.SendAsync(smtp, cts.Token);
            await attachment.Blocked.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            await cts.CancelAsync();
            await FluentActions.Awaiting(() => send.WaitAsync(ScriptedSmtpServer.SafetyTimeout)).Should().ThrowAsync<OperationCanceledException>();
        }

        await RetryIsSentWholeAsync(message, smtp, transaction);
    }

    [Fact]
    public async Task A_send_whose_connection_dropped_while_MimeKit_waited_on_an_attachment_stream_is_NotSent_and_the_retry_sends_the_message_whole()
    {
        var bytes = MimeTestMessages.BinaryBytes(300_000);
        var attachment = new GatedStream(bytes, blockAt: 100_000);
        var message = MimeTestMessages.MultipartWithAttachments("bob@example.test", "carol@example.test", "dave@example.test");
        ((Multipart)message.Body!).Add(new MimePart("application", "octet-stream") { Content = new MimeContent(attachment), ContentTransferEncoding = ContentEncoding.Base64, FileName = "big.bin" });
        var smtp = message.ToSmtpMessage();
        string[] transaction = ["C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: RCPT TO:<carol@example.test>", "C: RCPT TO:<dave@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 354 go"];

        // The server drops the connection while MimeKit waits on the attachment stream (a slow disk, a network share);
        // the stream then goes on (a send waits for its content as long as the caller's stream takes).
        await using (var server = ScriptedSmtpServer.Start(Ehlo().Then(transaction).WaitFor(attachment.Blocked.Task).Drop()))
        {
            using var session = await ConnectedAsync(server);
            var send = session.SendAsync(smtp);
            await server.WaitAsync();
            attachment.Release.TrySetResult();
            var first = await send.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            first.Outcome.Should().Be(SmtpSendOutcome.NotSent, first.Exception?.ToString());
        }

        await RetryIsSentWholeAsync(message, smtp, transaction);
    }

    /// <summary>
    /// Sends <paramref name="smtp"/> again on a fresh connection and checks that the server got the whole message. The
    /// expectation is computed only after the retry: the stopped first send's writer may still read the attachment after
    /// its result (documented), and the retry's run waited for it; computed before, it read the same MemoryStream at
    /// the same time as that writer and came out garbled (917,693 bytes for a 559,000-byte message, once in a CI run).
    /// </summary>
    private static async Task RetryIsSentWholeAsync(MimeMessage message, SmtpMessage smtp, string[] transaction)
    {
        var data = new List<byte>();
        await using var second = ScriptedSmtpServer.Start(Ehlo().Then(transaction).Do("READ DATA", async (server, ct) =>
        {
            while (await server.ReadLineAsync(ct) is { } line && !line.AsSpan().SequenceEqual(".\r\n"u8))
            {
                data.AddRange(line.Length > 0 && line[0] == (byte)'.' ? line[1..] : line);
            }
        }).Then("S: 250 queued"));
        using var retrySession = await ConnectedAsync(second);
        var retry = await retrySession.SendAsync(smtp).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        await second.WaitAsync();
        var expected = MimeTestMessages.ExpectedData(message);

        retry.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        data.ToArray().Should().Equal(expected, "the retry sends the whole message again");
    }

    private static SmtpScript Ehlo() => SmtpScript.Parse("S: 220 mail.example.test ESMTP", "C: EHLO client.example.test", "S: 250-mail.example.test", "S: 250-PIPELINING", "S: 250 8BITMIME");

    private static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server)
    {
        var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        (await session.EhloAsync("client.example.test").Safe()).Code.Should().Be(250);
        return session;
    }

    /// <summary>A seekable stream whose first pass waits (until released or its read is cancelled) once <c>blockAt</c> bytes were read.</summary>
    private sealed class GatedStream(byte[] bytes, int blockAt) : MemoryStream(bytes, writable: false)
    {
        private bool _blockedOnce;

        public TaskCompletionSource Blocked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override int Read(byte[] buffer, int offset, int count) =>
            ShouldBlock() ? throw new InvalidOperationException("synchronous read at the gate") : base.Read(buffer, offset, count);

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (ShouldBlock())
            {
                _blockedOnce = true;
                Blocked.TrySetResult();
                await Release.Task.WaitAsync(cancellationToken);
            }

            return await base.ReadAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private bool ShouldBlock() => !_blockedOnce && Position >= blockAt;
    }
}
