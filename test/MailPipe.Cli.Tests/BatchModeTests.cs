using System.Text;
using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary><c>mailpipe send</c> over many files: directories, wildcards, one pipelined batch, the summary.</summary>
public sealed class BatchModeTests
{
    private static string Message(int n) =>
        $"From: jane@example.test\r\nTo: bob{n}@example.test\r\nSubject: message {n}\r\n\r\nbody {n}\r\n";

    [Fact]
    public async Task Send_run_in_process_leaves_the_hosts_socket_completion_setting_alone()
    {
        // The tool's own process runs socket continuations inline (Program.PreferInlineSocketCompletions); a host that
        // runs the command line in-process (these tests, with their scripted servers) must keep the runtime's default.
        const string Name = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
        var before = Environment.GetEnvironmentVariable(Name);
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        dir.File("a.eml", Message(1));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, dir.Path);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        Environment.GetEnvironmentVariable(Name).Should().Be(before);
    }

    [Fact]
    public async Task A_directory_sends_its_eml_files_in_name_order_and_the_json_ends_with_a_summary()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        dir.File("b.eml", Message(2));
        dir.File("a.eml", Message(1));
        dir.File("c.eml", Message(3));
        dir.File("notes.txt", "not a message");

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", dir.Path);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        server.Messages.Select(m => m.To.Single()).Should().Equal("bob1@example.test", "bob2@example.test", "bob3@example.test");
        run.OutputLines.Should().HaveCount(4);
        using var summary = JsonDocument.Parse(run.OutputLines[3]);
        var root = summary.RootElement;
        root.GetProperty("type").GetString().Should().Be("summary");
        root.GetProperty("messages").GetInt32().Should().Be(3);
        root.GetProperty("accepted").GetInt32().Should().Be(3);
        root.GetProperty("refused").GetInt32().Should().Be(0);
        root.GetProperty("notSent").GetInt32().Should().Be(0);
        root.GetProperty("unknown").GetInt32().Should().Be(0);
        root.GetProperty("bytes").GetInt64().Should().Be(Encoding.ASCII.GetByteCount(Message(1) + Message(2) + Message(3)));
        root.GetProperty("elapsedSeconds").GetDouble().Should().BePositive();
        root.GetProperty("messagesPerSecond").GetDouble().Should().BePositive();
        root.GetProperty("exitCode").GetInt32().Should().Be(0);
        root.GetProperty("server").GetString().Should().Be(server.Address);
        root.GetProperty("tls").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Fact]
    public async Task A_wildcard_sends_the_files_it_matches()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        dir.File("keep-1.eml", Message(1));
        dir.File("keep-2.eml", Message(2));
        dir.File("skip.eml", Message(3));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, Path.Combine(dir.Path, "keep-*.eml"));

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        server.Messages.Select(m => m.To.Single()).Should().Equal("bob1@example.test", "bob2@example.test");
        run.Output.Should().Contain("summary: 2 messages: 2 accepted, 0 refused, 0 not sent, 0 unknown;").And.Contain("messages/s");
    }

    [Theory]
    [InlineData("empty-dir")]
    [InlineData("nothing-*.eml")]
    [InlineData("*/a.eml")]
    public async Task A_directory_or_wildcard_that_yields_no_file_is_a_usage_error(string argument)
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        using var dir = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(dir.Path, "empty-dir"));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, Path.Combine(dir.Path, argument));

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().NotBeEmpty();
        server.Commands.Should().BeEmpty();
    }

    [Fact]
    public async Task Unreadable_files_are_reported_before_sending_and_the_rest_still_go()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var good = dir.File("good.eml", Message(1));
        var missing = Path.Combine(dir.Path, "missing.eml");

        var run = await CliRunner.RunAsync("send", "--server", server.Address, good, missing, good);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        server.Messages.Should().HaveCount(2);
        var lines = run.OutputLines;
        lines[0].Should().StartWith(missing + ": not sent (exit 1)");
        run.Output.IndexOf(good + ": accepted", StringComparison.Ordinal).Should().BeGreaterThan(run.Output.IndexOf(missing, StringComparison.Ordinal));
        run.Output.Should().Contain("summary: 3 messages: 2 accepted, 0 refused, 1 not sent, 0 unknown;");
    }

    /// <summary>
    /// A FIFO (named pipe) named *.eml in a directory given to send: opening it for reading waits for a writer, so the
    /// whole batch waited forever. A directory or a wildcard now takes regular files only; a FIFO, socket or device it
    /// finds is reported as not sent (exit 1) without being opened, and the rest still go. (Linux: mkfifo.)
    /// </summary>
    [Fact]
    public async Task A_FIFO_named_eml_in_a_directory_is_reported_without_being_opened_and_the_rest_still_go()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var good = dir.File("a.eml", Message(1));
        var fifo = Path.Combine(dir.Path, "b.eml");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync();
            mkfifo.ExitCode.Should().Be(0);
        }

        var running = Task.Run(() => CliRunner.RunAsync("send", "--server", server.Address, dir.Path));
        CliRunner.Run run;
        try
        {
            run = await running.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            // Release the reader stuck in open() (it then sees an empty file), so that the run ends.
            await using (new FileStream(fifo, FileMode.Open, FileAccess.Write))
            {
            }

            throw new Xunit.Sdk.XunitException("send was still waiting on the FIFO after 60 s");
        }

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        server.Messages.Should().ContainSingle();
        run.Output.Should().Contain(good + ": accepted");
        run.OutputLines.Should().ContainSingle(l => l.StartsWith(fifo + ": not sent (exit 1)", StringComparison.Ordinal));
        run.Output.Should().Contain($"error: {fifo}: a FIFO (named pipe), not a regular file");
    }

    [Fact]
    public async Task A_refused_message_in_the_middle_keeps_its_own_result_and_code()
    {
        await using var server = await TestSmtpServer.StartAsync(acceptRecipient: r => r != "bob2@example.test");
        using var dir = new TempDirectory();
        dir.File("1.eml", Message(1));
        dir.File("2.eml", Message(2));
        dir.File("3.eml", Message(3));

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", dir.Path);

        run.ExitCode.Should().Be(5, run.Output + run.Error);
        var objects = run.OutputLines.Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        objects.Take(3).Select(o => o.GetProperty("exitCode").GetInt32()).Should().Equal(0, 5, 0);
        objects[3].GetProperty("accepted").GetInt32().Should().Be(2);
        objects[3].GetProperty("refused").GetInt32().Should().Be(1);
        server.Messages.Should().HaveCount(2);
    }

    [Fact]
    public void Summary_text_and_json_carry_the_rate()
    {
        var summary = new BatchSummary
        {
            Messages = 4,
            Accepted = 4,
            Bytes = 12345,
            Elapsed = TimeSpan.FromSeconds(2),
            Server = new ServerAddress("mail.example.test", 587),
            Tls = new TlsInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", NameMatched: true),
            AuthenticatedAs = "user",
            AuthMechanism = "SCRAM-SHA-256",
        };

        summary.MessagesPerSecond.Should().Be(2);
        ResultPrinter.ToText(summary).Should().Be(
            "summary: 4 messages: 4 accepted, 0 refused, 0 not sent, 0 unknown; 12,345 bytes accepted in 2.000 s, 2.00 messages/s (exit 0)\n" +
            "  connection: mail.example.test:587, TLSv1.3 TLS_AES_256_GCM_SHA384, authenticated as user (SCRAM-SHA-256)\n");
        using var json = JsonDocument.Parse(ResultPrinter.ToJson(summary));
        json.RootElement.GetProperty("messagesPerSecond").GetDouble().Should().Be(2);
        json.RootElement.GetProperty("tls").GetProperty("protocol").GetString().Should().Be("TLSv1.3");
        json.RootElement.GetProperty("authMechanism").GetString().Should().Be("SCRAM-SHA-256");
    }

    [Fact]
    public void File_arguments_expand_directories_and_wildcards_in_order()
    {
        using var dir = new TempDirectory();
        var b = dir.File("b.eml", "x");
        var a = dir.File("a.eml", "x");
        dir.File("c.txt", "x");
        var explicitFile = Path.Combine(dir.Path, "not-there.eml");

        FileArguments.TryExpand([dir.Path, explicitFile, Path.Combine(dir.Path, "?.eml")], out var files, out var error).Should().BeTrue(error);

        files.Should().Equal(a, b, explicitFile, a, b);
    }

    [Fact]
    public void A_directory_or_a_wildcard_leaves_out_dot_files_as_a_shell_does_unless_the_pattern_names_them()
    {
        // macOS leaves "._a.eml" (AppleDouble metadata, not a message) beside a.eml on shared volumes.
        using var dir = new TempDirectory();
        var a = dir.File("a.eml", "x");
        var appleDouble = dir.File("._a.eml", "x");
        var hidden = dir.File(".draft.eml", "x");

        FileArguments.TryExpand([dir.Path, Path.Combine(dir.Path, "*.eml"), Path.Combine(dir.Path, ".*.eml")], out var files, out var error).Should().BeTrue(error);

        files.Should().Equal(a, a, appleDouble, hidden);
    }
}
