using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>Defects found by the session-17 breaker of the command line (send, probe, serve).</summary>
public sealed class Breaker17Tests
{
    /// <summary>Runs the tool in-process with standard output and error taken for terminals (as under a pty).</summary>
    private static async Task<CliRunner.Run> RunOnTerminalAsync(params string[] args)
    {
        var output = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        var error = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var environment = new CliEnvironment(() => Stream.Null, OutputIsTerminal: true, ErrorIsTerminal: true);
        var code = await Program.RunAsync(args, output, error, environment, timeout.Token);
        return new CliRunner.Run(code, output.ToString(), error.ToString());
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// <c>probe</c> ends its report with <c>error: ...</c> and then said the same on standard error: on a terminal, which
    /// shows both, every failure was printed twice. Said once now when both are terminals; still on standard error when
    /// only that is one (the report in a file or a pipe).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Probe_says_its_error_once_on_a_terminal(bool json)
    {
        var port = ClosedPort();
        string[] args = json ? ["probe", "--server", $"127.0.0.1:{port}", "--json"] : ["probe", "--server", $"127.0.0.1:{port}"];

        var run = await RunOnTerminalAsync(args);

        run.ExitCode.Should().Be(2, run.Output + run.Error);
        var both = run.Output + run.Error;
        both.Split("connection refused").Length.Should().Be(2, "the reason is shown once: " + both);

        var redirected = await CliRunner.RunAsync(args);
        redirected.Error.Should().Contain("connection refused", "a report written to a file or a pipe still leaves the reason on standard error");
    }

    /// <summary>
    /// <c>serve --max-size</c> is documented (README, and its own error) as "from 1 byte to 2047M", but a value given in
    /// K or bytes was taken up to 2147483647 (2097151K: SIZE 2147482624, above 2047M). The bound is now 2047M however it
    /// is written.
    /// </summary>
    [Theory]
    [InlineData("2097151K")]
    [InlineData("2147483647")]
    [InlineData("2146435073")]
    public void Serve_max_size_above_2047M_is_refused_however_written(string value) =>
        ServeCommand.TryParseSize(value, out _).Should().BeFalse();

    [Theory]
    [InlineData("2047M", 2047 * 1024 * 1024)]
    [InlineData("2096128K", 2047 * 1024 * 1024)]
    [InlineData("2146435072", 2047 * 1024 * 1024)]
    public void Serve_max_size_of_2047M_is_taken_however_written(string value, int bytes)
    {
        ServeCommand.TryParseSize(value, out var parsed).Should().BeTrue();
        parsed.Should().Be(bytes);
    }

    /// <summary>
    /// A file whose first line is no header field (text, a continuation line, an escaped mbox "&gt;From " line) was sent:
    /// Postfix took its whole header section for the body, so the recipients got the From, To and Subject lines as
    /// text, while the envelope had come from those very lines. As an mbox "From " line already is, it is now an input
    /// error (exit 1, nothing sent) and the other files still go; an empty header section (a first line that is empty)
    /// and an obsolete-syntax "Name :" field are still messages.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_file_whose_first_line_is_not_a_header_field_is_not_sent(bool envelopeGiven)
    {
        using var dir = new TempDirectory();
        using var input = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        const string Rest = "From: a@example.test\r\nTo: b@example.test\r\nSubject: s\r\n\r\nhi\r\n";
        var text = input.File("text.eml", "Dear Bob,\r\n" + Rest);
        var spaced = input.File("spaced.eml", "not a header: line\r\n" + Rest);
        var folded = input.File("folded.eml", " continued\r\n" + Rest);
        var escaped = input.File("escaped.eml", ">From a@example.test Mon Dec  7 10:00:00 2026\r\n" + Rest);
        var obsolete = input.File("obsolete.eml", "Subject : s\r\n" + Rest);
        string[] envelope = envelopeGiven ? ["--from", "a@example.test", "--to", "b@example.test"] : [];

        var run = await CliRunner.RunAsync(["send", "--server", serve.Address, .. envelope, text, spaced, folded, escaped, obsolete]);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        foreach (var file in new[] { text, spaced, folded, escaped })
        {
            run.Output.Should().Contain($"{file}: its first line is not a header field");
        }

        run.Output.Should().Contain($"{obsolete}: accepted");
        Directory.GetFiles(dir.Path).Select(File.ReadAllText).Should().ContainSingle().Which.Should().StartWith("Subject : s\r\n");
    }

    /// <summary>
    /// The README's exit code 6 listed the extensions a message may need (SMTPUTF8, REQUIRETLS, 8BITMIME) but not
    /// BINARYMIME with CHUNKING, which a file with a NUL octet needs: such a file is not sent (exit 6) and the others go.
    /// Documents behaviour the README left out; it passed before.
    /// </summary>
    [Fact]
    public async Task A_file_with_a_NUL_octet_is_not_sent_to_a_server_without_BINARYMIME_and_exits_6()
    {
        using var dir = new TempDirectory();
        using var input = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        var nul = input.File("nul.eml", "From: a@example.test\r\nTo: b@example.test\r\n\r\na\0b\r\n");
        var plain = input.File("plain.eml", "From: a@example.test\r\nTo: b@example.test\r\n\r\nab\r\n");

        var run = await CliRunner.RunAsync("send", "--server", serve.Address, nul, plain);

        run.ExitCode.Should().Be(6, run.Output + run.Error);
        run.Output.Should().Contain($"{nul}: not sent (exit 6)").And.Contain("BINARYMIME").And.Contain($"{plain}: accepted");
        Directory.GetFiles(dir.Path).Should().ContainSingle();
    }

    /// <summary>
    /// <c>serve</c> with a <c>--save-dir</c> that cannot be a folder (a file's name) exits 1 before it listens; the README's
    /// exit codes of <c>serve</c> did not say so (doc only; it passed before).
    /// </summary>
    [Fact]
    public async Task Serve_with_a_save_dir_that_is_a_file_exits_1_without_listening()
    {
        using var dir = new TempDirectory();
        var file = dir.File("taken", "not a folder");

        var run = await CliRunner.RunAsync("serve", "--listen", "127.0.0.1:0", "--save-dir", file);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().Contain($"cannot use --save-dir {file}");
        run.Output.Should().NotContain("listening");
    }

    /// <summary>
    /// When the server refused MAIL, the recipients were never sent (<c>--quit-after rcpt</c> stops there; without
    /// PIPELINING MailPipe does not send them), yet each was listed as "to &lt;b@example.test&gt;: no reply", as if the
    /// server had gone silent on them. They are left out, as for a message not sent.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Recipients_never_sent_after_a_refused_MAIL_are_not_listed_as_without_reply(bool quitAfterRcpt)
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", command =>
            command.StartsWith("MAIL", StringComparison.Ordinal) ? "550 5.7.1 sender refused" : ScriptedSmtpServer.AcceptAll(command));
        string[] args = ["send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", "--body", "x", .. quitAfterRcpt ? new[] { "--quit-after", "rcpt" } : []];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(4, run.Output + run.Error);
        server.Commands.Should().NotContain(c => c.StartsWith("RCPT", StringComparison.Ordinal));
        run.Output.Should().Contain("from <a@example.test>: 550 5.7.1 sender refused").And.NotContain("no reply");
    }
}
