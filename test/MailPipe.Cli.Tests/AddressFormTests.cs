namespace MailPipe.Cli.Tests;

/// <summary>Addresses reach the envelope in the form they were written (session 12 review): each test here failed before its fix.</summary>
public class AddressFormTests
{
    private const string ALabel = "b@xn--bcher-kva.example";

    /// <summary>
    /// An internationalized domain written as its ASCII A-label (<c>xn--bcher-kva.example</c>, as every system without
    /// SMTPUTF8 writes it) was decoded by MimeKit to its Unicode U-label: to a server offering SMTPUTF8 the all-ASCII
    /// message went as <c>MAIL ... SMTPUTF8</c> and <c>RCPT TO:&lt;b@bücher.example&gt;</c>, an address the user never
    /// wrote and a message that the next hop must bounce when it lacks SMTPUTF8 (RFC 6531 §3.4). The README promises
    /// SMTPUTF8 "only when an address is not ASCII".
    /// </summary>
    [Theory]
    [InlineData("option")]
    [InlineData("field")]
    [InlineData("sender")]
    public async Task An_A_label_domain_goes_as_written_without_SMTPUTF8(string where)
    {
        using var dir = new TempDirectory();
        await using var server = new ScriptedSmtpServer(
            "220 modern.test",
            command => command.StartsWith("EHLO", StringComparison.Ordinal) ? "250-modern.test\r\n250-8BITMIME\r\n250 SMTPUTF8" : ScriptedSmtpServer.AcceptAll(command));
        var file = dir.File("m.eml", $"From: a@example.test\r\nTo: Bob <{ALabel}>\r\nSubject: s\r\n\r\nhi\r\n");
        string[] args = where switch
        {
            "option" => ["send", "-s", server.Address, "-f", "a@example.test", "-t", ALabel, "--body", "x"],
            "field" => ["send", "-s", server.Address, file],
            _ => ["send", "-s", server.Address, "-f", "a@xn--bcher-kva.example", "-t", "c@example.test", "--body", "x"],
        };

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var commands = server.Commands.ToArray();
        commands.Should().NotContain(c => c.Contains("SMTPUTF8", StringComparison.Ordinal) || c.Contains('ü', StringComparison.Ordinal), string.Join(" | ", commands));
        commands.Should().Contain(where == "sender" ? "MAIL FROM:<a@xn--bcher-kva.example>" : $"RCPT TO:<{ALabel}>");
    }

    /// <summary>A domain written in Unicode stays Unicode (sent with SMTPUTF8 to a server that offers it), as before.</summary>
    [Fact]
    public async Task A_U_label_domain_still_goes_as_written()
    {
        await using var server = new ScriptedSmtpServer(
            "220 modern.test",
            command => command.StartsWith("EHLO", StringComparison.Ordinal) ? "250-modern.test\r\n250-8BITMIME\r\n250 SMTPUTF8" : ScriptedSmtpServer.AcceptAll(command));

        var run = await CliRunner.RunAsync("send", "-s", server.Address, "-f", "a@example.test", "-t", "jörg@bücher.example", "--body", "x");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        server.Commands.Should().Contain("RCPT TO:<jörg@bücher.example>");
    }

    /// <summary>
    /// <c>--helo-name bücher.example</c> was a usage error ("is not a domain name"), although it is one and MailPipe
    /// sends such a name as its A-labels (EHLO comes before the client knows of SMTPUTF8, RFC 6531 §3.7.1); a label
    /// with no A-label form is still refused.
    /// </summary>
    [Theory]
    [InlineData("bücher.example", "EHLO xn--bcher-kva.example")]
    [InlineData("mail.παράδειγμα.δοκιμή", "EHLO mail.xn--hxajbheg2az3al.xn--jxalpdlp")]
    [InlineData("a\u200Fb.example", null)]
    public async Task A_unicode_helo_name_goes_as_its_A_labels(string name, string? ehlo)
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);

        var run = await CliRunner.RunAsync("probe", "--server", server.Address, "--helo-name", name);

        if (ehlo is null)
        {
            run.ExitCode.Should().Be(1, run.Output + run.Error);
            run.Error.Should().Contain("--helo-name");
            server.Connected.Should().BeFalse();
        }
        else
        {
            run.ExitCode.Should().Be(0, run.Output + run.Error);
            server.Commands.Should().Contain(ehlo);
        }
    }
}
