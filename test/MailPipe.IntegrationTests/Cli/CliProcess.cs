using System.Text;
using System.Text.Json;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Cli;

/// <summary>Runs <c>mailpipe</c> in-process (<c>Program.RunAsync</c>) and captures what it prints.</summary>
public static class CliProcess
{
    public sealed record Run(int ExitCode, string Output, string Error)
    {
        public string[] OutputLines => Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        /// <summary>The last line of a --json run: the summary object (send) or the report (probe).</summary>
        public JsonElement LastJson => JsonDocument.Parse(OutputLines[^1]).RootElement;

        public override string ToString() => $"exit {ExitCode}\n{Output}\n{Error}";
    }

    public static async Task<Run> RunAsync(params string[] args)
    {
        var output = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        var error = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var code = await global::MailPipe.Cli.Program.RunAsync(args, output, error, timeout.Token);
        return new Run(code, output.ToString(), error.ToString());
    }

    /// <summary>Runs with <paramref name="input"/> as standard input (for the file argument <c>-</c>).</summary>
    public static async Task<Run> RunWithInputAsync(byte[] input, params string[] args)
    {
        var output = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        var error = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var environment = new global::MailPipe.Cli.CliEnvironment(() => new MemoryStream(input), OutputIsTerminal: false, ErrorIsTerminal: false);
        var code = await global::MailPipe.Cli.Program.RunAsync(args, output, error, environment, timeout.Token);
        return new Run(code, output.ToString(), error.ToString());
    }

    /// <summary>--server for a test server port.</summary>
    public static string Server(int port) => $"{TestServers.Host}:{port}";
}

/// <summary>An environment variable of this process holding the password, for --password-env; removed at the end.</summary>
public sealed class PasswordVariable : IDisposable
{
    public PasswordVariable(string password)
    {
        Name = "MAILPIPE_IT_PASSWORD_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(Name, password);
    }

    public string Name { get; }

    public void Dispose() => Environment.SetEnvironmentVariable(Name, null);
}
