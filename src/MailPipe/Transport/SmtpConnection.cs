using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace MailPipe.Transport;

/// <summary>
/// One transport connection: the socket (or a caller's stream), an optional <see cref="SslStream"/> over it, and the
/// <see cref="PipeReader"/>/<see cref="PipeWriter"/> pair the session reads and writes. STARTTLS swaps the pipes for
/// new ones over TLS; nothing above this class knows about sockets.
/// </summary>
internal sealed class SmtpConnection : IAsyncDisposable
{
    private const int MinimumReadSize = 4096;
    private const int MinimumWriteBufferSize = 16 * 1024;

    private readonly Socket? _socket;
    private readonly Stream _baseStream;
    private readonly CancellationTokenSource _closed = new();
    private SslStream? _tlsStream;
    private int _disposed;

    private SmtpConnection(Socket? socket, Stream baseStream)
    {
        _socket = socket;
        _baseStream = baseStream;
        (Input, Output) = CreatePipes(baseStream);

        // Read once now: after a reset by the peer the socket no longer knows them (getpeername fails with ENOTCONN).
        RemoteEndPoint = EndPointOf(socket, static s => s.RemoteEndPoint);
        LocalEndPoint = EndPointOf(socket, static s => s.LocalEndPoint);
    }

    /// <summary>What the server sends.</summary>
    public PipeReader Input { get; private set; }

    /// <summary>What is sent to the server.</summary>
    public PipeWriter Output { get; private set; }

    /// <summary>The TLS stream once TLS is active.</summary>
    public SslStream? TlsStream => _tlsStream;

    /// <summary>Fires once the connection is closed (<see cref="Abort"/>): for work of an operation that waits on the caller's code rather than on the connection (an AUTH token provider or challenge handler).</summary>
    public CancellationToken Closed => _closed.Token;

    /// <summary>Whether TLS is active (implicit TLS or after STARTTLS).</summary>
    public bool IsEncrypted => _tlsStream is not null;

    /// <summary>The remote end point, when this is a socket connection (as it was when the connection opened).</summary>
    public EndPoint? RemoteEndPoint { get; }

    /// <summary>
    /// Whether anything arrived while no reply was expected, without waiting: bytes buffered in <see cref="Input"/>,
    /// or the socket readable (an unsolicited reply such as 421, or the end of the stream). Used by the pool before
    /// lending an idle connection. True once aborted.
    /// </summary>
    public bool HasUnsolicitedInput()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return true;
        }

        if (Input.TryRead(out var result))
        {
            var any = !result.Buffer.IsEmpty || result.IsCompleted || result.IsCanceled;
            Input.AdvanceTo(result.Buffer.Start);
            if (any)
            {
                return true;
            }
        }

        try
        {
            return _socket is not null && _socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    /// <summary>
    /// Whether a read of <see cref="Input"/> could not complete now, known without starting one: a plaintext socket
    /// connection (no TLS, so the socket's bytes are the input's, and no TLS record such as a session ticket can make
    /// the socket readable without input), nothing unexamined in <see cref="Input"/>, and the socket neither readable
    /// nor closed. False whenever unsure (TLS, a caller's stream, a failure): then only a read tells.
    /// </summary>
    public bool NothingToRead()
    {
        if (_tlsStream is not null || _socket is null || Volatile.Read(ref _disposed) != 0)
        {
            return false;
        }

        if (Input.TryRead(out var result))
        {
            // Unexamined bytes (or the end): a read would complete at once.
            Input.AdvanceTo(result.Buffer.Start);
            return false;
        }

        try
        {
            return !_socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Whether <see cref="Input"/> holds bytes not examined yet (or its end), without reading the transport: a read would complete at once.</summary>
    public bool HasUnexaminedInput()
    {
        if (Volatile.Read(ref _disposed) != 0 || !Input.TryRead(out var result))
        {
            return false;
        }

        Input.AdvanceTo(result.Buffer.Start);
        return true;
    }

    /// <summary>
    /// After a failed TLS handshake: the first line of plain text the server sent instead of TLS (an SMTP greeting from
    /// a port without implicit TLS), or <see langword="null"/>.
    /// </summary>
    public string? HandshakePlainTextReply { get; private set; }

    /// <summary>The local end point, when this is a socket connection (for the address literal of EHLO).</summary>
    public EndPoint? LocalEndPoint { get; }

    /// <summary>Opens a TCP connection. <paramref name="cancellationToken"/> carries both the caller's cancellation and the connect timeout.</summary>
    /// <exception cref="SocketException">The connect failed.</exception>
    public static async Task<SmtpConnection> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            // DnsEndPoint resolves the name and tries every address; an IP literal is used as is.
            EndPoint endPoint = IPAddress.TryParse(host, out var address) ? new IPEndPoint(address, port) : new DnsEndPoint(host, port);
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return new SmtpConnection(socket, new NetworkStream(socket, ownsSocket: true));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Wraps a caller's connected stream (a proxy tunnel, an in-memory test server); its operations end when their token is cancelled, whether or not it honours the token (<see cref="CallerStream"/>).</summary>
    public static SmtpConnection FromStream(Stream stream) => new(null, new CallerStream(stream));

    /// <summary>
    /// Starts TLS over the current stream and swaps the pipes. The caller must have checked that no byte is buffered
    /// in <see cref="Input"/> (STARTTLS response injection): the old reader is dropped with whatever it holds.
    /// </summary>
    public async Task UpgradeToTlsAsync(SslClientAuthenticationOptions options, CancellationToken cancellationToken)
    {
        var recording = new HandshakeRecordingStream(_baseStream);
        var tls = new SslStream(recording, leaveInnerStreamOpen: true);
        try
        {
            await tls.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            HandshakePlainTextReply = recording.PlainTextReply;
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        recording.StopRecording();

        await Input.CompleteAsync().ConfigureAwait(false);
        await Output.CompleteAsync().ConfigureAwait(false);
        _tlsStream = tls;
        (Input, Output) = CreatePipes(tls);
    }

    /// <summary>Closes the connection at once (no QUIT); pending reads and writes fail.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            _socket?.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Already reset by the peer: nothing to shut down.
        }
        catch (ObjectDisposedException)
        {
        }

        // A caller's stream (ConnectAsync(Stream)) may throw anything from Dispose (a tunnel that fails to close): the
        // connection is closed all the same, its pending read ended below, and the failure that closed it reported as is.
        DisposeQuietly(_tlsStream);
        DisposeQuietly(_baseStream);
        _socket?.Dispose();
        Input.CancelPendingRead();
        _ = _closed.CancelAsync(); // the waits it ends run on the thread pool, never inside the caller's close
    }

    private static void DisposeQuietly(Stream? stream)
    {
        try
        {
            stream?.Dispose();
        }
        catch (Exception)
        {
            // Deliberately swallowed: nothing more can be done with a stream that failed to close, and its exception
            // must not replace the reason of the close (a DisconnectAsync, a timeout, the server's failure).
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        Abort();
        return ValueTask.CompletedTask;
    }

    private static EndPoint? EndPointOf(Socket? socket, Func<Socket, EndPoint?> which)
    {
        try
        {
            return socket is null ? null : which(socket);
        }
        catch (SocketException)
        {
            return null; // already reset by the peer: the read that follows reports it
        }
    }

    private static (PipeReader Input, PipeWriter Output) CreatePipes(Stream stream) =>
        (PipeReader.Create(stream, new StreamPipeReaderOptions(minimumReadSize: MinimumReadSize, leaveOpen: true, useZeroByteReads: false)),
         PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: MinimumWriteBufferSize, leaveOpen: true)));
}
