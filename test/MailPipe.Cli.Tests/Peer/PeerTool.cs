using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace MailPipe.Cli.Tests.Peer;

/// <summary>
/// The peer acceptance suite runs <c>mailpipe</c> as a user does: the built tool (its apphost next to the tests) as a
/// separate process, with arguments, environment and standard input, against the shared loopback servers
/// (build/servers/README.md) and <c>mailpipe serve</c>. One collection: the runs go one after the other, so that the
/// shared servers and the two cores are not flooded.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PeerCollection
{
    public const string Name = "Peer CLI acceptance";
}

/// <summary>What one run of the tool gave.</summary>
internal sealed record ToolRun(int ExitCode, string Output, string Error)
{
    public string[] OutputLines => Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Every standard output line parsed as JSON (for --json).</summary>
    public JsonElement[] Json => [.. OutputLines.Select(l => JsonDocument.Parse(l).RootElement)];

    public JsonElement Summary => Json[^1];

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
}

/// <summary>Starts the built <c>mailpipe</c> as a process.</summary>
internal static class Tool
{
    /// <summary>The tool as built next to the tests: its apphost, else the dll through <c>dotnet</c>.</summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, string? workingDirectory = null)
    {
        var apphost = Path.Combine(AppContext.BaseDirectory, "MailPipe.Cli");
        ProcessStartInfo info;
        if (File.Exists(apphost))
        {
            info = new ProcessStartInfo(apphost);
        }
        else
        {
            info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet");
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "MailPipe.Cli.dll"));
        }

        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.UseShellExecute = false;
        info.RedirectStandardInput = true;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.StandardOutputEncoding = Encoding.UTF8;
        info.StandardErrorEncoding = Encoding.UTF8;
        info.WorkingDirectory = workingDirectory ?? Path.GetTempPath();
        return info;
    }

    public static Task<ToolRun> RunAsync(params string[] args) => RunAsync(args, input: null);

    /// <summary>
    /// Runs the tool to its end. Standard input gets <paramref name="input"/> and is then closed (empty when null). A
    /// run that does not end within <paramref name="timeout"/> (default 60 s) is killed and fails the test as a hang.
    /// </summary>
    public static async Task<ToolRun> RunAsync(
        string[] args,
        byte[]? input,
        IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null,
        TimeSpan? timeout = null)
    {
        var info = StartInfo(args, workingDirectory);
        if (environment is not null)
        {
            foreach (var (name, value) in environment)
            {
                if (value is null)
                {
                    info.Environment.Remove(name);
                }
                else
                {
                    info.Environment[name] = value;
                }
            }
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("mailpipe did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            if (input is not null)
            {
                await process.StandardInput.BaseStream.WriteAsync(input);
            }

            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The tool may end (a usage error) before it reads its input.
        }

        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"mailpipe {string.Join(' ', args)} hung; so far:\n{await output}\n{await error}");
        }

        return new ToolRun(process.ExitCode, await output, await error);
    }

    /// <summary>Sends SIGTERM, as a service manager or <c>kill</c> does.</summary>
    public static void Terminate(Process process)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit();
    }
}

/// <summary>The shared servers (build/servers/README.md), their ports and where they store mail.</summary>
internal static class Servers
{
    public const string User = "testuser";
    public const string Password = "Test-Pass-123";

    public static int Postfix => Port("MAILPIPE_POSTFIX_PORT", 2525);

    public static int PostfixTls => Port("MAILPIPE_POSTFIX_TLS_PORT", 4650);

    public static int Submission => Port("MAILPIPE_POSTFIX_SUBMISSION_PORT", 5870);

    public static int PostfixNoSmtpUtf8 => Port("MAILPIPE_POSTFIX_NOSMTPUTF8_PORT", 2544);

    public static int PostfixNo8BitMime => Port("MAILPIPE_POSTFIX_NO8BITMIME_PORT", 2543);

    public static int Exim => Port("MAILPIPE_EXIM_PORT", 2526);

    public static int Aiosmtpd => Port("MAILPIPE_AIOSMTPD_PORT", 2527);

    public static int Sink => Port("MAILPIPE_SINK_PORT", 2528);

    public static string Certificate => Environment.GetEnvironmentVariable("MAILPIPE_TLS_CERT") ?? "/tmp/mailpipe-tls/cert.pem";

    public static string Maildir => Environment.GetEnvironmentVariable("MAILPIPE_MAILDIR") ?? "/tmp/mailpipe-maildir";

    public static string EximMaildir => Environment.GetEnvironmentVariable("MAILPIPE_EXIM_MAILDIR") ?? "/tmp/mailpipe-exim/maildir";

    public static string AiosmtpdMessages => Environment.GetEnvironmentVariable("MAILPIPE_AIOSMTPD_MESSAGES") ?? "/tmp/mailpipe-aiosmtpd/messages";

    /// <summary>--server for a port, after checking that something listens there (fails loudly: build/test.sh starts them).</summary>
    public static string At(int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect("127.0.0.1", port);
        }
        catch (SocketException ex)
        {
            throw new InvalidOperationException($"no test server on 127.0.0.1:{port}: start them with bash build/servers/up-all.sh", ex);
        }

        return $"127.0.0.1:{port}";
    }

    /// <summary>A port where nothing listens (bound, then released).</summary>
    public static int Closed()
    {
        var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>A recipient no other test uses: its Postfix Maildir holds only this test's mail.</summary>
    public static string Unique(string prefix = "peer") => $"{prefix}-{Guid.NewGuid():N}@example.test";

    /// <summary>The messages Postfix stored for <paramref name="recipient"/>, once there are <paramref name="count"/> (Postfix delivers after its 250).</summary>
    public static async Task<byte[][]> PostfixMessagesAsync(string recipient, int count = 1)
    {
        var directory = Path.Combine(Maildir, recipient, "new");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var files = Directory.Exists(directory) ? Directory.GetFiles(directory).Order(StringComparer.Ordinal).ToArray() : [];
            if (files.Length >= count || DateTime.UtcNow > deadline)
            {
                return [.. files.Select(File.ReadAllBytes)];
            }

            await Task.Delay(50);
        }
    }

    /// <summary>The Maildir count of a recipient now.</summary>
    public static int PostfixCount(string recipient)
    {
        var directory = Path.Combine(Maildir, recipient, "new");
        return Directory.Exists(directory) ? Directory.GetFiles(directory).Length : 0;
    }

    /// <summary>The message as sent: Postfix's Return-Path, Delivered-To and one Received field (with its continuations) taken off.</summary>
    public static byte[] AsSent(byte[] stored)
    {
        var text = Encoding.Latin1.GetString(stored);
        var match = Regex.Match(text, "\\AReturn-Path: [^\\r\\n]*\\r\\nDelivered-To: [^\\r\\n]*\\r\\nReceived: [^\\r\\n]*\\r\\n(?:[ \\t][^\\r\\n]*\\r\\n)*");
        match.Success.Should().BeTrue("Postfix prepends its three trace fields: " + text[..Math.Min(300, text.Length)]);
        return stored[match.Length..];
    }

    /// <summary>The envelope sender Postfix recorded (Return-Path).</summary>
    public static string ReturnPath(byte[] stored) => Regex.Match(Encoding.Latin1.GetString(stored), "\\AReturn-Path: <([^>]*)>").Groups[1].Value;

    private static int Port(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : fallback;
}

/// <summary>A temporary folder of message files.</summary>
internal sealed class Files : IDisposable
{
    public Files() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mailpipe-peer-" + Guid.NewGuid().ToString("N"));

    public string Write(string name, string content) => Write(name, Encoding.UTF8.GetBytes(content));

    public string Write(string name, byte[] content)
    {
        var path = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        return path;
    }

    public string Sub(string name) => Directory.CreateDirectory(System.IO.Path.Combine(Path, name)).FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary><c>mailpipe serve --listen 127.0.0.1:0</c> as its own process; disposing sends SIGTERM and checks exit 0.</summary>
internal sealed partial class ServeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly StringBuilder _error = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _lineArrived = new(0);

    private ServeProcess(Process process, string saveDirectory)
    {
        _process = process;
        SaveDirectory = saveDirectory;
    }

    public string SaveDirectory { get; }

    public int Port { get; private set; }

    public string Address => $"127.0.0.1:{Port}";

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public string Error
    {
        get
        {
            lock (_error)
            {
                return _error.ToString();
            }
        }
    }

    public int? ExitCode { get; private set; }

    public static async Task<ServeProcess> StartAsync(string saveDirectory, IReadOnlyDictionary<string, string?>? environment = null, params string[] options)
    {
        var info = Tool.StartInfo(["serve", "--listen", "127.0.0.1:0", "--save-dir", saveDirectory, .. options]);
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            info.Environment[name] = value;
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var serve = new ServeProcess(process, saveDirectory);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (serve._lines)
                {
                    serve._lines.Add(e.Data);
                }

                serve._lineArrived.Release();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (serve._error)
                {
                    serve._error.AppendLine(e.Data);
                }
            }
        };
        process.Exited += (_, _) => serve._exited.TrySetResult();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var first = await serve.WaitForLineAsync("listening|\"type\":\"listening\"");
        var match = PortPattern().Match(first);
        match.Success.Should().BeTrue(first);
        serve.Port = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        return serve;
    }

    /// <summary>Waits for a line matching <paramref name="pattern"/> (each printed line wakes the wait; no polling).</summary>
    public async Task<string> WaitForLineAsync(string pattern, int count = 1)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var matching = Lines.Where(l => Regex.IsMatch(l, pattern)).ToArray();
            if (matching.Length >= count)
            {
                return matching[count - 1];
            }

            if (_exited.Task.IsCompleted)
            {
                await Task.Delay(100); // the last lines of an exited process may still be in the pipe's reader
                matching = [.. Lines.Where(l => Regex.IsMatch(l, pattern))];
                if (matching.Length >= count)
                {
                    return matching[count - 1];
                }

                throw new InvalidOperationException($"serve exited ({_process.ExitCode}) without a line matching {pattern}:\n{string.Join('\n', Lines)}\n{Error}");
            }

            try
            {
                await Task.WhenAny(_lineArrived.WaitAsync(limit.Token), _exited.Task);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no line matching {pattern}:\n{string.Join('\n', Lines)}\n{Error}");
            }
        }
    }

    /// <summary>SIGTERM, then the exit code.</summary>
    public async Task<int> StopAsync()
    {
        if (!_process.HasExited)
        {
            Tool.Terminate(_process);
        }

        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(limit.Token);
        ExitCode = _process.ExitCode;
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            var code = await StopAsync();
            code.Should().Be(0, "serve stops with 0 on SIGTERM: " + Error);
        }

        _process.Dispose();
        _lineArrived.Dispose();
    }

    [GeneratedRegex(@"(?:listening on \S+:|""port"":)(\d+)")]
    private static partial Regex PortPattern();
}
