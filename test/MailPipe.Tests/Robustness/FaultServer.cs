using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Tests.Robustness;

/// <summary>Where in the conversation <see cref="FaultServer"/> injects its fault.</summary>
public enum FaultPoint
{
    Greeting,
    Ehlo,
    Mail,
    FirstRcpt,
    SecondRcpt,
    DataCommand,
    InsideData,
    AfterEndOfData,
    AfterFinalReply,
    Quit,
}

/// <summary>How the fault ends the connection.</summary>
public enum FaultKind
{
    /// <summary>A reset (RST; SO_LINGER 0).</summary>
    Reset,

    /// <summary>An orderly close (FIN).</summary>
    Close,
}

/// <summary>Odd replies a hostile or broken server sends besides the fault.</summary>
public enum ServerQuirk
{
    None,

    /// <summary>An extra reply right after the greeting, before any command.</summary>
    ReplyBeforeAnyCommand,

    /// <summary>An extra reply after the second RCPT's, inside a pipelined group.</summary>
    ExtraReplyInGroup,
}

/// <summary>
/// A small SMTP server on a loopback socket that serves one session (EHLO, MAIL, RCPT, DATA, BDAT, RSET, NOOP, QUIT)
/// and breaks the connection at <see cref="FaultPoint"/>; it records whether it saw the end of the message data and
/// whether it acknowledged it, so that a test can hold the client's outcome against what the server received.
/// </summary>
internal sealed class FaultServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _safety = new(TimeSpan.FromSeconds(30));
    private readonly FaultPoint? _point;
    private readonly FaultKind _kind;
    private readonly bool _chunking;
    private readonly bool _pipelining;
    private readonly long _dataOffset;
    private readonly ServerQuirk _quirk;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;
    private Socket? _socket;

    public FaultServer(FaultPoint? point, FaultKind kind, bool chunking, bool pipelining, long dataOffset = 0, ServerQuirk quirk = ServerQuirk.None)
    {
        (_point, _kind, _chunking, _pipelining, _dataOffset, _quirk) = (point, kind, chunking, pipelining, dataOffset, quirk);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        Completion = RunAsync();
    }

    public int Port { get; }

    public Task Completion { get; }

    /// <summary>The server read the whole end of the message data (the final dot, or all of BDAT LAST).</summary>
    public bool SawEndOfData { get; private set; }

    /// <summary>The server sent its positive reply to the end of data.</summary>
    public bool AcknowledgedEndOfData { get; private set; }

    /// <summary>Whether the fault was injected.</summary>
    public bool Faulted { get; private set; }

    /// <summary>Message bytes received (DATA content or BDAT chunk bytes).</summary>
    public long DataBytes { get; private set; }

    private async Task RunAsync()
    {
        var ct = _safety.Token;
        using var socket = await _listener.AcceptSocketAsync(ct);
        _socket = socket;
        try
        {
            await ServeAsync(ct);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or ObjectDisposedException or FaultInjected)
        {
        }
    }

    private async Task ServeAsync(CancellationToken ct)
    {
        FaultAt(FaultPoint.Greeting);
        await SendAsync(_quirk == ServerQuirk.ReplyBeforeAnyCommand ? "220 fault.example.test ESMTP\r\n250 2.0.0 unsolicited\r\n" : "220 fault.example.test ESMTP\r\n", ct);
        var recipients = 0;
        var firstBdat = true;
        while (true)
        {
            var line = await ReadLineAsync(ct);
            if (line is null)
            {
                return;
            }

            var verb = line.Split(' ', 2)[0].ToUpperInvariant();
            switch (verb)
            {
                case "EHLO":
                    FaultAt(FaultPoint.Ehlo);
                    await SendAsync("250-fault.example.test\r\n" + (_pipelining ? "250-PIPELINING\r\n" : "") + (_chunking ? "250-CHUNKING\r\n" : "") + "250 8BITMIME\r\n", ct);
                    break;
                case "MAIL":
                    FaultAt(FaultPoint.Mail);
                    await SendAsync("250 2.1.0 Ok\r\n", ct);
                    break;
                case "RCPT":
                    recipients++;
                    FaultAt(recipients == 1 ? FaultPoint.FirstRcpt : FaultPoint.SecondRcpt);
                    await SendAsync(recipients == 2 && _quirk == ServerQuirk.ExtraReplyInGroup ? "250 2.1.5 Ok\r\n250 2.0.0 extra\r\n" : "250 2.1.5 Ok\r\n", ct);
                    break;
                case "DATA":
                    FaultAt(FaultPoint.DataCommand);
                    await SendAsync("354 go ahead\r\n", ct);
                    await ReadDotTerminatedAsync(ct);
                    await EndOfDataAsync(ct);
                    break;
                case "BDAT":
                    if (firstBdat)
                    {
                        FaultAt(FaultPoint.DataCommand);
                        firstBdat = false;
                    }

                    var parts = line.Split(' ');
                    var size = long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
                    await ReadChunkAsync(size, ct);
                    if (parts.Length > 2)
                    {
                        await EndOfDataAsync(ct);
                    }
                    else
                    {
                        await SendAsync("250 2.0.0 chunk\r\n", ct);
                    }

                    break;
                case "QUIT":
                    FaultAt(FaultPoint.Quit);
                    await SendAsync("221 2.0.0 bye\r\n", ct);
                    return;
                case "RSET":
                case "NOOP":
                    await SendAsync("250 2.0.0 Ok\r\n", ct);
                    break;
                default:
                    await SendAsync("500 5.5.2 unknown\r\n", ct);
                    break;
            }
        }
    }

    private async Task EndOfDataAsync(CancellationToken ct)
    {
        SawEndOfData = true;
        FaultAt(FaultPoint.AfterEndOfData);
        await SendAsync("250 2.0.0 queued\r\n", ct);
        AcknowledgedEndOfData = true;
        FaultAt(FaultPoint.AfterFinalReply);
    }

    private void FaultAt(FaultPoint point)
    {
        if (_point != point || Faulted)
        {
            return;
        }

        Faulted = true;
        var socket = _socket!;
        if (_kind == FaultKind.Reset)
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        else
        {
            socket.Shutdown(SocketShutdown.Both);
        }

        socket.Close();
        throw new FaultInjected();
    }

    private void CountData(long count)
    {
        var before = DataBytes;
        DataBytes += count;
        if (_point == FaultPoint.InsideData && before <= _dataOffset && DataBytes > _dataOffset)
        {
            FaultAt(FaultPoint.InsideData);
        }
    }

    private async Task ReadDotTerminatedAsync(CancellationToken ct)
    {
        // The data starts at a line start: "\r\n" stands before it, so that ".\r\n" alone ends it.
        var window = 0x0D0AUL;
        while (true)
        {
            if (_start == _end && !await FillAsync(ct))
            {
                throw new IOException("end of stream inside the data");
            }

            while (_start < _end)
            {
                var b = _buffer[_start++];
                CountData(1);
                window = (window << 8) | b;
                if ((window & 0xFFFFFFFFFF) == 0x0D0A2E0D0AUL)
                {
                    return;
                }
            }
        }
    }

    private async Task ReadChunkAsync(long size, CancellationToken ct)
    {
        while (size > 0)
        {
            if (_start == _end && !await FillAsync(ct))
            {
                throw new IOException("end of stream inside a chunk");
            }

            var take = (int)Math.Min(size, _end - _start);
            _start += take;
            size -= take;
            CountData(take);
        }
    }

    private async Task<string?> ReadLineAsync(CancellationToken ct)
    {
        var line = new StringBuilder();
        while (true)
        {
            if (_start == _end && !await FillAsync(ct))
            {
                return null;
            }

            var b = _buffer[_start++];
            if (b == '\n')
            {
                return line.ToString().TrimEnd('\r');
            }

            line.Append((char)b);
        }
    }

    private async Task<bool> FillAsync(CancellationToken ct)
    {
        _start = 0;
        _end = await _socket!.ReceiveAsync(_buffer, SocketFlags.None, ct);
        return _end > 0;
    }

    private Task SendAsync(string text, CancellationToken ct) => _socket!.SendAsync(Encoding.ASCII.GetBytes(text), SocketFlags.None, ct).AsTask();

    public async ValueTask DisposeAsync()
    {
        await _safety.CancelAsync();
        _listener.Stop();
        try
        {
            await Completion.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception)
        {
        }

        _safety.Dispose();
    }

    private sealed class FaultInjected : Exception;
}
