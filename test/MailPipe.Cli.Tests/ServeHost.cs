using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace MailPipe.Cli.Tests;

/// <summary>
/// <c>mailpipe serve --listen 127.0.0.1:0</c> run in-process: the port is parsed from the line it prints, the lines
/// are kept, and disposing stops it (as Ctrl+C does) and checks that it exited with 0.
/// </summary>
internal sealed partial class ServeHost : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly LineWriter _output = new();
    private readonly StringWriter _error = new();
    private Task<int>? _run;

    private ServeHost(string saveDirectory) => SaveDirectory = saveDirectory;

    public string SaveDirectory { get; }

    public int Port { get; private set; }

    public string Address => $"127.0.0.1:{Port}";

    /// <summary>The lines printed so far.</summary>
    public IReadOnlyList<string> Lines => _output.Lines;

    public string Error => _error.ToString();

    /// <summary>Starts <c>mailpipe serve --listen 127.0.0.1:0 --save-dir DIR</c> with more options.</summary>
    public static async Task<ServeHost> StartAsync(string saveDirectory, params string[] options)
    {
        var host = new ServeHost(saveDirectory);
        string[] args = ["serve", "--listen", "127.0.0.1:0", "--save-dir", saveDirectory, .. options];
        host._run = Task.Run(() => Program.RunAsync(args, host._output, host._error, host._stop.Token));
        var first = await Task.WhenAny(host._output.FirstLine, host._run).WaitAsync(TimeSpan.FromSeconds(30));
        if (first != host._output.FirstLine)
        {
            throw new InvalidOperationException($"serve exited with {await host._run}: {host._error}");
        }

        var line = await host._output.FirstLine;
        var match = PortPattern().Match(line);
        if (!match.Success)
        {
            throw new InvalidOperationException($"no port in the first line: {line}");
        }

        host.Port = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        return host;
    }

    /// <summary>Waits until <paramref name="count"/> lines matching <paramref name="pattern"/> were printed.</summary>
    public async Task<string[]> WaitForLinesAsync(string pattern, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var lines = Lines.Where(l => Regex.IsMatch(l, pattern)).ToArray();
            if (lines.Length >= count || DateTime.UtcNow > deadline)
            {
                return lines;
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Stops the server as Ctrl+C does and returns its exit code.</summary>
    public async Task<int> StopAsync()
    {
        await _stop.CancelAsync();
        return await _run!.WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        if (!_run!.IsCompleted)
        {
            var code = await StopAsync();
            code.Should().Be(0, "serve stops cleanly: " + _error);
        }

        _stop.Dispose();
    }

    [GeneratedRegex(@"(?:listening on \S+:|""port"":)(\d+)")]
    private static partial Regex PortPattern();

    /// <summary>A writer that keeps whole lines and completes a task with the first one.</summary>
    private sealed class LineWriter : TextWriter
    {
        private readonly StringBuilder _current = new();
        private readonly List<string> _lines = [];
        private readonly TaskCompletionSource<string> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override Encoding Encoding => Encoding.UTF8;

        public Task<string> FirstLine => _first.Task;

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

        public override void Write(char value)
        {
            lock (_lines)
            {
                if (value == '\n')
                {
                    var line = _current.ToString().TrimEnd('\r');
                    _current.Clear();
                    _lines.Add(line);
                    _first.TrySetResult(line);
                }
                else
                {
                    _current.Append(value);
                }
            }
        }
    }
}

/// <summary>A bare SMTP client over a socket, for what a well-behaved client would never send.</summary>
internal sealed class RawSmtpClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly StringBuilder _received = new();

    private RawSmtpClient(Socket socket) => _socket = socket;

    public static async Task<RawSmtpClient> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
        return new RawSmtpClient(socket);
    }

    public Socket Socket => _socket;

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendAsync(byte[] bytes) => await _socket.SendAsync(bytes, SocketFlags.None);

    /// <summary>One receive call: what arrived in it (empty at the end of the stream).</summary>
    public async Task<string> ReceiveOnceAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var n = await _socket.ReceiveAsync(_buffer, SocketFlags.None, timeout.Token);
        return Encoding.UTF8.GetString(_buffer, 0, n);
    }

    /// <summary>Reads the next complete reply (its last line "NNN text"), or <see langword="null"/> at the end of the stream or a reset.</summary>
    public async Task<string?> ReadReplyAsync()
    {
        while (true)
        {
            var text = _received.ToString();
            var start = 0;
            while (true)
            {
                var end = text.IndexOf("\r\n", start, StringComparison.Ordinal);
                if (end < 0)
                {
                    break;
                }

                var line = text[start..end];
                if (line.Length < 4 || line[3] != '-')
                {
                    _received.Remove(0, end + 2);
                    return text[..end];
                }

                start = end + 2;
            }

            string more;
            try
            {
                more = await ReceiveOnceAsync();
            }
            catch (SocketException)
            {
                return null;
            }

            if (more.Length == 0)
            {
                return null;
            }

            _received.Append(more);
        }
    }

    /// <summary>Reads replies until the end of the stream, at most <paramref name="max"/>.</summary>
    public async Task<List<string>> ReadRepliesToEndAsync(int max = 100_000)
    {
        var replies = new List<string>();
        while (replies.Count < max && await ReadReplyAsync() is { } reply)
        {
            replies.Add(reply);
        }

        return replies;
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
