namespace MailPipe.Tests.Pooling;

/// <summary>
/// The README's table "Settings (SmtpSenderOptions) and defaults" says what the code has (breaker15 probe, held): each
/// row's default column against a new <see cref="SmtpSenderOptions"/>.
/// </summary>
public sealed class ReadmeSenderSettingsTests
{
    public static TheoryData<string, string, string> Rows()
    {
        var o = new SmtpSenderOptions();
        var t = o.Timeouts;
        return new()
        {
            { "`Host`, `Port`", "required, 587", $"{(o.Host.Length == 0 ? "required" : o.Host)}, {o.Port}" },
            { "`TlsMode`, `Tls`", "`StartTlsRequired`, defaults", $"`{o.TlsMode}`, defaults" },
            { "`MaxConnections`", "4", $"{o.MaxConnections}" },
            { "`MaxBatchSize`", "16", $"{o.MaxBatchSize}" },
            { "`MaxMessagesPerConnection`", "100 (0: no limit)", $"{o.MaxMessagesPerConnection} (0: no limit)" },
            { "`MaxNonMailCommandsPerConnection`", "10 (0: no limit)", $"{o.MaxNonMailCommandsPerConnection} (0: no limit)" },
            { "`IdleTimeout`", "30 s", $"{o.IdleTimeout.TotalSeconds} s" },
            { "`MaxLifetime`", "10 min", $"{o.MaxLifetime.TotalMinutes} min" },
            { "`NoopAfterIdle`", "5 s", $"{o.NoopAfterIdle.TotalSeconds} s" },
            { "`AcquireTimeout`", "30 s", $"{o.AcquireTimeout.TotalSeconds} s" },
            { "`RetryOnFreshConnection`", "true", o.RetryOnFreshConnection ? "true" : "false" },
            { "`DisposeTimeout`", "5 s", $"{o.DisposeTimeout.TotalSeconds} s" },
            {
                "`Timeouts`",
                "`SmtpTimeouts.Interactive`: connect 10 s, send 30 s, reply 30 s, end of data 60 s",
                $"`SmtpTimeouts.{(ReferenceEquals(t, SmtpTimeouts.Interactive) ? "Interactive" : "?")}`: connect {t.Connect.TotalSeconds} s, send {t.Send.TotalSeconds} s, reply {t.Reply.TotalSeconds} s, end of data {t.DataTermination.TotalSeconds} s"
            },
        };
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void The_README_settings_table_states_the_code_default(string setting, string readme, string code)
    {
        code.Should().Be(readme, "the code's default of {0}", setting);
        var row = File.ReadLines(Path.Combine(RepositoryRoot(), "README.md")).SingleOrDefault(l => l.StartsWith($"| {setting} |", StringComparison.Ordinal));
        row.Should().NotBeNull("README.md has a row for {0}", setting);
        row!.Split('|', StringSplitOptions.TrimEntries)[2].Should().Be(readme, "README.md's default of {0}", setting);
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
