using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>
/// One mailbox given twice in two spellings (quoted and plain local part, RFC 5321 §4.1.2; Unicode and A-label domain,
/// RFC 5890) is one recipient: as two RCPTs Postfix stored two copies in the same Maildir.
/// </summary>
public class Breaker16RecipientTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_to_option_given_quoted_and_plain_or_as_Unicode_and_A_label_is_one_RCPT(bool file)
    {
        using var dir = new TempDirectory();
        string[] recipients = ["-t", "bob@example.test", "-t", "\"bob\"@example.test", "-t", "b@bücher.example", "-t", "b@xn--bcher-kva.example"];
        string[] content = file
            ? [dir.File("m.eml", "From: a@example.test\r\nSubject: x\r\n\r\nhi\r\n"u8.ToArray())]
            : ["--subject", "x", "--body", "hi"];

        var run = await CliRunner.RunAsync(["send", "--save-dir", Path.Combine(dir.Path, "out"), "--json", "-f", "a@example.test", .. recipients, .. content]);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        using var message = JsonDocument.Parse(run.OutputLines[0]);
        message.RootElement.GetProperty("recipients").EnumerateArray().Select(r => r.GetProperty("address").GetString())
            .Should().Equal("bob@example.test", "b@bücher.example");
    }
}
