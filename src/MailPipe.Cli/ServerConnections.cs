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

/// <summary>
/// One accepted connection as SmtpServer sees it. Replies are written at once but sent only when the server would
/// otherwise wait for the client (Postfix's rule): while the input already holds the client's next command, the reply
/// stays in the buffer, so the replies to a pipelined group leave in one segment (RFC 2920 §3.1 asks servers to do
/// this), and a reply is never held back while the server waits. Every read waits at most the idle timeout; then the
/// client gets a 421 and the connection is closed, and SmtpServer sees the end of the input. A send of replies that the
/// client does not read waits at most as long; then the connection is closed.
/// </summary>
internal sealed partial class ReplyCoalescingPipe : ISecurableDuplexPipe
{
    /// <summary>Unsent replies above this many bytes are sent even when more commands wait (a flood of pipelined commands).</summary>
    private const int MaxHeldBytes = 16 * 1024;

    private static readonly TimeSpan ClosingWriteLimit = TimeSpan.FromSeconds(2);
    /// <summary>The longest command line taken (RFC 5321 §4.5.3.1.4 sets 512 octets; RFC 4954 §4 asks for 12,288 for AUTH).</summary>
    private const int MaxCommandLine = 32 * 1024;

    private static readonly byte[] IdleTimeoutReply = "421 4.4.2 idle timeout, closing the connection\r\n"u8.ToArray();
    private static readonly byte[] LineTooLongReply = "500 5.5.2 line too long, closing the connection\r\n"u8.ToArray();
    private static readonly byte[] MessageTooBigReply = "552 5.3.4 message size exceeds the limit, closing the connection\r\n"u8.ToArray();
    private static readonly byte[] ShutDownReply = "421 4.3.2 the server is shutting down, closing the connection\r\n"u8.ToArray();

    private readonly Socket _socket;
    private readonly NetworkStream _network;
    private readonly TimeSpan _idleTimeout;
    private readonly long _maxMessageSize;
    private readonly Action _closed;
    private readonly InputReader _input;
    private readonly HeldOutputWriter _output;
    private SslStream? _tls;
    private int _disposed;
    private bool _aborted;
    private bool _shuttingDown;

    /// <summary>Wraps an accepted socket.</summary>
    /// <param name="socket">The socket; owned from now on.</param>
    /// <param name="idleTimeout">How long a read may wait for the client.</param>
    /// <param name="closed">Called once when the connection is disposed.</param>
    /// <param name="maxMessageSize">The largest message, in bytes on the wire (see <see cref="ServerLimits.MaxMessageSize"/>).</param>
    public ReplyCoalescingPipe(Socket socket, TimeSpan idleTimeout, Action closed, int maxMessageSize = int.MaxValue)
    {
        _socket = socket;
        _network = new NetworkStream(socket, ownsSocket: true);
        _idleTimeout = idleTimeout;
        _maxMessageSize = maxMessageSize;
        _closed = closed;
        _output = new HeldOutputWriter(CreateWriter(_network), idleTimeout, Abort);
        _input = new InputReader(this, CreateReader(_network));
    }

    /// <inheritdoc/>
    public PipeReader Input => _input;

    /// <inheritdoc/>
    public PipeWriter Output => _output;

    /// <inheritdoc/>
    public bool IsSecure => _tls is not null;

    /// <inheritdoc/>
    public SslProtocols SslProtocol => _tls?.SslProtocol ?? SslProtocols.None;

    /// <summary>Whether Nagle's algorithm is off on the socket (it must be: see <see cref="ServerListenerFactory"/>).</summary>
    internal bool NoDelay => _socket.NoDelay;

    /// <summary>Whether the connection was closed for the idle timeout (or a STARTTLS injection).</summary>
    private bool Aborted
    {
        get => Volatile.Read(ref _aborted);
        set => Volatile.Write(ref _aborted, value);
    }

    /// <summary>
    /// Sends the replies held so far (the 220 to STARTTLS), then runs the TLS handshake. Bytes the client sent after
    /// STARTTLS and before the handshake are an injection attempt (RFC 3207 §5, CVE-2011-0411): the connection is
    /// closed and none of them is executed.
    /// </summary>
    /// <param name="certificate">The server certificate, with its private key.</param>
    /// <param name="protocols">The TLS versions allowed.</param>
    /// <param name="cancellationToken">Cancels the handshake.</param>
    /// <returns>A task that completes when TLS is up.</returns>
    /// <exception cref="IOException">Bytes followed STARTTLS in the same read, or the handshake failed.</exception>
    public async Task UpgradeAsync(X509Certificate certificate, SslProtocols protocols, CancellationToken cancellationToken = default)
    {
        await _output.SendHeldAsync(cancellationToken).ConfigureAwait(false);
        if (_input.Inner.TryRead(out var pending))
        {
            var injected = !pending.Buffer.IsEmpty;
            _input.Inner.AdvanceTo(pending.Buffer.Start);
            if (injected)
            {
                Abort();
                throw new IOException("the client sent commands after STARTTLS before the TLS handshake; the connection is closed");
            }
        }

        using var handshakeLimit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        handshakeLimit.CancelAfter(_idleTimeout);
        var tls = new SslStream(_network, leaveInnerStreamOpen: true);
        try
        {
            await tls.AuthenticateAsServerAsync(
                new SslServerAuthenticationOptions
                {
                    ServerCertificate = certificate,
                    ClientCertificateRequired = false,
                    EnabledSslProtocols = protocols,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                },
                handshakeLimit.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            Abort();
            throw new IOException($"the TLS handshake failed: {ex.Message}", ex);
        }

        await _input.Inner.CompleteAsync().ConfigureAwait(false);
        await _output.Inner.CompleteAsync().ConfigureAwait(false);
        _tls = tls;
        _input.Inner = CreateReader(tls);
        _output.Inner = CreateWriter(tls);
    }

    /// <summary>Whether <see cref="ShutDown"/> was called: the next read closes the connection with 421.</summary>
    private bool ShuttingDown => Volatile.Read(ref _shuttingDown);

    /// <summary>
    /// Closes the connection with <c>421 4.3.2</c> at the session's next read (at once when it waits for the client).
    /// Thread-safe: the reply is written on the session's own flow, never beside one of its replies.
    /// </summary>
    public void ShutDown()
    {
        Volatile.Write(ref _shuttingDown, true);
        try
        {
            _input.Inner.CancelPendingRead();
        }
        catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException)
        {
            // Completed already: the session is ending.
        }
    }

    /// <summary>Closes the connection.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Aborted = true;
        try
        {
            _output.Inner.Complete();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // Nothing was held (CompleteAsync sent it); the stream may be gone already.
        }

        // The slot is free before the client sees the close: a client that reconnects at once is not refused for its own old connection.
        _closed();
        _tls?.Dispose();
        _network.Dispose();
    }

    private static PipeReader CreateReader(Stream stream) =>
        PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024, minimumReadSize: 4 * 1024, leaveOpen: true));

    private static PipeWriter CreateWriter(Stream stream) =>
        PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 4 * 1024, leaveOpen: true));

    /// <summary>Closes the socket at once; later reads see the end of the input and replies go nowhere.</summary>
    private void Abort()
    {
        Aborted = true;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }

        _socket.Close();
    }

    /// <summary>Sends what is held and a last reply (best effort, within a short limit), then aborts.</summary>
    private async ValueTask CloseWithReplyAsync(byte[] reply)
    {
        try
        {
            using var limit = new CancellationTokenSource(ClosingWriteLimit);
            await _output.Inner.WriteAsync(reply, limit.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // The client may be gone or not reading: close anyway.
        }

        Abort();
    }
}
