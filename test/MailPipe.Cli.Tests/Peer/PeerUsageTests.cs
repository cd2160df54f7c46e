namespace MailPipe.Cli.Tests.Peer;

/// <summary>Usage errors as documented: exit 1, one line (plus the pointer to --help), nothing connects, no stack trace.</summary>
[Collection(PeerCollection.Name)]
public class PeerUsageTests
{
    private static void IsUsageError(ToolRun run, string mentions)
    {
        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().BeEmpty(run.ToString());
        run.Error.Should().Contain(mentions);
        run.Error.Should().NotContain("   at ", "no stack trace");
        run.ErrorLines.Length.Should().BeLessThanOrEqualTo(2, run.Error);
    }

    [Theory]
    [InlineData("--atach", "--attach")]
    [InlineData("--form", "--from")]
    [InlineData("--startls", "--starttls")]
    public async Task A_typo_names_the_nearest_option(string typo, string nearest)
    {
        var run = await Tool.RunAsync("send", typo, "x", "-s", $"127.0.0.1:{Servers.Closed()}", "-f", "a@example.test", "-t", "b@example.test");

        IsUsageError(run, nearest);
    }

    [Theory]
    [InlineData("bob@, carol@example.test")]
    [InlineData("bob@example.test, carol@example.test")]
    [InlineData("jdoe")]
    [InlineData("")]
    public async Task A_to_value_that_is_not_one_mailbox_is_a_usage_error(string value)
    {
        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{Servers.Closed()}", "-f", "a@example.test", "-t", value, "--body", "x");

        IsUsageError(run, "--to");
    }

    [Theory]
    [InlineData("-t")]
    [InlineData("-f")]
    public async Task An_address_argument_that_is_not_UTF8_is_a_usage_error_not_mail_to_a_replacement_character(string option)
    {
        // A terminal in Latin-1 gives 'jürgen' as the bytes j FC rgen; .NET decodes the argument as UTF-8 and makes the
        // FC a U+FFFD. Before, the message went to <j\uFFFDrgen@example.test>, a mailbox the user never wrote (Postfix
        // delivered it), exit 0.
        var tool = Tool.StartInfo([]);
        if (tool.ArgumentList.Count > 0)
        {
            return; // run through dotnet: the shell form needs the apphost
        }

        var other = option == "-t" ? "-f" : "-t";
        var unique = Guid.NewGuid().ToString("N");
        var info = new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", $"exec \"$0\" send -s \"$1\" {option} \"$(printf 'j\\374rgen-%s@example.test' \"$2\")\" {other} a@example.test --body x", tool.FileName, Servers.At(Servers.Postfix), unique])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = System.Diagnostics.Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();

        IsUsageError(new ToolRun(process.ExitCode, await output, await error), option == "-t" ? "--to" : "--from");
        (await error).Should().Contain("UTF-8");
        Directory.Exists(Path.Combine(Servers.Maildir, $"j\uFFFDrgen-{unique}@example.test")).Should().BeFalse();
    }

    [Fact]
    public async Task A_header_To_that_is_not_UTF8_is_a_usage_error_not_a_recipient()
    {
        // Before: --header $'To: j\xfcrgen@…' on a file without To made RCPT TO:<j?rgen@…>, delivered by Postfix, exit 0.
        var tool = Tool.StartInfo([]);
        if (tool.ArgumentList.Count > 0)
        {
            return;
        }

        using var files = new Files();
        var file = files.Write("nt.eml", "From: a@example.test\r\nSubject: x\r\n\r\nx\r\n");
        var unique = Guid.NewGuid().ToString("N");
        var info = new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", "exec \"$0\" send -s \"$1\" --header \"$(printf 'To: j\\374rgen-%s@example.test' \"$2\")\" \"$3\"", tool.FileName, Servers.At(Servers.Postfix), unique, file])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = System.Diagnostics.Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();

        IsUsageError(new ToolRun(process.ExitCode, await output, await error), "--header");
        Directory.GetDirectories(Servers.Maildir, $"j*rgen-{unique}@example.test").Should().BeEmpty();
    }

    [Fact]
    public async Task Postmaster_is_refused_as_a_sender()
    {
        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{Servers.Closed()}", "-f", "postmaster", "-t", "b@example.test", "--body", "x");

        IsUsageError(run, "--from");
    }

    [Fact]
    public async Task Postmaster_alone_is_a_recipient_Postfix_takes()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", "PostMaster", "--quit-after", "rcpt", "--trace", "--log-addresses");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().Contain("C: RCPT TO:<PostMaster>");
    }

    [Fact]
    public async Task A_built_message_without_from_is_a_usage_error()
    {
        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{Servers.Closed()}", "-t", "b@example.test", "--body", "x");

        IsUsageError(run, "--from");
    }

    [Fact]
    public async Task A_line_break_in_the_subject_is_a_usage_error()
    {
        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{Servers.Closed()}", "-f", "a@example.test", "-t", "b@example.test", "--subject", "a\nBcc: x@example.test");

        IsUsageError(run, "--subject");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("2d")]
    [InlineData("abc")]
    public async Task A_bad_timeout_is_a_usage_error_naming_it(string value)
    {
        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{Servers.Closed()}", "-f", "a@example.test", "-t", "b@example.test", "--timeout", value);

        IsUsageError(run, "--timeout");
    }

    [Fact]
    public async Task A_bare_IPv6_address_that_could_end_in_a_port_names_both_readings()
    {
        var run = await Tool.RunAsync("send", "-s", "::1:2525", "-f", "a@example.test", "-t", "b@example.test");

        IsUsageError(run, "[::1]:2525");
    }

    [Fact]
    public async Task An_empty_file_argument_is_a_usage_error()
    {
        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{Servers.Closed()}", "");

        run.ExitCode.Should().Be(1, run.ToString());
        run.Error.Should().NotContain("   at ");
    }

    [Fact]
    public async Task A_file_named_with_a_leading_dash_goes_after_double_dash()
    {
        using var files = new Files();
        var rcpt = Servers.Unique("dash");
        files.Write("-odd.eml", $"From: a@example.test\r\nTo: {rcpt}\r\n\r\nx\r\n");

        var run = await Tool.RunAsync(["send", "-s", Servers.At(Servers.Postfix), "--", "-odd.eml"], null, workingDirectory: files.Path);

        run.ExitCode.Should().Be(0, run.ToString());
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
    }

    [Fact]
    public async Task Quit_after_without_a_message_is_a_usage_error_pointing_at_probe()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--quit-after", "ehlo");

        IsUsageError(run, "probe");
    }

    [Fact]
    public async Task Save_dir_with_server_is_a_usage_error()
    {
        using var files = new Files();

        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{Servers.Closed()}", "--save-dir", files.Path, "-f", "a@example.test", "-t", "b@example.test");

        IsUsageError(run, "--save-dir");
    }

    [Fact]
    public async Task Tls_options_without_server_are_a_usage_error()
    {
        using var files = new Files();

        var run = await Tool.RunAsync(["send", "--starttls", "-f", "a@example.test", "-t", "b@example.test"], null, workingDirectory: files.Path);

        IsUsageError(run, "--server");
        Directory.Exists(Path.Combine(files.Path, "mailpipe-outbox")).Should().BeFalse();
    }

    [Theory]
    [InlineData("--envid", "a b", "--envid")]
    [InlineData("--notify", "NEVER,SUCCESS", "--notify")]
    [InlineData("--helo-name", "bad name", "--helo-name")]
    [InlineData("--header", "Content-Transfer-Encoding: 7bit", "Content-Transfer-Encoding")]
    public async Task A_bad_option_value_is_a_usage_error(string option, string value, string named)
    {
        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{Servers.Closed()}", "-f", "a@example.test", "-t", "b@example.test", option, value);

        IsUsageError(run, named);
    }

    [Theory]
    [InlineData("")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:smtp")]
    public async Task A_bad_server_value_is_a_usage_error_naming_server(string value)
    {
        var run = await Tool.RunAsync("send", "-s", value, "-f", "a@example.test", "-t", "b@example.test");

        IsUsageError(run, "--server");
    }

    [Fact]
    public async Task No_command_is_exit_1_and_version_is_exit_0()
    {
        var none = await Tool.RunAsync();
        var version = await Tool.RunAsync("--version");
        var typo = await Tool.RunAsync("sned", "-f", "a@example.test");

        none.ExitCode.Should().Be(1, none.ToString());
        version.ExitCode.Should().Be(0, version.ToString());
        version.Output.Should().MatchRegex(@"^\d+\.\d+\.\d+");
        typo.ExitCode.Should().Be(1, typo.ToString());
        typo.Error.Should().Contain("unknown command 'sned' (did you mean send?)");
    }

    [Fact]
    public async Task Send_without_anything_to_send_says_what_to_give()
    {
        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{Servers.Closed()}");

        IsUsageError(run, "--from");
    }

    [Fact]
    public async Task Json_stays_valid_for_a_file_name_that_is_not_UTF8()
    {
        var tool = Tool.StartInfo([]);
        if (tool.ArgumentList.Count > 0)
        {
            return;
        }

        using var files = new Files();
        var dir = files.Sub("names");
        files.Write("names/good.eml", "From: a@example.test\r\nTo: b@example.test\r\n\r\nx\r\n");
        var info = new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", "printf 'From: a@example.test\\r\\nTo: b@example.test\\r\\n\\r\\nx\\r\\n' > \"$2/$(printf '\\377')bad.eml\" && exec \"$0\" send -s \"$1\" --json \"$2\"", tool.FileName, Servers.At(Servers.Sink), dir])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = System.Diagnostics.Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();

        var run = new ToolRun(process.ExitCode, output, await process.StandardError.ReadToEndAsync());
        run.ExitCode.Should().Be(1, run.ToString());
        run.Json.Should().HaveCount(3);
        run.Json[0].GetProperty("outcome").GetString().Should().Be("notSent");
        run.Json[0].GetProperty("error").GetString().Should().Contain("not valid UTF-8");
        run.Json[1].GetProperty("outcome").GetString().Should().Be("accepted");
    }

    [Fact]
    public async Task Help_exits_0_and_lists_the_commands()
    {
        var run = await Tool.RunAsync("--help");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("send").And.Contain("probe").And.Contain("serve").And.Contain("Exit codes: 0 every message accepted");
    }

    [Fact]
    public async Task Standard_output_closed_does_nothing_and_exits_1()
    {
        // 1>&- from a shell: the tool must not send what it cannot report.
        var rcpt = Servers.Unique("closedout");
        var info = new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", "exec \"$0\" send -s \"$1\" -f a@example.test -t \"$2\" --body x >&-", Tool.StartInfo([]).FileName, Servers.At(Servers.Postfix), rcpt])
        {
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Tool.StartInfo([]).ArgumentList.Count > 0)
        {
            return; // run through dotnet: the shell form above needs the apphost
        }

        using var process = System.Diagnostics.Process.Start(info)!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();

        process.ExitCode.Should().Be(1, error);
        Servers.PostfixCount(rcpt).Should().Be(0);
    }
}
