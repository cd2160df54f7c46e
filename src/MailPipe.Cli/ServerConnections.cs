using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using SmtpServer;
using SmtpServer.IO;
using SmtpServer.Net;

namespace MailPipe.Cli;

/// <summary>
/// The embedded server's listener, in place of the SmtpServer package's own: it turns Nagle's algorithm off on every
/// accepted socket, wraps each connection in a <see cref="ReplyCoalescingPipe"/>, limits the connections open at once
/// and the time a client may stay silent.
/// </summary>
/// <remarks>
/// Why: SmtpServer writes and flushes every reply on its own (<c>WriteReplyAsync</c> = one line, one
/// <c>FlushAsync</c>), on a socket that keeps Nagle on. To a pipelined MAIL/RCPT/DATA group it answers with three small
/// segments; Nagle holds the second until the first is acknowledged, and the client's delayed ACK takes ~40 ms: the
/// 45 ms per message of issue #16. NoDelay removes the wait; coalescing sends the group's replies in one segment.
/// </remarks>
internal sealed class ServerListenerFactory : EndpointListenerFactory
{
    private readonly ServerLimits _limits;
    private readonly List<Listener> _listeners = [];

    /// <summary>Creates the factory.</summary>
    /// <param name="limits">The idle timeout and the connection limit.</param>
    public ServerListenerFactory(ServerLimits limits) => _limits = limits;

    /// <summary>How many accepted connections are open (sessions in progress).</summary>
    public int OpenConnections
    {
        get
        {
            lock (_listeners)
            {
                return _listeners.Sum(l => l.OpenConnections);
            }
        }
    }

    /// <summary>
    /// Stops accepting connections (the listening sockets are closed); the sessions in progress go on. SmtpServer's own
    /// <c>Shutdown</c> cancels them instead.
    /// </summary>
    public void StopAccepting()
    {
        lock (_listeners)
        {
            _listeners.ForEach(l => l.StopAccepting());
        }
    }

    /// <summary>
    /// Closes the connections still open with <c>421</c> (RFC 5321 §3.8), each at its session's next read: after the
    /// reply to the command in progress, or at once while it waits for the client (a message cut off is not saved).
    /// Cancelling them inside SmtpServer would answer 221 between commands and 554 inside a message.
    /// </summary>
    public void CloseOpenConnections()
    {
        lock (_listeners)
        {
            _listeners.ForEach(l => l.CloseOpenConnections());
        }
    }

    /// <inheritdoc/>
    /// <exception cref="SocketException">The address cannot be bound (in use, not local).</exception>
    public override IEndpointListener CreateListener(IEndpointDefinition endpointDefinition)
    {
        ArgumentNullException.ThrowIfNull(endpointDefinition);
        var socket = new Socket(endpointDefinition.Endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endpointDefinition.Endpoint);
            socket.Listen(512);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var args = new EndpointEventArgs(endpointDefinition, socket.LocalEndPoint!);
        var listener = new Listener(socket, _limits, () => OnEndpointStopped(args));
        lock (_listeners)
        {
            _listeners.Add(listener);
        }

        OnEndpointStarted(args);
        return listener;
    }

    private sealed class Listener : IEndpointListener
    {
        private static readonly byte[] TooManyConnections = "421 4.7.0 too many connections, try again later\r\n"u8.ToArray();

        private readonly Socket _socket;
        private readonly ServerLimits _limits;
        private readonly Action _stopped;
        private readonly SemaphoreSlim _slots;
        private readonly ConcurrentDictionary<ReplyCoalescingPipe, byte> _open = new();
        private volatile bool _stopping;

        public Listener(Socket socket, ServerLimits limits, Action stopped)
        {
            _socket = socket;
            _limits = limits;
            _stopped = stopped;
            _slots = new SemaphoreSlim(limits.MaxConnections, limits.MaxConnections);
        }

        public int OpenConnections => _limits.MaxConnections - _slots.CurrentCount;

        public void StopAccepting()
        {
            _stopping = true;
            _socket.Dispose();
        }

        public void CloseOpenConnections()
        {
            foreach (var pipe in _open.Keys)
            {
                pipe.ShutDown();
            }
        }

        public async Task<ISecurableDuplexPipe> GetPipeAsync(ISessionContext context, CancellationToken cancellationToken)
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await _socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (_stopping && ex is SocketException or ObjectDisposedException)
                {
                    // No more connections: wait for the server's stop (an error here would make SmtpServer ask again at once).
                    await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (!_slots.Wait(0, CancellationToken.None))
                {
                    // Over the limit: say so and close, without a session (RFC 5321 §3.1 allows a 421 greeting).
                    try
                    {
                        accepted.Blocking = false;
                        accepted.Send(TooManyConnections, SocketFlags.None, out _);
                    }
                    finally
                    {
                        accepted.Dispose();
                    }

                    continue;
                }

                accepted.NoDelay = true;
                context.Properties[EndpointListener.LocalEndPointKey] = _socket.LocalEndPoint!;
                context.Properties[EndpointListener.RemoteEndPointKey] = accepted.RemoteEndPoint!;
                ReplyCoalescingPipe? pipe = null;
                pipe = new ReplyCoalescingPipe(
                    accepted,
                    _limits.IdleTimeout,
                    () =>
                    {
                        _open.TryRemove(pipe!, out _);
                        _slots.Release();
                    },
                    _limits.MaxMessageSize);
                _open.TryAdd(pipe, 0);
                return pipe;
            }
        }

        public void Dispose()
        {
            _socket.Dispose();
            _stopped();
        }
    }
}

/// <summary>The limits of the embedded server's connections.</summary>
/// <param name="IdleTimeout">How long the server waits for the client's next bytes (a command, or more of the message) before it answers 421 and closes.</param>
/// <param name="MaxConnections">How many connections may be open at once; one more gets a 421 greeting and is closed.</param>
/// <param name="MaxMessageSize">The largest message (RFC 1870: its final CRLF included, not the terminating dot nor the doubled dots); data that cannot end within it gets 552 and the connection is closed.</param>
internal sealed record ServerLimits(TimeSpan IdleTimeout, int MaxConnections, int MaxMessageSize = int.MaxValue);
