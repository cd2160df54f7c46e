using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>The QUIT that ends a batch whose messages all have their outcome: a server that does not answer it.</summary>
public class QuitStepTests
{
    private const string Message = "From: a@example.test\r\nTo: b@example.test\r\nSubject: t\r\n\r\nbody\r\n";

    /// <summary>
    /// Ctrl+C or SIGTERM while the batch waited for the reply to its QUIT (every message accepted and printed): the
    /// cancellation escaped the send, the summary was never printed and the process exited 1, "usage or input error",
    /// as if nothing had been sent (a script would send the batch again). Now the QUIT is abandoned, the summary printed,
    /// and the exit code is the batch's.
    /// </summary>
    [Fact]
    public async Task Interrupted_while_waiting_for_the_reply_to_QUIT_the_batch_keeps_its_summary_and_exit_code()
    {
        using var quitSeen = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        await using var server = ServerHolding(IsQuit, release, quitSeen);
        using var dir = new TempDirectory();
        var first = dir.File("a.eml", Message);
        var second = dir.File("b.eml", Message);

        var (exit, output, error) = await RunInterruptedOnceSeenAsync(["send", "--server", server.Address, first, second], quitSeen, release, "the batch reaches its QUIT");

        exit.Should().Be(0, output + error);
        output.Should().Contain("summary: 2 messages: 2 accepted, 0 refused, 0 not sent, 0 unknown");
    }

    /// <summary>
    /// A server that never answers QUIT held the run for the reply timeout (5 minutes by default) after every message
    /// had its outcome, before the summary and the exit code. The QUIT now waits a few seconds at most.
    /// </summary>
    [Fact]
    public async Task A_server_that_never_answers_QUIT_does_not_hold_the_summary_for_the_reply_timeout()
    {
        using var release = new ManualResetEventSlim();
        await using var server = ServerHolding(IsQuit, release);
        using var dir = new TempDirectory();
        var file = dir.File("a.eml", Message);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", file);
        release.Set();

        // CliRunner cancels after 60 s, well under the 5 minute reply timeout: a run still waiting for the QUIT's
        // reply then is interrupted, which standard error says.
        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Error.Should().NotContain("interrupted");
        run.OutputLines.Should().Contain(l => l.Contains("\"type\":\"summary\"", StringComparison.Ordinal));
    }

    /// <summary>
    /// <c>mailpipe probe</c> waited the same way: its report (everything already known) came only after the reply
    /// timeout when the server did not answer QUIT.
    /// </summary>
    [Fact]
    public async Task Probe_does_not_hold_its_report_for_a_QUIT_that_is_never_answered()
    {
        using var release = new ManualResetEventSlim();
        await using var server = ServerHolding(IsQuit, release);

        var run = await CliRunner.RunAsync("probe", "--server", server.Address, "--json");
        release.Set();

        // CliRunner cancels after 60 s, well under the 5 minute reply timeout.
        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain("\"type\":\"probe\"");
    }

    /// <summary>
    /// Ctrl+C or SIGTERM during <c>--quit-after rcpt</c> (the "does this recipient exist" check) while the server had
    /// not answered RCPT: the cancellation escaped, nothing was printed and the exit code was 1, a usage error. Now the
    /// check is reported as interrupted, with the summary: not sent, exit 2, as an interrupted batch.
    /// </summary>
    [Theory]
    [InlineData("rcpt", "RCPT")]
    [InlineData("mail", "MAIL")]
    public async Task Interrupted_during_quit_after_rcpt_or_mail_is_reported_as_interrupted(string step, string verb)
    {
        using var seen = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        await using var server = ServerHolding(command => command.StartsWith(verb, StringComparison.OrdinalIgnoreCase), release, seen);

        var (exit, output, error) = await RunInterruptedOnceSeenAsync(["send", "--server", server.Address, "-f", "a@example.test", "-t", "b@example.test", "--body", "x", "--quit-after", step], seen, release, string.Empty);

        exit.Should().Be(2, output + error);
        output.Should().Contain("message 1: not sent (exit 2)").And.Contain("summary: 1 message: 0 accepted, 0 refused, 1 not sent");
        error.Should().Contain("interrupted");
    }

    private static bool IsQuit(string command) => command.Equals("QUIT", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A server that accepts every command except those <paramref name="held"/> picks: for one of those it sets
    /// <paramref name="seen"/> and sends no reply until <paramref name="release"/> is set (60 s at most), then closes.
    /// </summary>
    private static ScriptedSmtpServer ServerHolding(Func<string, bool> held, ManualResetEventSlim release, ManualResetEventSlim? seen = null) =>
        new("220 scripted.test", command =>
        {
            if (!held(command))
            {
                return ScriptedSmtpServer.AcceptAll(command);
            }

            seen?.Set();
            release.Wait(TimeSpan.FromSeconds(60)); // no reply until the test is over
            return null;
        });

    /// <summary>
    /// Runs <c>mailpipe</c> in-process with <paramref name="args"/>, interrupts it (Ctrl+C or SIGTERM) once the server has
    /// <paramref name="seen"/> the held command, then releases the server; returns the exit code and what was printed.
    /// </summary>
    private static async Task<(int Exit, string Output, string Error)> RunInterruptedOnceSeenAsync(string[] args, ManualResetEventSlim seen, ManualResetEventSlim release, string because)
    {
        var output = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        var error = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        using var interrupt = new CancellationTokenSource();

        var run = Task.Run(() => Program.RunAsync(args, output, error, interrupt.Token));
        await Task.Run(() => seen.Wait(TimeSpan.FromSeconds(60)));
        seen.IsSet.Should().BeTrue(because);
        await interrupt.CancelAsync();
        var exit = await run;
        release.Set();
        return (exit, output.ToString(), error.ToString());
    }
}
