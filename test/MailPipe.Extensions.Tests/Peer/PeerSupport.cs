using System.Net;
using System.Net.Sockets;
using System.Text;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace MailPipe.Extensions.Tests.Peer;

/// <summary>
/// What a user building a service has: a generic host made by <see cref="Host.CreateApplicationBuilder()"/> whose
/// configuration is an appsettings JSON document, and Postfix's Maildir to count what was delivered.
/// </summary>
internal static class PeerHost
{
    /// <summary>A host builder whose configuration is <paramref name="json"/> (as appsettings.json would give it).</summary>
    public static HostApplicationBuilder Builder(string json)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = AppContext.BaseDirectory });
        // Only this document: the test folder holds the sample's appsettings.json, which the default sources would read.
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        return builder;
    }

    /// <summary>A message with a Message-Id of its own, to count its copies in a Maildir.</summary>
    public static (string MessageId, byte[] Content) Message(string subject)
    {
        var id = $"<{Guid.NewGuid():N}@peer17b.test>";
        var content = Encoding.ASCII.GetBytes($"From: peer@example.test\r\nTo: someone@example.test\r\nMessage-Id: {id}\r\nSubject: {subject}\r\n\r\nHello from the peer suite.\r\n");
        return (id, content);
    }

    /// <summary>
    /// How many copies of <paramref name="messageId"/> the Maildir of <paramref name="recipient"/> holds, once a first
    /// copy and a marker (a message sent after the one under test, on a connection of its own, so after any retry of
    /// it was queued) have both arrived: Postfix delivers asynchronously and not always in the order it queued.
    /// </summary>
    public static async Task<int> CopiesAsync(string recipient, string messageId, Func<Task> sendMarker)
    {
        await sendMarker();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var texts = TestServers.MaildirFiles(recipient).Select(File.ReadAllText).ToList();
            var copies = texts.Count(t => t.Contains("Message-Id: " + messageId, StringComparison.Ordinal));
            if (copies > 0 && texts.Any(t => t.Contains("Subject: marker", StringComparison.Ordinal)))
            {
                return copies;
            }

            if (DateTime.UtcNow > deadline)
            {
                return copies;
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Sends the marker of <see cref="CopiesAsync"/> to <paramref name="recipient"/> on a fresh connection of its own.</summary>
    public static async Task SendMarkerAsync(string recipient)
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None, EhloName = "marker.peer17b.test" });
        var result = await sender.SendAsync(new SmtpEnvelope("marker@example.test", recipient), "Subject: marker\r\n\r\nmarker\r\n"u8.ToArray());
        result.IsAccepted.Should().BeTrue(result.ToString());
    }
}

/// <summary>
/// A loopback TCP proxy in front of Postfix (clear text): the first <see cref="GreetFirstWith"/> connections get a
/// greeting of the proxy's own and are closed; a connection on which the client sends <see cref="HoldOn"/> is held
/// (nothing more goes either way) and <see cref="Held"/> completes.
/// </summary>
internal sealed class PeerProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _clients = [];
    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _accepting;
    private int _accepted;

    public PeerProxy(int target)
    {
        _target = target;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>The greeting the first <see cref="GreetFirstCount"/> connections get before they are closed.</summary>
    public string? GreetFirstWith { get; init; }

    public int GreetFirstCount { get; init; }

    /// <summary>Text from the client that makes the proxy hold that connection.</summary>
    public string? HoldOn { get; init; }

    /// <summary>Completes when a connection is held.</summary>
    public Task Held => _held.Task;

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_clients)
        {
            _clients.ForEach(c => c.Dispose());
        }

        try
        {
            await _accepting;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            var number = Interlocked.Increment(ref _accepted);
            lock (_clients)
            {
                _clients.Add(client);
            }

            _ = Task.Run(() => RelayAsync(client, number));
        }
    }

    private async Task RelayAsync(TcpClient client, int number)
    {
        using var _ = client;
        var downstream = client.GetStream();
        try
        {
            if (GreetFirstWith is { } greeting && number <= GreetFirstCount)
            {
                await downstream.WriteAsync(Encoding.ASCII.GetBytes(greeting + "\r\n"), _stop.Token);
                client.Client.Shutdown(SocketShutdown.Send);
                // Read until the client closes (it may send QUIT), so that the greeting is never lost to a reset.
                var sink = new byte[512];
                while (await downstream.ReadAsync(sink, _stop.Token) > 0)
                {
                }

                return;
            }

            using var server = new TcpClient();
            await server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            var upstream = server.GetStream();
            using var connection = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var held = new HoldFlag();
            await Task.WhenAny(PumpAsync(downstream, upstream, true, held, connection.Token), PumpAsync(upstream, downstream, false, held, connection.Token));
            await connection.CancelAsync();
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, bool inspect, HoldFlag held, CancellationToken cancellationToken)
    {
        var buffer = new byte[16384];
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, cancellationToken);
                if (read == 0)
                {
                    return;
                }

                if (inspect && HoldOn is { } hold && Encoding.Latin1.GetString(buffer, 0, read).Contains(hold, StringComparison.Ordinal))
                {
                    Volatile.Write(ref held.Value, true);
                    _held.TrySetResult();
                }

                if (!Volatile.Read(ref held.Value))
                {
                    await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private sealed class HoldFlag
    {
        public bool Value;
    }
}
