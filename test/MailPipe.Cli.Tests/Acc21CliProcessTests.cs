using MailPipe.Cli.Tests.Peer;

namespace MailPipe.Cli.Tests;

/// <summary>
/// Issue #15's defects re-checked as a reviewer does: the built <c>mailpipe</c> run as a separate process against the
/// real Postfix (127.0.0.1:2525), and what reached its Maildir.
/// </summary>
[Collection(PeerCollection.Name)]
public class Acc21CliProcessTests
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(2);

    private static string Eml(string to) => $"From: sender@example.test\r\nTo: {to}\r\nSubject: acc21\r\n\r\nbody\r\n";

    private static void NoStackTrace(ToolRun run)
    {
        run.Error.Should().NotContain("Unhandled").And.NotContain("   at ").And.NotContain("Exception", run.ToString());
        run.ExitCode.Should().NotBe(134, "an unhandled exception aborts the process");
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("-Z")]
    [InlineData("--atach")]
    public async Task An_unknown_option_before_a_file_is_exit_1_and_neither_the_file_nor_the_option_value_is_sent(string option)
    {
        var rcpt = Servers.Unique("acc21-unknown");
        using var files = new Files();
        var hostname = files.Write("hostname", $"From: sender@example.test\r\nTo: {rcpt}\r\nSubject: not me\r\n\r\nvm\r\n");
        var message = files.Write("m.eml", Eml(rcpt));

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--from", "sender@example.test", "--to", rcpt, option, hostname, message);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().BeEmpty("no message is reported, sent or not: " + run);
        run.Error.Should().Contain($"unknown option '{option}'");
        NoStackTrace(run);
        await Task.Delay(Settle);
        Servers.PostfixCount(rcpt).Should().Be(0, "nothing may be delivered on a usage error");
    }

    [Theory]
    [InlineData("30")]
    [InlineData("30s")]
    [InlineData("3m")]
    [InlineData("5000ms")]
    public async Task Send_with_a_timeout_in_each_documented_form_delivers_once_and_exits_0(string timeout)
    {
        var rcpt = Servers.Unique("acc21-timeout");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "sender@example.test", "-t", rcpt, "--subject", "timeout " + timeout, "--body", "x", "--timeout", timeout);

        run.ExitCode.Should().Be(0, run.ToString());
        NoStackTrace(run);
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
        await Task.Delay(Settle);
        Servers.PostfixCount(rcpt).Should().Be(1);
    }

    [Theory]
    [InlineData("30s")]
    [InlineData("3m")]
    public async Task Probe_with_a_timeout_with_a_unit_exits_0(string timeout)
    {
        // probe tries STARTTLS when offered: the test certificate is trusted with --ca-file.
        var run = await Tool.RunAsync("probe", "-s", Servers.At(Servers.Postfix), "--ca-file", Servers.Certificate, "--timeout", timeout);

        run.ExitCode.Should().Be(0, run.ToString());
        NoStackTrace(run);
        run.Output.Should().Contain("PIPELINING");
    }

    [Theory]
    [InlineData("send", "30x")]
    [InlineData("send", "2d")]
    [InlineData("probe", "30x")]
    public async Task A_timeout_that_is_no_duration_is_exit_1_naming_the_option_without_a_stack_trace(string command, string timeout)
    {
        var rcpt = Servers.Unique("acc21-badtimeout");
        string[] args = command == "probe"
            ? ["probe", "-s", Servers.At(Servers.Postfix), "--timeout", timeout]
            : ["send", "-s", Servers.At(Servers.Postfix), "-f", "sender@example.test", "-t", rcpt, "--body", "x", "--timeout", timeout];

        var run = await Tool.RunAsync(args);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Error.Should().Contain("--timeout");
        NoStackTrace(run);
        if (command == "send")
        {
            await Task.Delay(Settle);
            Servers.PostfixCount(rcpt).Should().Be(0);
        }
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\r")]
    public async Task A_line_break_inside_one_to_value_adds_no_recipient_and_sends_nothing(string lineBreak)
    {
        var first = Servers.Unique("acc21-first");
        var second = Servers.Unique("acc21-second");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "sender@example.test", "--to", first + lineBreak + second, "--body", "x");

        run.ExitCode.Should().Be(1, run.ToString());
        NoStackTrace(run);
        run.ErrorLines.Should().HaveCountLessThanOrEqualTo(2, "one line for the problem (and at most a pointer to --help): " + run);
        await Task.Delay(Settle);
        Servers.PostfixCount(first).Should().Be(0);
        Servers.PostfixCount(second).Should().Be(0);
    }

    [Fact]
    public async Task A_NUL_in_from_is_exit_1_and_nothing_is_sent()
    {
        // A NUL cannot be passed in a process argument; the environment cannot carry one either. The in-process
        // SendDefectTests cover NUL; here: a CR in --from.
        var rcpt = Servers.Unique("acc21-crfrom");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "sender@example.test\rRCPT TO:<x@example.test>", "-t", rcpt, "--body", "x");

        run.ExitCode.Should().Be(1, run.ToString());
        NoStackTrace(run);
        await Task.Delay(Settle);
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task Several_recipients_by_repeating_to_each_get_exactly_one_copy()
    {
        var first = Servers.Unique("acc21-rep1");
        var second = Servers.Unique("acc21-rep2");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "sender@example.test", "-t", first, "-t", second, "--body", "x");

        run.ExitCode.Should().Be(0, run.ToString());
        (await Servers.PostfixMessagesAsync(first)).Should().ContainSingle();
        (await Servers.PostfixMessagesAsync(second)).Should().ContainSingle();
        await Task.Delay(Settle);
        Servers.PostfixCount(first).Should().Be(1);
        Servers.PostfixCount(second).Should().Be(1);
    }
}
