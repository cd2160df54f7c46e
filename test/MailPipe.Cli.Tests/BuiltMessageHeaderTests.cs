using System.Text;
using MimeKit;

namespace MailPipe.Cli.Tests;

/// <summary>
/// <c>--header</c> on a message built from the options (session 12 review): each test here failed before its fix.
/// </summary>
public class BuiltMessageHeaderTests
{
    /// <summary>
    /// <c>--header "Content-Type: text/html"</c> was added in front of the builder's own
    /// <c>Content-Type: text/plain; charset=utf-8</c>: the message carried two Content-Type fields (RFC 2045 §1 allows
    /// one), and a reader chose either. It now sets the type of the text.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_content_type_header_sets_the_type_of_the_text_instead_of_adding_a_second_field(bool attach)
    {
        using var dir = new TempDirectory();
        var saveDir = Path.Combine(dir.Path, "outbox");
        var attachment = dir.File("a.txt", "attached\r\n");
        string[] args = ["send", "-f", "a@example.test", "-t", "b@example.test", "--body", "<p>grüße</p>", "--header", "Content-Type: text/html", "--save-dir", saveDir];

        var run = await CliRunner.RunAsync(attach ? [.. args, "--attach", attachment] : args);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var bytes = await File.ReadAllBytesAsync(Directory.GetFiles(saveDir).Single());
        var text = Encoding.UTF8.GetString(bytes);
        var fields = text[..text.IndexOf("\r\n\r\n", StringComparison.Ordinal)].Split("\r\n");
        fields.Count(f => f.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase)).Should().Be(1, text);
        using var message = MimeMessage.Load(new MemoryStream(bytes));
        message.HtmlBody.Should().NotBeNull(text);
        message.HtmlBody!.ReplaceLineEndings("\n").Should().Be("<p>grüße</p>\n");
        var html = message.BodyParts.OfType<TextPart>().Single(p => p.IsHtml);
        html.ContentType.Charset.Should().Be("utf-8");
        html.Headers.Count(h => h.Id == HeaderId.ContentType).Should().Be(1);
        if (attach)
        {
            message.Body!.ContentType.MimeType.Should().Be("multipart/mixed");
            message.Attachments.Should().ContainSingle();
        }
    }

    /// <summary>
    /// The builder chooses the transfer encoding for the body and the server, so a second
    /// <c>Content-Transfer-Encoding</c> (base64 before the builder's 7bit) made a reader decode plain text as base64;
    /// a Content-Type that is not text, or declares another charset than the body's UTF-8, would mislabel the body.
    /// A value MimeKit cannot parse for a structured field (a Content-Type without a subtype, a malformed
    /// Content-Disposition) ended the run with "Unhandled exception: MimeKit.ParseException" and a stack trace, after the
    /// connection was made. Each is now a usage error, before anything is sent.
    /// </summary>
    [Theory]
    [InlineData("Content-Transfer-Encoding: base64", "Content-Transfer-Encoding")]
    [InlineData("Content-Type: image/png", "text/")]
    [InlineData("Content-Type: text/plain; charset=iso-8859-1", "UTF-8")]
    [InlineData("Content-Type: text", "Content-Type")]
    [InlineData("Content-Disposition: ;;;=", "Content-Disposition")]
    public async Task A_mime_field_the_built_message_cannot_honour_is_a_usage_error(string header, string expected)
    {
        using var dir = new TempDirectory();
        var saveDir = Path.Combine(dir.Path, "outbox");

        var run = await CliRunner.RunAsync("send", "-f", "a@example.test", "-t", "b@example.test", "--body", "hello", "--header", header, "--save-dir", saveDir);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().StartWith("mailpipe send: --header: ").And.Contain(expected);
        run.Output.Should().BeEmpty();
        Directory.Exists(saveDir).Should().BeFalse("nothing was sent, so the embedded server never started");
    }

    /// <summary>
    /// <c>--attach /dev/zero</c> passed the option's check (a device reports no size) and was read whole: the run ended
    /// after ≈ 2 GB with "Unhandled exception: System.OutOfMemoryException" and a stack trace. An attachment is now read
    /// only up to what is left of the 1 GiB a built message may hold (a small limit here), then refused in one line.
    /// </summary>
    [Fact]
    public void An_attachment_is_read_only_up_to_the_limit_so_a_device_that_never_ends_is_refused()
    {
        using var dir = new TempDirectory();
        var exact = dir.File("exact.bin", new byte[1000]);

        SendCommand.ReadAttachment(exact, limit: 1000).Should().HaveCount(1000);
        var over = () => SendCommand.ReadAttachment(exact, limit: 999);
        over.Should().Throw<IOException>().WithMessage("--attach *exact.bin: the attachments go past 1,073,741,824 bytes (1 GiB)*");
        var endless = () => SendCommand.ReadAttachment("/dev/zero", limit: 1 << 20);
        endless.Should().Throw<IOException>().WithMessage("--attach /dev/zero: *a device such as /dev/zero*");
    }

    /// <summary>
    /// An attachment that passes the option's check but cannot be opened (a symbolic link loop, a socket, a file the
    /// user may not read) was reported as "mailpipe send: Too many levels of symbolic links : '/x'", without saying
    /// that it was an <c>--attach</c> file.
    /// </summary>
    [Fact]
    public async Task An_attachment_that_cannot_be_opened_is_named_with_its_option()
    {
        using var dir = new TempDirectory();
        var first = Path.Combine(dir.Path, "loop1");
        var second = Path.Combine(dir.Path, "loop2");
        File.CreateSymbolicLink(first, second);
        File.CreateSymbolicLink(second, first);

        var run = await CliRunner.RunAsync("send", "-s", "127.0.0.1:1", "-f", "a@example.test", "-t", "b@example.test", "--body", "x", "--attach", first);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Trim().Split('\n').Should().ContainSingle().Which.Should().StartWith($"mailpipe send: --attach {first}: cannot read it: ").And.EndWith("nothing was sent");
        run.Output.Should().BeEmpty();
    }
}
