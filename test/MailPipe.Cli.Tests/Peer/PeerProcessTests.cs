using System.Diagnostics;
using System.Text;

namespace MailPipe.Cli.Tests.Peer;

/// <summary>What only a real process shows: signals, closed and broken standard streams.</summary>
[Collection(PeerCollection.Name)]
public class PeerProcessTests
{
    /// <summary>Runs the tool through /bin/sh so that the shell can close or pipe its streams; null when the apphost is missing.</summary>
    private static async Task<(int ExitCode, string Output, string Error)?> ShellAsync(string script, params string[] args)
    {
        var tool = Tool.StartInfo([]);
        if (tool.ArgumentList.Count > 0)
        {
            return null;
        }

        var info = new ProcessStartInfo("/bin/sh", ["-c", script, tool.FileName, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(limit.Token);
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task Sigterm_while_waiting_for_the_reply_to_the_end_of_data_is_outcome_unknown_exit_7()
    {
        var dataReceived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = ScriptedSmtpServer.WithAsyncData("220 scripted.test", ScriptedSmtpServer.AcceptAll, _ =>
        {
            dataReceived.TrySetResult();
            return never.Task;
        });
        try
        {
            using var files = new Files();
            var first = files.Write("1.eml", "From: a@example.test\r\nTo: b@example.test\r\n\r\none\r\n");
            var second = files.Write("2.eml", "From: a@example.test\r\nTo: b@example.test\r\n\r\ntwo\r\n");
            using var process = Process.Start(Tool.StartInfo(["send", "-s", server.Address, first, second]))!;
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();

            await dataReceived.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Tool.Terminate(process);
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(limit.Token);

            var text = await output + await error;
            process.ExitCode.Should().Be(7, text);
            (await output).Should().Contain($"{first}: outcome unknown (exit 7)").And.Contain($"{second}:").And.Contain("summary: 2 messages");
            (await error).Should().Contain("interrupted");
            text.Should().NotContain("   at ");
        }
        finally
        {
            never.TrySetResult(null); // lets the server's dispose end
        }
    }

    [Fact]
    public async Task Sigterm_while_a_FIFO_is_still_being_read_sends_nothing_and_exits_2()
    {
        var rcpt = Servers.Unique("sigterm");
        using var files = new Files();
        var fifo = Path.Combine(files.Path, "pipe.eml");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync();
        }

        using var process = Process.Start(Tool.StartInfo(["send", "-s", Servers.At(Servers.Postfix), fifo]))!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();

        // Opening the FIFO for writing returns once the tool has opened it for reading: it is then waiting for the rest.
        await using var writer = await Task.Run(() => new FileStream(fifo, FileMode.Open, FileAccess.Write)).WaitAsync(TimeSpan.FromSeconds(30));
        await writer.WriteAsync(Encoding.ASCII.GetBytes($"From: a@example.test\r\nTo: {rcpt}\r\n\r\npart"));
        await writer.FlushAsync();
        Tool.Terminate(process);
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(limit.Token);

        process.ExitCode.Should().Be(2, await output + await error);
        (await error).Should().NotBeEmpty("standard error says that nothing was sent");
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task Dash_with_standard_input_closed_is_not_sent_exit_1_and_the_file_after_it_goes()
    {
        var rcpt = Servers.Unique("stdinclosed");
        using var files = new Files();
        var file = files.Write("f.eml", $"From: a@example.test\r\nTo: {rcpt}\r\n\r\nx\r\n");

        var run = await ShellAsync("exec \"$0\" send -s \"$1\" - \"$2\" 0<&-", Servers.At(Servers.Postfix), file);
        if (run is not { } r)
        {
            return;
        }

        r.ExitCode.Should().Be(1, r.Output + r.Error);
        r.Output.Should().Contain("-: not sent (exit 1)").And.Contain($"{file}: accepted (exit 0)");
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
    }

    [Fact]
    public async Task Standard_output_closed_sends_nothing_and_exits_1()
    {
        var rcpt = Servers.Unique("stdoutclosed");

        var run = await ShellAsync("exec \"$0\" send -s \"$1\" -f a@example.test -t \"$2\" --body x >&-", Servers.At(Servers.Postfix), rcpt);
        if (run is not { } r)
        {
            return;
        }

        r.ExitCode.Should().Be(1, r.Error);
        r.Error.Should().Contain(">/dev/null");
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task Standard_error_closed_only_loses_its_lines()
    {
        var rcpt = Servers.Unique("stderrclosed");

        var run = await ShellAsync("exec \"$0\" send -s \"$1\" -f a@example.test -t \"$2\" --body x --trace 2>&-", Servers.At(Servers.Postfix), rcpt);
        if (run is not { } r)
        {
            return;
        }

        r.ExitCode.Should().Be(0, r.Output);
        r.Output.Should().Contain("accepted (exit 0)");
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
    }

    [Fact]
    public async Task A_reader_that_goes_away_does_not_stop_the_batch_and_every_message_is_delivered_once()
    {
        var rcpt = Servers.Unique("headpipe");
        using var files = new Files();
        var dir = files.Sub("out");
        for (var i = 0; i < 5; i++)
        {
            files.Write($"out/{i}.eml", $"From: a@example.test\r\nTo: {rcpt}\r\nSubject: {i}\r\n\r\nx\r\n");
        }

        var run = await ShellAsync("\"$0\" send -s \"$1\" \"$2\" | head -c 1 >/dev/null; exit 0", Servers.At(Servers.Postfix), dir);
        if (run is not { } r)
        {
            return;
        }

        r.Error.Should().NotContain("   at ").And.NotContain("Unhandled");
        (await Servers.PostfixMessagesAsync(rcpt, 5)).Should().HaveCount(5);
    }

    [Fact]
    public async Task A_pipe_given_as_a_file_is_read_to_its_end_and_sent()
    {
        var rcpt = Servers.Unique("fifo");
        var content = $"From: a@example.test\r\nTo: {rcpt}\r\nSubject: pipe\r\n\r\nfrom a process substitution\r\n";
        using var files = new Files();
        var source = files.Write("src.eml", content);

        var info = new ProcessStartInfo("/bin/bash", ["-c", "exec \"$0\" send -s \"$1\" <(cat \"$2\")", Tool.StartInfo([]).FileName, Servers.At(Servers.Postfix), source])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Tool.StartInfo([]).ArgumentList.Count > 0)
        {
            return;
        }

        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();

        process.ExitCode.Should().Be(0, output + await process.StandardError.ReadToEndAsync());
        Servers.AsSent((await Servers.PostfixMessagesAsync(rcpt)).Single()).Should().Equal(Encoding.ASCII.GetBytes(content));
    }
}
