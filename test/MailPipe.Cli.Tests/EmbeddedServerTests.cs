using System.Text;
using System.Text.RegularExpressions;
using MimeKit;

namespace MailPipe.Cli.Tests;

public class EmbeddedServerTests
{
    [Fact]
    public async Task Readme_first_command_saves_the_message_and_says_where()
    {
        using var dir = new TempDirectory();
        var saveDir = Path.Combine(dir.Path, "outbox");

        var run = await CliRunner.RunAsync("send", "--from", "a@example.test", "--to", "b@example.test", "--subject", "hi", "--body", "hello", "--save-dir", saveDir);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var files = Directory.GetFiles(saveDir);
        files.Should().ContainSingle();
        Path.GetFileName(files[0]).Should().MatchRegex(@"^\d{8}T\d{6}Z-1\.eml$");
        run.Output.Should().Contain("accepted").And.Contain($"saved to {files[0]}");
        run.Error.Should().Contain("embedded SMTP server on 127.0.0.1:");

        var bytes = await File.ReadAllBytesAsync(files[0]);
        var text = Encoding.UTF8.GetString(bytes);
        text.Should().StartWith("From: a@example.test\r\n").And.EndWith("\r\n\r\nhello\r\n");
        using var message = MimeMessage.Load(new MemoryStream(bytes));
        message.From.Mailboxes.Single().Address.Should().Be("a@example.test");
        message.To.Mailboxes.Single().Address.Should().Be("b@example.test");
        message.Subject.Should().Be("hi");
        message.TextBody!.ReplaceLineEndings("\n").Should().Be("hello\n");
        message.MessageId.Should().NotBeNullOrEmpty();
    }

    [Fact]
    public async Task Files_go_over_one_connection_byte_for_byte_with_Bcc_removed()
    {
        using var dir = new TempDirectory();
        var saveDir = Path.Combine(dir.Path, "outbox");
        var first = dir.File("one.eml", "From: Jane <jane@example.test>\r\nTo: bob@example.test\r\nBcc: hidden@example.test\r\nSubject: one\r\n\r\n.leading dot\r\nBcc: body line\r\n");
        var second = dir.File("two.eml", "From: jane@example.test\r\nTo: \"Smith, Carol\" <carol@example.test>\r\nSubject: =?utf-8?q?zw=C3=B6lf?=\r\n\r\nGrüße\r\n");

        var run = await CliRunner.RunAsync("send", first, second, "--save-dir", saveDir);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var saved = Directory.GetFiles(saveDir).OrderBy(f => Regex.Match(f, @"-(\d+)\.eml$").Groups[1].Value.PadLeft(5, '0')).ToArray();
        saved.Should().HaveCount(2);
        (await File.ReadAllTextAsync(saved[0])).Should().Be("From: Jane <jane@example.test>\r\nTo: bob@example.test\r\nSubject: one\r\n\r\n.leading dot\r\nBcc: body line\r\n");
        (await File.ReadAllBytesAsync(saved[1])).Should().Equal(await File.ReadAllBytesAsync(second));
        run.Output.Should().Contain($"{first}: accepted").And.Contain($"{second}: accepted").And.Contain("to <hidden@example.test>: 250");
    }
}
