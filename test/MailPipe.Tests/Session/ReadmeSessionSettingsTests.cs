using System.Globalization;

namespace MailPipe.Tests.Session;

/// <summary>
/// The README's table of <see cref="SmtpSessionOptions"/> settings says what the code has: each row's default column
/// against a new <see cref="SmtpSessionOptions"/> (as <c>ReadmeSenderSettingsTests</c> does for the sender's table).
/// </summary>
public sealed class ReadmeSessionSettingsTests
{
    public static TheoryData<string, string, string> Rows()
    {
        var o = new SmtpSessionOptions();
        var l = o.Limits;
        var c = CultureInfo.InvariantCulture;
        return new()
        {
            {
                "`ConnectTimeout`, `SendTimeout`, `ReceiveTimeout`, `DataTerminationTimeout`",
                "60 s, 3 min, 5 min, 10 min",
                $"{o.ConnectTimeout.TotalSeconds} s, {o.SendTimeout.TotalMinutes} min, {o.ReceiveTimeout.TotalMinutes} min, {o.DataTerminationTimeout.TotalMinutes} min"
            },
            { "`Tls`", "defaults (handshake 60 s)", $"defaults (handshake {o.Tls.HandshakeTimeout.TotalSeconds} s)" },
            { "`AllowCleartextAuthentication`", "false", o.AllowCleartextAuthentication ? "true" : "false" },
            { "`UsePipelining`, `UseChunking`", "true, true", $"{(o.UsePipelining ? "true" : "false")}, {(o.UseChunking ? "true" : "false")}" },
            { "`ChunkSize`", "262,144 bytes (256 KiB; at least 1,024)", $"{o.ChunkSize.ToString("N0", c)} bytes ({o.ChunkSize / 1024} KiB; at least 1,024)" },
            { "`MaxTransactionsInFlight`", "16 (1: no overlap)", $"{o.MaxTransactionsInFlight} (1: no overlap)" },
            { "`DataFlushThreshold`", "65,536 bytes (at least 1,024)", $"{o.DataFlushThreshold.ToString("N0", c)} bytes (at least 1,024)" },
            {
                "`Limits`",
                "`SmtpProtocolLimits.Default`: `MaxReplyLineLength` 8,192 bytes (at least 512), `MaxReplyLines` 1,000, `MaxReplyBytes` 262,144",
                $"`SmtpProtocolLimits.{(ReferenceEquals(l, SmtpProtocolLimits.Default) ? "Default" : "?")}`: `MaxReplyLineLength` {l.MaxReplyLineLength.ToString("N0", c)} bytes (at least 512), `MaxReplyLines` {l.MaxReplyLines.ToString("N0", c)}, `MaxReplyBytes` {l.MaxReplyBytes.ToString("N0", c)}"
            },
        };
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void The_README_session_settings_table_states_the_code_default(string setting, string readme, string code)
    {
        code.Should().Be(readme, "the code's default of {0}", setting);
        var row = File.ReadLines(Path.Combine(RepositoryRoot(), "README.md")).SingleOrDefault(l => l.StartsWith($"| {setting} |", StringComparison.Ordinal));
        row.Should().NotBeNull("README.md has a row for {0}", setting);
        row!.Split('|', StringSplitOptions.TrimEntries)[2].Should().Be(readme, "README.md's default of {0}", setting);
    }

    [Fact]
    public void The_minimums_in_the_table_are_the_ones_validation_enforces()
    {
        var tooSmallChunk = new SmtpSessionOptions { ChunkSize = 1023 };
        var smallestChunk = new SmtpSessionOptions { ChunkSize = 1024, DataFlushThreshold = 1024 };
        var tooSmallFlush = new SmtpSessionOptions { DataFlushThreshold = 1023 };
        var tooShortLine = new SmtpSessionOptions { Limits = new SmtpProtocolLimits { MaxReplyLineLength = 511 } };

        ((Action)(() => _ = new AsyncSmtpSession(tooSmallChunk))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => _ = new AsyncSmtpSession(tooSmallFlush))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => _ = new AsyncSmtpSession(tooShortLine))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => new AsyncSmtpSession(smallestChunk).Dispose())).Should().NotThrow();
    }

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
