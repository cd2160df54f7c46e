using MailPipe.Cli.Tests.Peer;

namespace MailPipe.Cli.Tests;

/// <summary>
/// Issue #17's real-world behaviours 1, 2 and 5 re-checked through the <c>mailpipe</c> CLI run as a separate process
/// (the report was "closes (exit 8)"), against scripted loopback servers: exit code, output, what was sent.
/// </summary>
[Collection(PeerCollection.Name)]
public class Acc21RobustnessCliTests
{
    [Fact]
    public async Task Blank_lines_after_the_greeting_and_after_a_multiline_EHLO_reply_are_skipped_and_the_message_goes_exit_0()
    {
        var received = 0;
        await using var server = new ScriptedSmtpServer(
            "220 scripted.test ESMTP\r\n\r\n",
            command => command.ToUpperInvariant() switch
            {
                var c when c.StartsWith("EHLO", StringComparison.Ordinal) => "250-scripted.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n\r\n",
                "DATA" => "354 go ahead",
                "QUIT" => "221 bye",
                _ => "250 ok",
            },
            _ =>
            {
                Interlocked.Increment(ref received);
                return "250 2.0.0 queued";
            });

        var run = await Tool.RunAsync("send", "-s", server.Address, "-f", "a@example.test", "-t", "b@example.test", "--body", "x");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("accepted");
        Volatile.Read(ref received).Should().Be(1);
    }

    [Fact]
    public async Task A_221_greeting_is_a_refused_greeting_exit_2_with_the_servers_text_and_no_command_is_sent()
    {
        await using var server = new ScriptedSmtpServer("221 scripted.test acc21-closing-text, try later", ScriptedSmtpServer.AcceptAll);

        var run = await Tool.RunAsync("send", "-s", server.Address, "-f", "a@example.test", "-t", "b@example.test", "--body", "x");

        run.ExitCode.Should().Be(2, "a refused greeting is a connection failure (README exit codes): " + run);
        (run.Output + run.Error).Should().Contain("acc21-closing-text", "the server's text is kept");
        run.Error.Should().NotContain("   at ");
        await Task.Delay(200);
        server.Commands.Should().NotContain(c => c.StartsWith("EHLO", StringComparison.OrdinalIgnoreCase), "only 220 is ready");
        server.Commands.Should().NotContain(c => c.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [InlineData("127.0.0.1", "[127.0.0.1]")]
    [InlineData("::1", "[IPv6:::1]")]
    [InlineData("::ffff:127.0.0.1", "[127.0.0.1]")]
    public async Task A_bare_IP_helo_name_goes_out_as_an_address_literal(string given, string sent)
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);

        var run = await Tool.RunAsync("send", "-s", server.Address, "-f", "a@example.test", "-t", "b@example.test", "--helo-name", given, "--body", "x");

        run.ExitCode.Should().Be(0, run.ToString());
        server.Commands.First(c => c.StartsWith("EHLO ", StringComparison.Ordinal)).Should().Be("EHLO " + sent);
    }
}
