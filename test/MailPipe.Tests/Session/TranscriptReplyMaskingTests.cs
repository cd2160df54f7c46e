using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

/// <summary>
/// The transcript's promise (<see cref="SmtpSessionOptions.LogAddresses"/>: addresses masked unless opted in) holds for
/// the server's lines too: Postfix names the mailbox in its refusals (<c>550 5.1.1 &lt;x@y&gt;: Recipient address
/// rejected</c>) and VRFY answers with one, and those lines used to appear in the transcript as they came.
/// </summary>
public class TranscriptReplyMaskingTests
{
    private static readonly string[] Script =
    [
        "S: 220 mx",
        "C: MAIL FROM:<sender@example.test>",
        "S: 250 2.1.0 <sender@example.test>... Sender ok",
        "C: RCPT TO:<rcpt@example.test>",
        "S: 550 5.1.1 <rcpt@example.test>: Recipient address rejected: User unknown",
        "C: VRFY john",
        "S: 250-\"John Smith\"@example.test",
        "S: 250 John <john.smith+tag@sub.example.test>",
    ];

    private static async Task<List<string>> TranscriptAsync(bool logAddresses)
    {
        var logs = new ListLoggerProvider();
        await using var server = ScriptedSmtpServer.Start(Script);
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = logs, LogAddresses = logAddresses });
        await session.ConnectAsync(server.ClientStream).Safe();

        (await session.MailFromAsync("sender@example.test").Safe()).Code.Should().Be(250);
        (await session.RcptToAsync("rcpt@example.test").Safe()).Code.Should().Be(550);
        (await session.VrfyAsync("john").Safe()).Lines.Should().Contain("John <john.smith+tag@sub.example.test>", "the reply itself is the caller's data, never masked");
        await server.WaitAsync();
        return logs.Entries.Where(e => e.Category == "MailPipe.Protocol").Select(e => e.Message).ToList();
    }

    [Fact]
    public async Task Addresses_in_the_servers_replies_are_masked_by_default()
    {
        var transcript = await TranscriptAsync(logAddresses: false);

        transcript.Should().Contain("S: 250 2.1.0 <***@example.test>... Sender ok");
        transcript.Should().Contain("S: 550 5.1.1 <***@example.test>: Recipient address rejected: User unknown");
        transcript.Should().Contain("S: 250-***@example.test");
        transcript.Should().Contain("S: 250 John <***@sub.example.test>");
        transcript.Should().NotContain(m => m.Contains("sender@", StringComparison.Ordinal) || m.Contains("rcpt@", StringComparison.Ordinal)
            || m.Contains("smith", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Addresses_in_the_servers_replies_are_shown_when_opted_in()
    {
        var transcript = await TranscriptAsync(logAddresses: true);

        transcript.Should().Contain("S: 550 5.1.1 <rcpt@example.test>: Recipient address rejected: User unknown");
        transcript.Should().Contain("S: 250 John <john.smith+tag@sub.example.test>");
    }
}
