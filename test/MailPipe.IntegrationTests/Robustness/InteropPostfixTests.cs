using System.Globalization;
using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Robustness;

/// <summary>Issue #17 against the Postfix listeners that show it: 2543 (no 8BITMIME), 2544 (no SMTPUTF8).</summary>
public class InteropPostfixTests
{
    public static int No8BitMimePort => Port("MAILPIPE_POSTFIX_NO8BITMIME_PORT", 2543);

    public static int NoSmtpUtf8Port => Port("MAILPIPE_POSTFIX_NOSMTPUTF8_PORT", 2544);

    public static int StrictNewlinePort => Port("MAILPIPE_POSTFIX_STRICTNL_PORT", 2545);

    private static int Port(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : fallback;

    internal static async Task<AsyncSmtpSession> ConnectAsync(int port, SmtpSessionOptions? options = null)
    {
        TestServers.RequireListening(port);
        var session = new AsyncSmtpSession(options);
        await session.ConnectAsync(TestServers.Host, port);
        await session.EhloAsync("client.example.test");
        return session;
    }

    private static byte[] Message(string subject, string body) => Encoding.UTF8.GetBytes(
        $"From: sender@example.test\r\nTo: rcpt@example.test\r\nSubject: {subject}\r\nDate: Sat, 05 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{Guid.NewGuid():N}@example.test>\r\n\r\n{body}");

    [Fact]
    public async Task An_IDN_recipient_on_a_server_without_SMTPUTF8_arrives_in_the_A_label_Maildir()
    {
        await using var session = await ConnectAsync(NoSmtpUtf8Port);
        session.Capabilities.SupportsSmtpUtf8.Should().BeFalse("port 2544 runs with smtputf8_enable = no");
        var local = $"user-{Guid.NewGuid():N}";
        var message = Message("idn", "to an internationalised domain\r\n");

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", $"{local}@bücher.example"), message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        var stored = await Maildir.WaitForPostfixAsync($"{local}@xn--bcher-kva.example");
        Maildir.StripTraceHeaders(stored[0]).Should().Equal(Corpus.NormalizeLineEnds(message));
    }

    [Fact]
    public async Task A_non_ASCII_local_part_on_a_server_without_SMTPUTF8_is_NotSent()
    {
        await using var session = await ConnectAsync(NoSmtpUtf8Port);

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", $"üser-{Guid.NewGuid():N}@example.test"), Message("x", "x\r\n"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        (await session.NoopAsync()).Code.Should().Be(250, "nothing was written, the session goes on");
    }

    [Fact]
    public async Task In_memory_8bit_content_on_a_server_without_8BITMIME_is_NotSent_before_MAIL()
    {
        await using var session = await ConnectAsync(No8BitMimePort);
        session.Capabilities.Supports8BitMime.Should().BeFalse("port 2543 discards the 8BITMIME keyword");

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient("no8")), Message("caf\u00e9", "x\r\n"));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception!.Message.Should().Contain("8BITMIME");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Streamed_8bit_content_on_a_server_without_8BITMIME_is_aborted_and_never_delivered(bool chunking)
    {
        var refused = TestServers.UniqueRecipient("no8s");
        var control = TestServers.UniqueRecipient("no8c");
        await using (var session = await ConnectAsync(No8BitMimePort, new SmtpSessionOptions { UseChunking = chunking }))
        {
            var body = string.Concat(Enumerable.Repeat("seven bit line\r\n", 20_000)) + "caf\u00e9\r\n";
            var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", refused), new MemoryStream(Message("s", body)));

            result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
            result.Exception!.InnerException.Should().BeOfType<SmtpContentRefusedException>();
        }

        // A 7-bit streamed message afterwards (new connection) arrives; the refused one never does.
        await using (var session = await ConnectAsync(No8BitMimePort, new SmtpSessionOptions { UseChunking = chunking }))
        {
            var message = Message("s", "seven bit\r\n");
            (await session.SendAsync(new SmtpEnvelope("sender@example.test", control), new MemoryStream(message))).Outcome.Should().Be(SmtpSendOutcome.Accepted);
            var stored = await Maildir.WaitForPostfixAsync(control);
            Maildir.StripTraceHeaders(stored[0]).Should().Equal(Corpus.NormalizeLineEnds(message));
        }

        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, refused)).Should().BeFalse("the aborted message was never ended");
    }
}
