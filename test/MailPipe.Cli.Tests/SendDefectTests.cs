using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>The defects of issue #15, each with the run that showed it.</summary>
public class SendDefectTests
{
    private const string Message = "From: a@example.test\r\nTo: b@example.test\r\nSubject: t\r\n\r\nbody\r\n";

    [Theory]
    [InlineData("--bogus")]
    [InlineData("-Z")]
    [InlineData("--atach")]
    [InlineData("--bogus=1")]
    public async Task An_unknown_option_is_a_usage_error_and_nothing_connects(string option)
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);
        var other = dir.File("hostname", "vm\n");

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", option, other, file);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Output.Should().BeEmpty("nothing is sent and no result is printed");
        run.Error.Should().Contain($"unknown option '{option.Split('=')[0]}'");
        await Task.Delay(100); // lets a connection that should not exist reach the listener
        server.Connected.Should().BeFalse();
    }

    [Fact]
    public async Task A_typo_names_the_nearest_option()
    {
        var run = await CliRunner.RunAsync("send", "--from", "a@example.test", "--to", "b@example.test", "--atach", "x");

        run.ExitCode.Should().Be(1);
        run.Error.Should().Contain("unknown option '--atach' (did you mean --attach?)");
    }

    [Fact]
    public async Task After_double_dash_a_name_with_a_dash_is_a_file()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var file = dir.File("-dash.eml", Message);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--", file);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        server.Messages.Should().ContainSingle();
    }

    [Theory]
    [InlineData("send", "30", 30_000)]
    [InlineData("send", "30s", 30_000)]
    [InlineData("send", "3m", 180_000)]
    [InlineData("send", "500ms", 500)]
    [InlineData("send", "2.5", 2_500)]
    [InlineData("probe", "30s", 30_000)]
    [InlineData("probe", "500ms", 500)]
    public void Timeout_takes_seconds_or_a_unit(string command, string value, int milliseconds)
    {
        var root = Program.CreateRootCommand();
        string[] args = command == "probe"
            ? ["probe", "--server", "127.0.0.1:25", "--timeout", value]
            : ["send", "--server", "127.0.0.1:25", "--from", "a@example.test", "--to", "b@example.test", "--timeout", value];
        var parse = root.Parse(args);

        parse.Errors.Should().BeEmpty();
        var option = parse.CommandResult.Command.Options.Single(o => o.Name == "--timeout");
        parse.GetValue((System.CommandLine.Option<TimeSpan?>)option).Should().Be(TimeSpan.FromMilliseconds(milliseconds));
    }

    [Theory]
    [InlineData("send", "30x")]
    [InlineData("send", "0")]
    [InlineData("send", "-1")]
    [InlineData("send", "s")]
    [InlineData("send", "2d")]
    [InlineData("send", "25h")]
    [InlineData("probe", "30x")]
    [InlineData("probe", "1e3")]
    public async Task A_bad_timeout_is_a_usage_error_naming_the_option(string command, string value)
    {
        string[] args = command == "probe"
            ? ["probe", "--server", "127.0.0.1:1", "--timeout", value]
            : ["send", "--server", "127.0.0.1:1", "--from", "a@example.test", "--to", "b@example.test", "--timeout", value];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Error);
        run.Error.Should().Contain($"--timeout: '{value}' is not a duration").And.NotContain("Exception").And.NotContain("   at ");
        run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().HaveCount(2, "one line for the problem, one pointing at --help");
    }

    [Theory]
    [InlineData("--to", "b@example.test\nevil@example.test")]
    [InlineData("--to", "b@example.test\revil@example.test")]
    [InlineData("--to", "b@example.test\0")]
    [InlineData("--to", "b@example.test\r\nRCPT TO:<evil@example.test>")]
    [InlineData("--from", "a@example.test\nevil@example.test")]
    [InlineData("--from", "a@example.test\r")]
    [InlineData("-t", "b@example.test\nevil@example.test")]
    public async Task A_line_break_or_NUL_in_an_address_is_a_usage_error_before_anything_is_sent(string option, string value)
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        string[] args = option is "--from"
            ? ["send", "--server", server.Address, "--from", value, "--to", "b@example.test"]
            : ["send", "--server", server.Address, "--from", "a@example.test", option, value];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().Contain("line break (CR or LF) or NUL");
        run.Error.Should().NotContain("\r").And.NotContain("\0");
        await Task.Delay(100);
        server.Connected.Should().BeFalse();
    }

    [Theory]
    [InlineData("b@example.test, evil@example.test")]
    [InlineData("b@example.test evil@example.test")]
    [InlineData("b@example.test;evil@example.test")]
    [InlineData("group: b@example.test, evil@example.test;")]
    [InlineData("not an address")]
    [InlineData("b@")]
    [InlineData("@example.test")]
    [InlineData("a..b@example.test")]
    public async Task An_address_value_is_exactly_one_mailbox(string value)
    {
        var run = await CliRunner.RunAsync("send", "--server", "127.0.0.1:1", "--from", "a@example.test", "--to", value);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().StartWith("mailpipe send: --to: ");
    }

    [Theory]
    [InlineData("b@example.test", "b@example.test")]
    [InlineData("<b@example.test>", "b@example.test")]
    [InlineData("Bob B. <b@example.test>", "b@example.test")]
    [InlineData("\"Bob, the builder\" <b@example.test>", "b@example.test")]
    [InlineData("\"john smith\"@example.test", "\"john smith\"@example.test")]
    [InlineData("b@[127.0.0.1]", "b@[127.0.0.1]")]
    [InlineData("b@[IPv6:::1]", "b@[IPv6:::1]")]
    [InlineData("jörg@bücher.example", "jörg@bücher.example")]
    public void One_mailbox_in_the_forms_people_write(string value, string address)
    {
        MailboxArgument.TryParse(value, allowNullPath: false, out var parsed, out _, out var problem).Should().BeTrue(problem);
        parsed.Should().Be(address);
    }

    [Fact]
    public async Task A_quoted_local_part_reaches_the_wire_as_one_recipient()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "\"john smith\"@example.test", "--body", "x");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        server.Commands.Where(c => c.StartsWith("RCPT", StringComparison.Ordinal)).Should().Equal("RCPT TO:<\"john smith\"@example.test>");
    }

    [Fact]
    public async Task A_refused_connection_is_said_once_on_one_line()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var run = await CliRunner.RunAsync("send", "--server", $"127.0.0.1:{port}", "--from", "a@example.test", "--to", "b@example.test", "--to", "c@example.test");

        run.ExitCode.Should().Be(2);
        run.Error.Should().Be($"mailpipe send: cannot connect to 127.0.0.1:{port}: connection refused\n");
        // Once per stream: standard output (a file here) ends with it in the summary, standard error says it once; on
        // one terminal it is said once in all (Serve17Tests.The_summary_says_why_the_connection_was_not_usable).
        run.Output.Split("connection refused").Should().HaveCount(2, "the summary says it once: " + run.Output);
        run.Output.Should().NotContain("no reply", "nothing was sent, so no recipient is listed as unanswered");
    }

    [Fact]
    public async Task A_refused_connection_in_json_still_carries_the_reason_per_message()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var run = await CliRunner.RunAsync("send", "--server", $"127.0.0.1:{port}", "--json", "--from", "a@example.test", "--to", "b@example.test");

        using var message = JsonDocument.Parse(run.OutputLines[0]);
        message.RootElement.GetProperty("error").GetString().Should().Be($"cannot connect to 127.0.0.1:{port}: connection refused");
    }

    [Theory]
    [InlineData("--to|b@example.test", "--from is missing")]
    [InlineData("--from|a@example.test", "--to is missing")]
    [InlineData("", "nothing to send")]
    public async Task A_missing_address_is_one_clear_line_not_the_help_text(string args, string expected)
    {
        var run = await CliRunner.RunAsync(["send", "--server", "127.0.0.1:1", .. args.Split('|', StringSplitOptions.RemoveEmptyEntries)]);

        run.ExitCode.Should().Be(1);
        run.Error.Should().StartWith($"mailpipe send: {expected}");
        run.Error.Should().NotContain("Usage:").And.NotContain("Options:");
        run.Output.Should().BeEmpty();
    }

    [Fact]
    public async Task The_default_EHLO_name_is_never_a_bare_host_name()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", "--body", "x");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var name = server.Commands.First(c => c.StartsWith("EHLO ", StringComparison.Ordinal))[5..];
        name.Should().Match(n => n == "[127.0.0.1]" || (n.Contains('.') && !n.StartsWith("localhost", StringComparison.OrdinalIgnoreCase)), "a fully qualified name or the address literal of the local end");
        if (!Dns.GetHostName().Contains('.', StringComparison.Ordinal))
        {
            name.Should().NotBe(Dns.GetHostName(), "servers refuse a bare host name");
        }
    }
}
