using System.Net;
using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>The shared-sender example of README.md, compiled here, run against the loopback server, and compared with the README's text.</summary>
public sealed class ReadmeSenderExampleTests
{
    [Fact]
    public async Task The_README_example_compiles_and_sends()
    {
        await using var server = new LoopbackSmtpServer();
        var content = Encoding.ASCII.GetBytes("From: noreply@example.com\r\nTo: customer@example.org\r\nSubject: Your order\r\nMessage-Id: <readme@example.com>\r\n\r\nThank you.\r\n");

        var result = await ExampleAsync("127.0.0.1", server.Port, SmtpTlsMode.None, credentials: null, content, CancellationToken.None);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf("<readme@example.com>").Should().Be(1);
    }

    [Fact]
    public void The_README_shows_exactly_this_example()
    {
        var source = File.ReadAllLines(SourcePath());
        var begin = Array.FindIndex(source, l => l.Trim() == "// README:begin");
        var end = Array.FindIndex(source, l => l.Trim() == "// README:end");
        var example = Dedent(source[(begin + 1)..end]);

        var readme = File.ReadAllLines(Path.Combine(RepositoryRoot(), "README.md"));
        var marker = Array.FindIndex(readme, l => l.Contains("sender-example", StringComparison.Ordinal));
        marker.Should().BeGreaterThan(0, "README.md has the shared-sender example");
        var open = Array.FindIndex(readme, marker, l => l.StartsWith("```csharp", StringComparison.Ordinal));
        var close = Array.FindIndex(readme, open + 1, l => l.StartsWith("```", StringComparison.Ordinal));

        Dedent(readme[(open + 1)..close]).Should().Equal(example);
    }

    private static async Task<SmtpSendResult> ExampleAsync(string host, int port, SmtpTlsMode tlsMode, NetworkCredential? credentials, byte[] content, CancellationToken ct)
    {
        // README:begin
        // One sender per relay for the whole application (register it as a singleton); thread-safe.
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = host,                       // e.g. "smtp.example.com"
            Port = port,                       // default 587 (submission)
            TlsMode = tlsMode,                 // default SmtpTlsMode.StartTlsRequired
            Credentials = credentials,         // e.g. new NetworkCredential("user", "password"); null: no AUTH
            MaxConnections = 4,                // the pool; callers beyond it share batches
        });

        // From any number of concurrent requests: each gets its own result; nothing is thrown for the server's sake.
        var envelope = new SmtpEnvelope("noreply@example.com", "customer@example.org");
        SmtpSendResult result = await sender.SendAsync(envelope, content, ct);
        if (result.Outcome == SmtpSendOutcome.NotSent && result.IsTransientFailure)
        {
            // Nothing was delivered and trying later may work (connection refused, acquire timeout, ...).
        }
        else if (result.Outcome == SmtpSendOutcome.Unknown)
        {
            // The end of data was written but no reply came: it may have been delivered; do not resend blindly.
        }
        // README:end
        return result;
    }

    private static string[] Dedent(string[] lines)
    {
        var indent = lines.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        return [.. lines.Select(l => l.Trim().Length == 0 ? string.Empty : l[indent..].TrimEnd())];
    }

    // Not [CallerFilePath]: with CI=true the build maps source paths to /_/ (deterministic builds).
    private static string SourcePath() => Path.Combine(RepositoryRoot(), "test", "MailPipe.Tests", "Pooling", "ReadmeSenderExampleTests.cs");

    private static string RepositoryRoot()
    {
        var directory = AppContext.BaseDirectory;
        while (directory is not null && !File.Exists(Path.Combine(directory, "MailPipe.sln")))
        {
            directory = Path.GetDirectoryName(directory);
        }

        return directory ?? throw new InvalidOperationException("MailPipe.sln not found above the test assembly.");
    }
}
