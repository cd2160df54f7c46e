using System.Text;
using System.Text.Json;
using MimeKit;

namespace MailPipe.Cli.Tests;

/// <summary>
/// A non-ASCII <c>--header</c> value put in front of a file went in raw UTF-8: the file could then not go to a server
/// without 8BITMIME at all (exit 6), and elsewhere it carried an 8-bit header field without SMTPUTF8. A built message
/// gets the same value RFC 2047-encoded by MimeKit; a file now does too.
/// </summary>
public class Breaker16HeaderOptionTests
{
    [Fact]
    public async Task A_non_ASCII_header_value_in_front_of_a_file_is_RFC2047_encoded()
    {
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", "From: a@example.test\r\nTo: b@example.test\r\nSubject: x\r\n\r\nhi\r\n"u8.ToArray());
        var note = "Grüße aus Köln, " + string.Concat(Enumerable.Repeat("ünïcödé ", 20)).TrimEnd();

        var run = await CliRunner.RunAsync("send", "--save-dir", Path.Combine(dir.Path, "out"), "--json",
            "--header", $"X-Note: {note}", "--header", "Reply-To: Jürgen <j@example.test>", "--header", "X-Plain: as  given", file);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        using var json = JsonDocument.Parse(run.OutputLines[0]);
        var saved = await File.ReadAllBytesAsync(json.RootElement.GetProperty("savedTo").GetString()!);
        saved.Should().NotContain(b => b >= 0x80, "the fields are encoded words (RFC 2047), 7-bit");
        Encoding.ASCII.GetString(saved).Split("\r\n").Max(l => l.Length).Should().BeLessThanOrEqualTo(998, "MimeKit folds the encoded words");
        Encoding.ASCII.GetString(saved).Should().Contain("X-Plain: as  given\r\n", "an ASCII value goes as given");
        var message = MimeMessage.Load(new MemoryStream(saved));
        message.Headers["X-Note"].Should().Be(note);
        message.ReplyTo.Mailboxes.Single().Name.Should().Be("Jürgen");
    }
}
