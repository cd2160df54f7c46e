using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using MailPipe.Cli.Tests.Peer;

namespace MailPipe.Cli.Tests;

/// <summary>
/// Issue #16's acceptance 2 and 3 re-checked as a reviewer does: <c>mailpipe serve --listen 127.0.0.1:0</c> run as its
/// own process; swaks (an independent client) with STARTTLS, AUTH and PIPELINING; hostile input against the process,
/// which must answer or close, stay up, keep its memory bounded and take the next message.
/// </summary>
[Collection(PeerCollection.Name)]
public class Acc21ServeProcessTests
{
    private static Task<(int ExitCode, string Output)> SwaksAsync(string body, params string[] args) => CliRunner.RunExternalAsync("swaks", body, args);

    private static long ResidentBytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException("no VmRSS");
    }

    private static int ServePid(ServeProcess serve)
    {
        // The listening socket's owner: the serve process (the apphost, or dotnet running MailPipe.Cli.dll).
        using var ss = Process.Start(new ProcessStartInfo("ss", ["-ltnpH", $"sport = :{serve.Port}"]) { RedirectStandardOutput = true, UseShellExecute = false })!;
        var text = ss.StandardOutput.ReadToEnd();
        ss.WaitForExit();
        var match = System.Text.RegularExpressions.Regex.Match(text, @"pid=(\d+)");
        match.Success.Should().BeTrue("ss shows the listener's process: " + text);
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Swaks_with_STARTTLS_AUTH_and_PIPELINING_to_the_serve_process_is_saved_unstuffed_byte_for_byte()
    {
        using var files = new Files();
        var inbox = Path.Combine(files.Path, "inbox");
        await using var serve = await ServeProcess.StartAsync(inbox, null, "--starttls", "--auth");
        var body = "From: s@example.test\r\nSubject: acc21 swaks\r\n\r\n.leading dot\r\n..two dots\r\nlast\r\n";

        var (exitCode, output) = await SwaksAsync(body, "--server", serve.Address, "--tls", "--auth", "PLAIN", "--auth-user", "acc21", "--auth-password", "pw", "--pipeline", "--from", "s@example.test", "--to", "r1@example.test,r2@example.test", "--data", "-");

        exitCode.Should().Be(0, output);
        output.Should().Contain("PIPELINING").And.Contain("235");
        var line = await serve.WaitForLineAsync(" saved to ");
        line.Should().Contain("from <s@example.test> to <r1@example.test>, <r2@example.test>").And.Contain("TLS").And.Contain("AUTH acc21");
        var saved = Directory.GetFiles(inbox).Should().ContainSingle().Subject;

        // swaks stuffs the dots and ends with CRLF "." CRLF after the body's own last CRLF: an empty last line.
        (await File.ReadAllTextAsync(saved)).Should().Be(body + "\r\n");
        (await serve.StopAsync()).Should().Be(0, serve.Error);
    }

    [Theory]
    [InlineData("endless-line")]
    [InlineData("endless-data-line")]
    [InlineData("rcpt-flood")]
    public async Task Hostile_input_to_the_serve_process_gets_an_error_or_a_close_with_bounded_memory_and_the_next_client_is_served(string kind)
    {
        using var files = new Files();
        var inbox = Path.Combine(files.Path, "inbox");
        await using var serve = await ServeProcess.StartAsync(inbox, null, "--max-size", "1M");
        var pid = ServePid(serve);
        var before = ResidentBytes(pid);

        using (var client = new TcpClient())
        {
            await client.ConnectAsync("127.0.0.1", serve.Port);
            var stream = client.GetStream();
            var reader = new StreamReader(stream, Encoding.Latin1);
            (await reader.ReadLineAsync())!.Should().StartWith("220");
            var prefix = kind switch
            {
                "endless-data-line" => "EHLO acc21.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n",
                "rcpt-flood" => "EHLO acc21.test\r\nMAIL FROM:<a@example.test>\r\n",
                _ => string.Empty,
            };
            await stream.WriteAsync(Encoding.ASCII.GetBytes(prefix));
            var chunk = kind == "rcpt-flood"
                ? Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 1000).Select(i => $"RCPT TO:<r{i}@example.test>\r\n")))
                : Encoding.ASCII.GetBytes(new string('A', 64 * 1024));
            var written = 0L;
            try
            {
                // Up to 64 MiB; a server that closes stops it sooner.
                using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                while (written < 64L * 1024 * 1024)
                {
                    await stream.WriteAsync(chunk, limit.Token);
                    written += chunk.Length;
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                // The server closed the connection (or stopped reading): what a bounded server does.
            }

            client.Client.Shutdown(SocketShutdown.Send);
            var replies = new StringBuilder();
            try
            {
                using var readLimit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                while (await reader.ReadLineAsync(readLimit.Token) is { } reply)
                {
                    replies.AppendLine(reply.Length > 200 ? reply[..200] : reply);
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
            }

            var text = replies.ToString();
            if (kind != "endless-data-line")
            {
                text.Should().MatchRegex("(?m)^[45]\\d\\d", "an SMTP error before the close: " + text[..Math.Min(2000, text.Length)]);
            }
        }

        serve.ExitCode.Should().BeNull("serve is still running: " + serve.Error);
        var after = ResidentBytes(pid);
        (after - before).Should().BeLessThan(48L * 1024 * 1024, $"memory stays bounded (before {before}, after {after})");
        (Directory.Exists(inbox) ? Directory.GetFiles(inbox) : []).Should().BeEmpty("nothing hostile was saved");

        var run = await Tool.RunAsync("send", "-s", serve.Address, "-f", "a@example.test", "-t", "b@example.test", "--body", "after " + kind);
        run.ExitCode.Should().Be(0, run.ToString());
        Directory.GetFiles(inbox).Should().ContainSingle();
        (await serve.StopAsync()).Should().Be(0, serve.Error);
    }
}
