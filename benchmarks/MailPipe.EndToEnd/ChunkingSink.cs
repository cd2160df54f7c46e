using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.EndToEnd;

/// <summary>
/// A minimal in-process SMTP sink that offers PIPELINING and CHUNKING, which smtp-sink lacks: it accepts everything,
/// stores nothing, and answers all complete commands of one read in one write, as real pipelining servers do. Only for
/// measuring round trips with BDAT through the delay proxy (<c>--sink builtin</c>); it is not a server to test against.
/// </summary>
internal sealed class ChunkingSink : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public ChunkingSink()
    {
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                socket.NoDelay = true;
                _ = ServeAsync(socket);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
    }

    private static async Task ServeAsync(Socket socket)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        var reader = PipeReader.Create(stream);
        var replies = new StringBuilder("220 builtin-sink ESMTP\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(replies.ToString()));
        replies.Clear();
        long bdatRemaining = 0;
        var inData = false;
        var bdatLast = false;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync();
                var buffer = result.Buffer;
                while (true)
                {
                    if (bdatRemaining > 0)
                    {
                        var take = Math.Min(bdatRemaining, buffer.Length);
                        buffer = buffer.Slice(take);
                        bdatRemaining -= take;
                        if (bdatRemaining > 0)
                        {
                            break;
                        }

                        replies.Append(bdatLast ? "250 2.0.0 Ok: queued\r\n" : "250 2.0.0 Ok: chunk\r\n");
                        continue;
                    }

                    var lf = buffer.PositionOf((byte)'\n');
                    if (lf is null)
                    {
                        break;
                    }

                    var line = Encoding.ASCII.GetString(buffer.Slice(0, lf.Value)).TrimEnd('\r');
                    buffer = buffer.Slice(buffer.GetPosition(1, lf.Value));
                    if (inData)
                    {
                        if (line == ".")
                        {
                            inData = false;
                            replies.Append("250 2.0.0 Ok: queued\r\n");
                        }

                        continue;
                    }

                    var verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
                    switch (verb)
                    {
                        case "EHLO":
                            replies.Append("250-builtin-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n");
                            break;
                        case "DATA":
                            inData = true;
                            replies.Append("354 End data with <CR><LF>.<CR><LF>\r\n");
                            break;
                        case "BDAT":
                            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                            bdatRemaining = long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
                            bdatLast = parts.Length > 2;
                            if (bdatRemaining == 0)
                            {
                                replies.Append("250 2.0.0 Ok: queued\r\n");
                            }

                            break;
                        case "QUIT":
                            replies.Append("221 2.0.0 Bye\r\n");
                            await stream.WriteAsync(Encoding.ASCII.GetBytes(replies.ToString()));
                            return;
                        default:
                            replies.Append("250 2.0.0 Ok\r\n");
                            break;
                    }
                }

                reader.AdvanceTo(buffer.Start, result.Buffer.End);
                if (replies.Length > 0)
                {
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(replies.ToString()));
                    replies.Clear();
                }

                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (IOException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
