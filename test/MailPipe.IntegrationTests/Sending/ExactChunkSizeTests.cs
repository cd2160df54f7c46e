using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>
/// Content of exactly ChunkSize (and twice it) goes out as its full chunks with LAST on the last one (no empty
/// <c>BDAT 0 LAST</c> after it); Exim and Postfix store it whole, from bytes and from a non-seekable stream.
/// </summary>
public sealed class ExactChunkSizeTests
{
    private const int ChunkSize = 4096;

    [Theory]
    [InlineData("exim", 1, false)]
    [InlineData("exim", 2, true)]
    [InlineData("postfix", 1, true)]
    [InlineData("postfix", 2, false)]
    public async Task Content_of_exactly_ChunkSize_is_stored_whole(string server, int chunks, bool stream)
    {
        var port = server == "exim" ? TestServers.EximPort : TestServers.PostfixPort;
        TestServers.RequireListening(port);
        var header = $"Subject: exact chunk {chunks}\r\n\r\n";
        var line = new string('x', 62) + "\r\n";
        var text = new StringBuilder(header);
        while (text.Length + line.Length <= ChunkSize * chunks)
        {
            text.Append(line);
        }

        text.Append(new string('y', (ChunkSize * chunks) - text.Length - 2)).Append("\r\n");
        var content = Encoding.ASCII.GetBytes(text.ToString());
        content.Should().HaveCount(ChunkSize * chunks);
        var recipient = TestServers.UniqueRecipient("exact-chunk");
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { ChunkSize = ChunkSize });
        await session.ConnectAsync(TestServers.Host, port);
        await session.EhloAsync("client.example.test");
        session.Capabilities.SupportsChunking.Should().BeTrue();
        var envelope = new SmtpEnvelope("sender@example.test", recipient);
        var message = stream ? SmtpMessage.FromStream(envelope, new NonSeekable(content)) : SmtpMessage.FromBytes(envelope, content);

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        var stored = server == "exim" ? await Maildir.WaitForEximAsync(recipient) : (await Maildir.WaitForPostfixAsync(recipient))[0];
        Maildir.StripTraceHeaders(stored).Should().Equal(content);
        (await session.NoopAsync()).Code.Should().Be(250);
        await session.QuitAsync();
    }

    private sealed class NonSeekable(byte[] content) : MemoryStream(content, writable: false)
    {
        public override bool CanSeek => false;
    }
}
