using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using MailPipe.Extensions.Tests.Support;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// breaker16: the sample's POST /mail takes up to 100 recipients and "any Unicode text on one line" as the subject; the
/// message it builds must still keep RFC 5322 §2.1.1's limit of 998 octets per line (To and Subject folded or encoded),
/// and the stored message must carry every recipient and the whole subject.
/// </summary>
public sealed partial class SampleLongHeaderTests
{
    [Fact]
    public async Task Many_recipients_and_a_long_ascii_subject_give_lines_of_at_most_998_octets_with_nothing_lost()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort);
        using var client = app.CreateClient();
        var recipients = Enumerable.Range(0, 30).Select(_ => TestServers.UniqueRecipient("probe16-long")).ToArray();
        var subject = string.Join(' ', Enumerable.Range(0, 150).Select(i => $"word{i:D4}")) + " " + new string('x', 1200);

        var response = await client.PostAsJsonAsync("/mail", new { from = "alice@example.test", to = recipients, subject, body = "Hello.\n" });

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        json.GetProperty("outcome").GetString().Should().Be("Accepted", json.ToString());
        var stored = await File.ReadAllTextAsync((await TestServers.WaitForMaildirAsync(recipients[0])).Single());
        var normalized = stored.Replace("\r\n", "\n", StringComparison.Ordinal);
        var header = normalized[..normalized.IndexOf("\n\n", StringComparison.Ordinal)];
        header.Split('\n').Select(l => Encoding.UTF8.GetByteCount(l)).Should().OnlyContain(n => n <= 998, "RFC 5322 §2.1.1");

        var unfolded = Unfold().Replace(header, " ");
        var to = unfolded.Split('\n').Single(l => l.StartsWith("To: ", StringComparison.Ordinal));
        foreach (var recipient in recipients)
        {
            to.Should().Contain(recipient);
        }

        var subjectLine = unfolded.Split('\n').Single(l => l.StartsWith("Subject: ", StringComparison.Ordinal))["Subject: ".Length..];
        Decode(subjectLine).Should().Be(subject);
    }

    /// <summary>RFC 2047 B encoded-words (adjacent ones joined, as §6.2 says), plain text otherwise.</summary>
    private static string Decode(string value) =>
        !value.StartsWith("=?", StringComparison.Ordinal) ? value
        : string.Concat(EncodedWord().Matches(value).Select(m => Encoding.UTF8.GetString(Convert.FromBase64String(m.Groups[1].Value))));

    [GeneratedRegex(@"\n[ \t]+")]
    private static partial Regex Unfold();

    [GeneratedRegex(@"=\?utf-8\?B\?([^?]*)\?=", RegexOptions.IgnoreCase)]
    private static partial Regex EncodedWord();
}
