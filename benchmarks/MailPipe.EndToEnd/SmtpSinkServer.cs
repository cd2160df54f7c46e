using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace MailPipe.EndToEnd;

/// <summary>
/// Postfix's <c>smtp-sink</c> on 127.0.0.1, started and stopped by the harness (by its own PID). It accepts every
/// message ("250 2.0.0 Ok"), stores nothing and advertises PIPELINING but not CHUNKING.
/// </summary>
internal sealed class SmtpSinkServer : IDisposable
{
    public const string SinkPath = "/usr/sbin/smtp-sink";
    public const string SourcePath = "/usr/sbin/smtp-source";

    private readonly Process _process;

    private SmtpSinkServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public string CommandLine => $"{SinkPath} {string.Join(' ', _process.StartInfo.ArgumentList)}";

    public static string InstallHint => """
        smtp-sink / smtp-source not found. They ship with Debian's postfix package; install it without configuring a
        mail system (nothing is started):
          echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
          DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
        """;

    public static bool IsInstalled => File.Exists(SinkPath);

    /// <summary>Starts <c>smtp-sink -u nobody 127.0.0.1:PORT 1024</c> (backlog 1024) on <paramref name="preferredPort"/>, or on a free port when that one is taken.</summary>
    public static async Task<SmtpSinkServer> StartAsync(int preferredPort)
    {
        var port = IsPortFree(preferredPort) ? preferredPort : FreePort();
        var info = new ProcessStartInfo(SinkPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };

        // -u nobody: mandatory as root. No -c (its running counter would cost CPU in this process to drain).
        foreach (var argument in new[] { "-u", "nobody", $"127.0.0.1:{port}", "1024" })
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("smtp-sink did not start.");
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine($"smtp-sink: {e.Data}");
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new SmtpSinkServer(process, port);
        try
        {
            await WaitUntilListeningAsync(port, process).ConfigureAwait(false);
        }
        catch
        {
            server.Dispose();
            throw;
        }

        return server;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    internal static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static bool IsPortFree(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static async Task WaitUntilListeningAsync(int port, Process process)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"smtp-sink exited at once (code {process.ExitCode}).");
            }

            try
            {
                using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await probe.ConnectAsync(IPAddress.Loopback, port).ConfigureAwait(false);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }
        }

        throw new TimeoutException($"smtp-sink is not listening on 127.0.0.1:{port} after 10 s.");
    }
}
