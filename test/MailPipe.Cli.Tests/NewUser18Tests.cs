namespace MailPipe.Cli.Tests;

/// <summary>The CLI tried as a new user would from its README (session 18): each test here failed before its fix.</summary>
public class NewUser18Tests
{
    /// <summary>
    /// <c>mailpipe send --to postmaster</c> was a usage error ("is not an address (local-part@domain)", exit 1) although
    /// RFC 5321 §4.5.1 makes <c>Postmaster</c> without a domain a recipient every server must take, in any case, and
    /// MailPipe's envelope accepts it. Now it is sent as written, in RCPT TO and in the To field of the built message.
    /// </summary>
    [Theory]
    [InlineData("postmaster", "postmaster")]
    [InlineData("Postmaster", "Postmaster")]
    [InlineData("POSTMASTER", "POSTMASTER")]
    [InlineData("<PostMaster>", "PostMaster")]
    [InlineData("The Postmaster <postmaster>", "postmaster")]
    public async Task To_postmaster_without_a_domain_is_a_recipient(string value, string sent)
    {
        byte[]? data = null;
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll, bytes =>
        {
            data = bytes;
            return "250 2.0.0 ok";
        });

        var run = await CliRunner.RunAsync("send", "-s", server.Address, "-f", "a@example.test", "-t", value, "-t", "b@example.test", "--body", "x");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        server.Commands.Should().Contain($"RCPT TO:<{sent}>").And.Contain("RCPT TO:<b@example.test>");
        System.Text.Encoding.UTF8.GetString(data!).Should().MatchRegex($"(?m)^To: .*{sent}");
    }

    /// <summary>The embedded server (no <c>--server</c>) takes it too, and saves the message.</summary>
    [Fact]
    public async Task To_postmaster_goes_to_the_embedded_server()
    {
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync("send", "-f", "a@example.test", "-t", "Postmaster", "--body", "x", "--save-dir", dir.Path);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain("to <Postmaster>");
        Directory.GetFiles(dir.Path, "*.eml").Should().ContainSingle();
    }

    /// <summary>Only a recipient may be the bare Postmaster: as a sender, or with another local part, it is still a usage error.</summary>
    [Theory]
    [InlineData("-f", "postmaster")]
    [InlineData("-t", "postmasterx")]
    [InlineData("-t", "postmaster, b@example.test")]
    public async Task Postmaster_alone_is_still_refused_as_a_sender_and_other_bare_names_as_recipients(string option, string value)
    {
        string[] args = option == "-f"
            ? ["send", "-s", "127.0.0.1:1", "-f", value, "-t", "b@example.test", "--body", "x"]
            : ["send", "-s", "127.0.0.1:1", "-f", "a@example.test", "-t", value, "--body", "x"];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().StartWith($"mailpipe send: {(option == "-f" ? "--from" : "--to")}: '{value}'");
    }

    /// <summary>
    /// <c>mailpipe send -s host --quit-after ehlo</c> (a connectivity check, as the README lists the step) said only
    /// "nothing to send: give .eml files, or --from and --to (with --subject and --body) to build a message": nothing
    /// told the user that --quit-after needs a message too, or that <c>probe</c> is the command for a server alone.
    /// </summary>
    [Fact]
    public async Task Quit_after_without_a_message_says_that_it_needs_one_and_names_probe()
    {
        var run = await CliRunner.RunAsync("send", "-s", "127.0.0.1:1", "--quit-after", "ehlo");

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().StartWith("mailpipe send: nothing to send: --quit-after ehlo still needs a message").And.Contain("'mailpipe probe'");
    }

    /// <summary>
    /// <c>mailpipe send --help</c> named the files argument twice, differently: <c>mailpipe send [&lt;files&gt;...]</c> in its
    /// usage line and <c>&lt;FILE&gt;</c> under Arguments (and in <c>mailpipe --help</c> and the README's <c>FILE...</c>).
    /// </summary>
    [Fact]
    public async Task Send_help_names_the_files_argument_FILE_everywhere()
    {
        var run = await CliRunner.RunAsync("send", "--help");

        run.ExitCode.Should().Be(0);
        run.Output.Should().Contain("mailpipe send [<FILE>...] [options]").And.Contain("  <FILE>  ").And.NotContain("<files>");
    }
}
