using System.Text.RegularExpressions;

namespace MailPipe.Cli.Tests;

/// <summary>
/// The CLI README documents every option that <c>--help</c> lists, and states each default that <c>--help</c> gives
/// as <c>[default: X]</c>: an option added to a command without a row (or a default changed without its row) fails here.
/// </summary>
public sealed partial class ReadmeOptionsTests
{
    [Theory]
    [InlineData("send")]
    [InlineData("probe")]
    [InlineData("serve")]
    public async Task Every_option_of_the_help_is_in_the_README(string command)
    {
        var run = await CliRunner.RunAsync(command, "--help");
        run.ExitCode.Should().Be(0);
        var readme = File.ReadAllText(ReadmePath());
        var options = OptionName().Matches(run.Output).Select(m => m.Groups["name"].Value)
            .Where(n => n is not "--help").Distinct().ToList();
        options.Should().NotBeEmpty();
        foreach (var option in options)
        {
            readme.Should().Contain($"`{option}", "{0} {1} is in --help", command, option);
        }
    }

    [Fact]
    public async Task Every_default_of_serve_help_is_in_its_README_row()
    {
        var run = await CliRunner.RunAsync("serve", "--help");
        var rows = File.ReadLines(ReadmePath())
            .SkipWhile(l => l != "## `mailpipe serve`").Skip(1).TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal))
            .Where(l => l.StartsWith("| `--", StringComparison.Ordinal)).ToList();
        var defaults = DefaultOf().Matches(run.Output).ToList();
        defaults.Should().HaveCountGreaterThan(3);
        foreach (Match match in defaults)
        {
            var option = match.Groups["name"].Value;
            var value = match.Groups["value"].Value;
            var row = rows.FirstOrDefault(r => r.StartsWith($"| `{option} ", StringComparison.Ordinal));
            row.Should().NotBeNull("serve {0} has a row", option);
            row!.Split('|', StringSplitOptions.TrimEntries)[2].Trim('`').Should().Be(value, "the default of serve {0}", option);
        }
    }

    private static string ReadmePath()
    {
        var directory = AppContext.BaseDirectory;
        while (directory is not null && !File.Exists(Path.Combine(directory, "MailPipe.sln")))
        {
            directory = Path.GetDirectoryName(directory);
        }

        return Path.Combine(directory ?? throw new InvalidOperationException("MailPipe.sln not found."), "src", "MailPipe.Cli", "README.md");
    }

    [GeneratedRegex(@"^\s+(?:-[a-z?], )*(?<name>--[a-z0-9-]+)", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex OptionName();

    [GeneratedRegex(@"^\s+(?<name>--[a-z0-9-]+)\b[^\n]*\[default: (?<value>[^\]]+)\]", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex DefaultOf();
}
