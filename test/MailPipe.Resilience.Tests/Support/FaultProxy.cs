using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Resilience.Tests.Support;

/// <summary>
/// A loopback TCP proxy in front of a real server that records what clients send (the transcript) and injects
/// faults: it can hold every server byte after the client's end of data ("\r\n.\r\n"), so that the client waits for a
/// final reply that the server did send, and it can drop a connection once the client has sent a marker.
/// </summary>
internal sealed class FaultProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _relays = [];
    private readonly StringBuilder _transcript = new();
    private readonly Task _accepting;
    private int _connections;

    public FaultProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Which connections (1-based, in accept order) get their server bytes held after the client's end of data; null for none.</summary>
    public Func<int, bool>? HoldRepliesAfterEndOfData { get; set; }

    /// <summary>Which connections are dropped (both sides closed) as soon as the client has sent <see cref="DropMarker"/>.</summary>
    public Func<int, bool>? DropWhen { get; set; }

    /// <summary>The client bytes that trigger <see cref="DropWhen"/>.</summary>
    public string DropMarker { get; set; } = "\r\n";

    /// <summary>Completes when a connection first held a server reply after the end of data.</summary>
    public TaskCompletionSource EndOfDataHeld { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How many connections were accepted.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Everything the clients sent, connection after connection (Latin-1).</summary>
    public string ClientTranscript
    {
        get
        {
            lock (_transcript)
            {
                return _transcript.ToString();
            }
        }
    }

    /// <summary>How many times <paramref name="line"/> (a full line, CRLF added) appears in the client transcript.</summary>
    public int CountLines(string line)
    {
        var needle = line + "\r\n";
        var text = ClientTranscript;
        var count = 0;
        for (var i = text.IndexOf(needle, StringComparison.Ordinal); i >= 0; i = text.IndexOf(needle, i + needle.Length, StringComparison.Ordinal))
        {
            if (i == 0 || text[i - 1] == '\n')
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>How many lines of the client transcript start with <paramref name="prefix"/>.</summary>
    public int CountLinesStartingWith(string prefix) =>
        ClientTranscript.Split("\r\n").Count(line => line.StartsWith(prefix, StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        Task[] relays;
        lock (_relays)
        {
            relays = [.. _relays];
        }

        await Task.WhenAll(relays.Select(r => r.ContinueWith(static _ => { }, TaskScheduler.Default)));
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            var number = Interlocked.Increment(ref _connections);
            lock (_relays)
            {
                _relays.Add(RelayAsync(client, number));
            }
        }
    }

    private async Task RelayAsync(TcpClient client, int number)
    {
        using var _ = client;
        using var server = new TcpClient();
        await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
        using var connection = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        var state = new ConnectionState();
        var up = PumpUpAsync(client.GetStream(), server.GetStream(), number, state, connection);
        var down = PumpDownAsync(server.GetStream(), client.GetStream(), number, state, connection.Token);
        await Task.WhenAny(up, down);
        await connection.CancelAsync();
        client.Client.Close();
        server.Client.Close();
        await Task.WhenAll(up.ContinueWith(static _ => { }, TaskScheduler.Default), down.ContinueWith(static _ => { }, TaskScheduler.Default));
    }

    private async Task PumpUpAsync(NetworkStream from, NetworkStream to, int number, ConnectionState state, CancellationTokenSource connection)
    {
        var buffer = new byte[16384];
        var seen = new StringBuilder();
        while (true)
        {
            var read = await from.ReadAsync(buffer, connection.Token);
            if (read == 0)
            {
                return;
            }

            var text = Encoding.Latin1.GetString(buffer, 0, read);
            lock (_transcript)
            {
                _transcript.Append(text);
            }

            seen.Append(text);
            if (DropWhen?.Invoke(number) == true && seen.ToString().Contains(DropMarker, StringComparison.Ordinal))
            {
                // The connection breaks before these bytes reach the server.
                await connection.CancelAsync();
                return;
            }

            if (HoldRepliesAfterEndOfData?.Invoke(number) == true && seen.ToString().Contains("\r\n.\r\n", StringComparison.Ordinal))
            {
                // Set before the dot reaches the server, so that its reply to the dot can only be held.
                Volatile.Write(ref state.Holding, true);
            }

            var keep = Math.Max(8, DropMarker.Length);
            if (seen.Length > keep)
            {
                seen.Remove(0, seen.Length - keep);
            }

            await to.WriteAsync(buffer.AsMemory(0, read), connection.Token);
        }
    }

    private async Task PumpDownAsync(NetworkStream from, NetworkStream to, int number, ConnectionState state, CancellationToken cancellationToken)
    {
        var buffer = new byte[16384];
        while (true)
        {
            var read = await from.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                return;
            }

            if (Volatile.Read(ref state.Holding))
            {
                EndOfDataHeld.TrySetResult();
                continue;
            }

            await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }
    }

    private sealed class ConnectionState
    {
        public bool Holding;
    }
}
