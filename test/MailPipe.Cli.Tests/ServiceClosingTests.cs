using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>
/// A 421 reply is the server closing the transmission channel (RFC 5321 §3.8), at whatever stage it comes: not a
/// verdict on the sender, the recipients or the message. Nothing was taken, so it exits 2 (connection failure:
/// nothing can have been delivered, try again later) at every stage, as it already did for the greeting, EHLO and AUTH.
/// </summary>
public class ServiceClosingTests
{
    private const string Closing = "421 4.3.2 shutting down";
    private const string Message = "From: a@example.test\r\nTo: b@example.test, c@example.test\r\nSubject: t\r\n\r\nbody\r\n";

    /// <summary>
    /// Before, a 421 to MAIL exited 4 (sender refused), to every RCPT 5 (no recipient accepted), to DATA or the end of
    /// data 6 (message refused), while a 421 to AUTH exited 2: a script could not tell "try later" from "fix the envelope".
    /// A 421 to the end of data is sent again on a new connection unless <c>--reconnect 0</c> (Reconnect20Tests): this
    /// one-connection server is run with it.
    /// </summary>
    [Theory]
    [InlineData("greeting", false)]
    [InlineData("EHLO", false)]
    [InlineData("MAIL", false)]
    [InlineData("MAIL", true)]
    [InlineData("RCPT", false)]
    [InlineData("RCPT", true)]
    [InlineData("DATA", false)]
    [InlineData("DATA", true)]
    [InlineData("end of data", false)]
    [InlineData("end of data", true)]
    public async Task A_421_at_any_stage_exits_2(string stage, bool pipelining)
    {
        await using var server = new ScriptedSmtpServer(
            stage == "greeting" ? Closing : "220 scripted.test",
            command => command.ToUpperInvariant() switch
            {
                var c when c.StartsWith(stage, StringComparison.Ordinal) => Closing,
                var c when c.StartsWith("EHLO", StringComparison.Ordinal) && pipelining => "250-scripted.test\r\n250-PIPELINING\r\n250 8BITMIME",
                var c => ScriptedSmtpServer.AcceptAll(c),
            },
            _ => stage == "end of data" ? Closing : "250 2.0.0 queued");
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. (stage == "end of data" ? new[] { "--reconnect", "0" } : []), file, file]);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
        using var first = JsonDocument.Parse(run.OutputLines[0]);
        first.RootElement.GetProperty("exitCode").GetInt32().Should().Be(ExitCodes.ConnectionFailed);
        first.RootElement.GetProperty("outcome").GetString().Should().NotBe("accepted").And.NotBe("unknown");
        using var second = JsonDocument.Parse(run.OutputLines[1]);
        second.RootElement.GetProperty("outcome").GetString().Should().Be("notSent");
        second.RootElement.GetProperty("exitCode").GetInt32().Should().Be(ExitCodes.ConnectionFailed);
    }

    /// <summary><c>--quit-after mail|rcpt</c> (the "does this recipient exist" check) exited 4 or 5 for a 421 as well.</summary>
    [Theory]
    [InlineData("mail", "MAIL")]
    [InlineData("rcpt", "MAIL")]
    [InlineData("rcpt", "RCPT")]
    public async Task A_421_to_the_envelope_check_of_quit_after_exits_2(string step, string stage)
    {
        await using var server = new ScriptedSmtpServer(
            "220 scripted.test",
            command => command.StartsWith(stage, StringComparison.OrdinalIgnoreCase) ? Closing : ScriptedSmtpServer.AcceptAll(command));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", "--quit-after", step);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
    }

    /// <summary>A recipient refused with a 4yz other than 421 still counts as a refusal of that recipient.</summary>
    [Fact]
    public async Task Other_4yz_replies_keep_their_codes()
    {
        await using var server = new ScriptedSmtpServer(
            "220 scripted.test",
            command => command.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase) ? "451 4.3.0 try later" : ScriptedSmtpServer.AcceptAll(command));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", "--body", "x");

        run.ExitCode.Should().Be(ExitCodes.SenderRefused, run.Output + run.Error);
    }
}
