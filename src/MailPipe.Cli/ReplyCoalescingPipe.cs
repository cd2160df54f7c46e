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

    /// <summary>The command line SmtpServer took last, when it held an octet above 127 or a backslash; otherwise <see langword="null"/>.</summary>
    internal byte[]? LastRawCommand => _input.LastRawCommand;

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
