using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>
/// A message file whose header fields hold UTF-8 (RFC 6532: a raw UTF-8 Subject or display name) is an internationalized
/// message: to a server that offers SMTPUTF8 it goes with the SMTPUTF8 parameter (RFC 6531 §3.4), as MailPipe.MimeKit
/// sends such a MimeMessage; only its envelope addresses used to count.
/// </summary>
public class Breaker16Utf8HeaderTests
{
    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public async Task A_file_with_a_UTF8_header_field_goes_with_SMTPUTF8_to_a_server_that_offers_it(bool large, bool eightBitHeader)
    {
        using var dir = new TempDirectory();
        var subject = eightBitHeader ? "Grüße aus Köln" : "plain";
        var body = (eightBitHeader ? "hello" : "Grüße") + "\r\n" + (large ? new string('x', 76) + "\r\n" : string.Empty);
        var name = eightBitHeader ? "Jürgen" : "Juergen";
        var text = new StringBuilder($"From: {name} <a@example.test>\r\nTo: b@example.test\r\nSubject: {subject}\r\n\r\n");
        text.Append(body);
        while (large && text.Length < 1_100_000)
        {
            text.Append(new string('y', 76)).Append("\r\n");
        }

        var file = Path.Combine(dir.Path, "m.eml");
        await File.WriteAllBytesAsync(file, Encoding.UTF8.GetBytes(text.ToString()));

        var run = await CliRunner.RunAsync("send", "--save-dir", Path.Combine(dir.Path, "out"), "--trace", file);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var mail = run.Error.Split('\n').Single(l => l.StartsWith("C: MAIL FROM:", StringComparison.Ordinal));
        if (eightBitHeader)
        {
            mail.Should().Contain(" SMTPUTF8", "a header field in UTF-8 makes the message internationalized (RFC 6531 §3.4)");
        }
        else
        {
            mail.Should().NotContain("SMTPUTF8", "8-bit octets in the body alone need 8BITMIME, not SMTPUTF8");
        }
    }
}
