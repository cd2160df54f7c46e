using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Extensions.Tests.Support;

/// <summary>
/// A loopback SMTP server the test writes line by line: it accepts one connection and runs the test's conversation on
/// it (<see cref="Conversation"/>: read a command, send a reply, wait for the test), for exchanges a real server cannot
/// be made to hold at the right moment. Disposing it closes the connection and the listener.
/// </summary>
public sealed class LineServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    public LineServer(Func<Conversation, CancellationToken, Task> conversation)
    {
        _listener.Start();
        _run = RunAsync(conversation);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _run;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task RunAsync(Func<Conversation, CancellationToken, Task> conversation)
    {
        using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
        await using var stream = client.GetStream();
        await conversation(new Conversation(stream), _stop.Token);

        // Until the client closes (after its QUIT), whatever it sends unanswered.
        var buffer = new byte[1024];
        while (await stream.ReadAsync(buffer, _stop.Token) > 0)
        {
        }
    }

    /// <summary>One connection's lines (ASCII, CRLF).</summary>
    public sealed class Conversation(NetworkStream stream)
    {
        private readonly StreamReader _reader = new(stream, Encoding.Latin1, detectEncodingFromByteOrderMarks: false, leaveOpen: true);

        public async Task SendAsync(string line, CancellationToken cancellationToken) =>
            await stream.WriteAsync(Encoding.Latin1.GetBytes(line + "\r\n"), cancellationToken);

        /// <summary>Reads the client's next line; fails the conversation when it does not start with <paramref name="command"/>.</summary>
        public async Task ExpectAsync(string command, CancellationToken cancellationToken)
        {
            var line = await _reader.ReadLineAsync(cancellationToken);
            if (line is null || !line.StartsWith(command, StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"Expected {command}, got '{line}'.");
            }
        }
    }
}
