using System.Globalization;
using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>
/// Against the shared test Exim (build/servers/exim-up.sh, 127.0.0.1:2526), as it is configured: it counts the RSET
/// after each refused transaction against smtp_accept_max_nonmail (10 by default) and past it answers
/// "554 Too many nonmail commands" and closes the connection. A batch with many refused messages then went on with the
/// rest reported not sent; now the rest goes on a new connection, and every accepted message is delivered once.
/// Runs with the integration environment only (MAILPIPE_INTEGRATION=1, as build/test.sh sets it).
/// </summary>
public sealed class SessionLimitEximTests
{
    [Fact]
    public async Task A_batch_past_Exims_nonmail_limit_goes_on_over_a_new_connection_and_is_delivered_once()
    {
        if (Environment.GetEnvironmentVariable("MAILPIPE_INTEGRATION") != "1")
        {
            return; // no shared servers here
        }

        var port = int.TryParse(Environment.GetEnvironmentVariable("MAILPIPE_EXIM_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : 2526;
        var maildir = Path.Combine(Environment.GetEnvironmentVariable("MAILPIPE_EXIM_MAILDIR") ?? "/tmp/mailpipe-exim/maildir", "new");
        var tag = "cli-limit-" + Guid.NewGuid().ToString("N")[..12];
        using var dir = new TempDirectory();
        var files = Enumerable.Range(1, 30).Select(i => dir.File(
            $"m{i:D2}.eml",
            $"From: sender@example.test\r\nTo: {(i % 2 == 1 ? $"unknown{i}" : $"{tag}-{i}")}@example.test\r\nSubject: {tag} {i}\r\n\r\nbody {i}\r\n")).ToArray();

        var started = DateTime.UtcNow.AddMinutes(-1);
        var run = await CliRunner.RunAsync(["send", "--server", $"127.0.0.1:{port}", "--json", .. files]);

        run.ExitCode.Should().Be(ExitCodes.NoRecipientAccepted, run.Output + run.Error);
        var lines = run.OutputLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var messages = lines.SkipLast(1).ToList();
        messages.Select(m => m.GetProperty("index").GetInt32()).Should().Equal(Enumerable.Range(1, 30));
        for (var i = 1; i <= 30; i++)
        {
            messages[i - 1].GetProperty("outcome").GetString().Should().Be(i % 2 == 1 ? "refused" : "accepted", run.Output);
        }

        lines[^1].GetProperty("connections").GetInt32().Should().BeGreaterThan(1, "Exim closed the first session at its nonmail limit: " + run.Error);
        run.Error.Should().Contain("on connection 2");

        // Exim delivers each accepted message to its Maildir after the 250 (one file per recipient, Envelope-to tells them apart).
        var expected = Enumerable.Range(1, 15).Select(i => $"Envelope-to: {tag}-{2 * i}@example.test").ToList();
        List<string> delivered = [];
        for (var attempt = 0; attempt < 600 && delivered.Distinct().Count() < expected.Count; attempt++)
        {
            await Task.Delay(100);
            delivered = [.. Directory.Exists(maildir) ? Directory.EnumerateFiles(maildir).Where(f => File.GetLastWriteTimeUtc(f) >= started).Select(File.ReadAllText).SelectMany(t => t.Split("\r\n")).Where(l => l.StartsWith($"Envelope-to: {tag}-", StringComparison.Ordinal)) : []];
        }

        delivered.Should().BeEquivalentTo(expected, "each accepted message is delivered exactly once");
    }
}
