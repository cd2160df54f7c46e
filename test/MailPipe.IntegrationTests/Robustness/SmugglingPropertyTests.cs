using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Robustness;

/// <summary>
/// SMTP smuggling (SEC Consult, Dec 2023) as a property against real Postfix: the test Postfix 3.7 on 2525 takes
/// <c>&lt;LF&gt;.&lt;CR&gt;&lt;LF&gt;</c> as an end of data (the permissive server smuggling needs), 2545 forbids bare
/// newlines. Generated contents rich in CR, LF and dots (seeded) each store exactly one message equal to the input with
/// its line ends normalised, and none is refused for a bare newline.
/// </summary>
public class SmugglingPropertyTests
{
    private const int Seed = 17_2026;
    private const int Cases = 24;

    private static readonly string[] Pieces = ["\r", "\n", "\r\n", ".", "..", "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\r\n", "\r\n.", ".\r\n", "a", "b c", "MAIL FROM:<evil@example.test>", "\r\n\r\n"];

    /// <summary>Seeded contents: fixed headers, then a body of random pieces rich in CR, LF and dots.</summary>
    public static IReadOnlyList<byte[]> Contents()
    {
        var random = new Random(Seed);
        var contents = new List<byte[]>(Cases);
        for (var i = 0; i < Cases; i++)
        {
            var body = new StringBuilder();
            var count = random.Next(1, 60);
            for (var j = 0; j < count; j++)
            {
                body.Append(Pieces[random.Next(Pieces.Length)]);
            }

            contents.Add(Encoding.ASCII.GetBytes(
                $"From: sender@example.test\r\nTo: rcpt@example.test\r\nSubject: smuggle {i}\r\nDate: Sat, 05 Dec 2026 12:00:00 +0000\r\nMessage-ID: <smuggle-{i}-{Guid.NewGuid():N}@example.test>\r\n\r\n{body}"));
        }

        return contents;
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task Inputs_rich_in_CR_LF_and_dots_each_store_exactly_one_message_equal_to_the_normalised_input(bool pipelining, bool chunking)
    {
        await Sends_each_content_as_one_message(TestServers.PostfixPort, pipelining, chunking);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_server_that_forbids_bare_newlines_refuses_no_send(bool chunking)
    {
        await Sends_each_content_as_one_message(InteropPostfixTests.StrictNewlinePort, pipelining: true, chunking);
    }

    private static async Task Sends_each_content_as_one_message(int port, bool pipelining, bool chunking)
    {
        var contents = Contents();
        var recipients = contents.Select(_ => TestServers.UniqueRecipient("smuggle")).ToArray();
        await using var session = await InteropPostfixTests.ConnectAsync(port, new SmtpSessionOptions { UsePipelining = pipelining, UseChunking = chunking });

        var results = await session.SendBatchAsync(contents.Select((c, i) => SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", recipients[i]), c)).ToList());

        results.Select(r => r.Outcome).Should().AllBeEquivalentTo(SmtpSendOutcome.Accepted);
        for (var i = 0; i < contents.Count; i++)
        {
            var stored = await Maildir.WaitForPostfixAsync(recipients[i]);
            stored.Should().HaveCount(1, "exactly one message per send: nothing smuggled, nothing split");
            Maildir.StripTraceHeaders(stored[0]).Should().Equal(Corpus.NormalizeLineEnds(contents[i]), $"case {i} is stored as the normalised input");
        }

        // Nothing else arrived: a smuggled MAIL FROM:<evil@…> would have made a second message to some recipient.
        await Task.Delay(500);
        for (var i = 0; i < contents.Count; i++)
        {
            Directory.GetFiles(Path.Combine(TestServers.PostfixMaildir, recipients[i], "new")).Should().HaveCount(1);
        }
    }
}
