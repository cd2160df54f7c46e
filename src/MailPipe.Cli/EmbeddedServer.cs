using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Win32.SafeHandles;
using SmtpServer;
using SmtpServer.Authentication;
using SmtpServer.ComponentModel;
using SmtpServer.Mail;
using SmtpServer.Net;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace MailPipe.Cli;

/// <summary>
/// The local SMTP server of the CLI (the SmtpServer package): the outbox of <c>mailpipe send</c> without
/// <c>--server</c>, and <c>mailpipe serve</c>. It saves every message it receives to a folder as
/// <c>&lt;timestamp&gt;-&lt;n&gt;.eml</c>, the bytes of the DATA un-stuffed, before it answers 250.
/// </summary>
/// <remarks>
/// It offers PIPELINING, 8BITMIME, SMTPUTF8 and SIZE, STARTTLS when given a certificate and AUTH PLAIN/LOGIN when
/// given an authenticator. Its connections come from <see cref="ServerListenerFactory"/>: no Nagle, replies to a
/// pipelined group sent together, an idle timeout, a connection limit.
/// </remarks>
internal sealed class EmbeddedServer : IAsyncDisposable
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    /// <summary>The session of <see cref="WarmUpAsync"/>, after the greeting: pipelined, ended with RSET (nothing to save).</summary>
    private static readonly byte[] WarmUpCommands =
        "EHLO warm-up.invalid\r\nMAIL FROM:<warm-up@warm-up.invalid>\r\nRCPT TO:<warm-up@warm-up.invalid>\r\nRSET\r\nQUIT\r\n"u8.ToArray();

    private readonly SmtpServer.SmtpServer _server;
    private readonly OutboxMessageStore _store;
    private readonly CancellationTokenSource _stop;
    private readonly Task _run;

    private EmbeddedServer(SmtpServer.SmtpServer server, OutboxMessageStore store, CancellationTokenSource stop, Task run, IPEndPoint endPoint)
    {
        _server = server;
        _store = store;
        _stop = stop;
        _run = run;
        EndPoint = endPoint;
        Address = new ServerAddress(endPoint.Address.ToString(), endPoint.Port);
    }

    /// <summary>Where the server listens.</summary>
    public ServerAddress Address { get; }

    /// <summary>Where the server listens, as bound (the port chosen when 0 was asked for).</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>
    /// The outbox of <c>mailpipe send</c>: creates the folder and starts listening on 127.0.0.1 on a free port; returns
    /// once the port is open and a warm-up session (nothing saved) has run through it. Its only client is the same process, so messages and recipients are not limited (as
    /// before <c>serve</c> existed); the idle timeout and connection limit are the defaults.
    /// </summary>
    /// <param name="saveDirectory">Where to save the messages (created if missing).</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The running server.</returns>
    /// <exception cref="IOException">The folder cannot be created.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder cannot be created.</exception>
    public static Task<EmbeddedServer> StartAsync(string saveDirectory, CancellationToken cancellationToken) =>
        StartAsync(new EmbeddedServerOptions { SaveDirectory = saveDirectory, MaxMessageSize = int.MaxValue, MaxRecipients = int.MaxValue }, cancellationToken);

    /// <summary>Creates the folder and starts listening; returns once the port is open and a warm-up session (nothing saved) has run through it.</summary>
    /// <param name="options">Where to listen and save, the limits, TLS and AUTH.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The running server.</returns>
    /// <exception cref="IOException">The folder cannot be created.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder cannot be created.</exception>
    /// <exception cref="System.Net.Sockets.SocketException">The address cannot be listened on (in use, not an address of this machine).</exception>
    public static async Task<EmbeddedServer> StartAsync(EmbeddedServerOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(options.SaveDirectory);
        var store = new OutboxMessageStore(options.SaveDirectory, options.Received);
        var builder = new SmtpServerOptionsBuilder()
            .ServerName(options.ServerName)
            .MaxMessageSize(options.MaxMessageSize, MaxMessageSizeHandling.Strict)
            .MaxRetryCount(5)
            .MaxAuthenticationAttempts(3)
            .CommandWaitTimeout(options.IdleTimeout + TimeSpan.FromSeconds(1))
            .Endpoint(endpoint =>
            {
                endpoint.Endpoint(options.EndPoint)
                    .SessionTimeout(Timeout.InfiniteTimeSpan)
                    .SupportedSslProtocols(SslProtocols.Tls12 | SslProtocols.Tls13)
                    .AuthenticationRequired(options.Authenticator is not null && options.AuthenticationRequired)
                    .AllowUnsecureAuthentication(options.Authenticator is not null && options.Certificate is null);
                if (options.Certificate is not null)
                {
                    endpoint.Certificate(options.Certificate);
                }
            });

        var started = new TaskCompletionSource<IPEndPoint>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listeners = new ServerListenerFactory(new ServerLimits(options.IdleTimeout, options.MaxConnections));
        listeners.EndpointStarted += (_, e) => started.TrySetResult((IPEndPoint)e.LocalEndPoint);

        var services = new ServiceProvider();
        services.Add(store);
        services.Add(listeners);
        services.Add(new RecipientLimit(options.MaxRecipients));
        if (options.Authenticator is not null)
        {
            services.Add(options.Authenticator);
        }

        var server = new SmtpServer.SmtpServer(builder.Build(), new Services(services, options.Authenticator is not null));
        var stop = new CancellationTokenSource();
        var run = server.StartAsync(stop.Token);
        var first = await Task.WhenAny(started.Task, run).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (first != started.Task)
        {
            stop.Dispose();
            await run.ConfigureAwait(false);
            throw new IOException("the embedded SMTP server stopped as it started");
        }

        var embedded = new EmbeddedServer(server, store, stop, run, await started.Task.ConfigureAwait(false));
        await embedded.WarmUpAsync(cancellationToken).ConfigureAwait(false);
        return embedded;
    }

    /// <summary>
    /// Runs one session through the server before it is reported ready: the greeting, then EHLO, MAIL, RCPT, RSET and
    /// QUIT; nothing is saved or reported. A fresh process runs the server's session code for the first time there
    /// (precompiled code bound on its first call, the rest compiled by the JIT): tens of milliseconds that the first
    /// client's session would otherwise wait for. Best effort: a failure is ignored (the server works the same without).
    /// </summary>
    private async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        var address = EndPoint.Address.Equals(IPAddress.Any) ? IPAddress.Loopback
            : EndPoint.Address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback
            : EndPoint.Address;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(StopGrace);
        try
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(new IPEndPoint(address, EndPoint.Port), limit.Token).ConfigureAwait(false);
            var buffer = new byte[4096];
            var received = 0;
            while (buffer.AsSpan(0, received).IndexOf("\r\n"u8) < 0 && received < buffer.Length)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, limit.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    return;
                }

                received += n;
            }

            await socket.SendAsync(WarmUpCommands, SocketFlags.None, limit.Token).ConfigureAwait(false);

            // The server closes after its 221 (and only then frees the connection's slot: see ReplyCoalescingPipe.Dispose).
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, limit.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            // Only a warm-up: the first client pays what it did not.
        }
    }

    /// <summary>Takes the path of the next message saved, in the order they were received.</summary>
    /// <param name="path">The path (the save folder as given, joined with the file name).</param>
    /// <returns>Whether a saved message was waiting.</returns>
    public bool TryTakeSaved(out string path) => _store.Saved.TryDequeue(out path!);

    /// <summary>Stops listening, lets the sessions in progress end (for a few seconds at most), then stops.</summary>
    /// <returns>A task that completes when the server is stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        _server.Shutdown();
        await Task.WhenAny(_server.ShutdownTask, Task.Delay(StopGrace)).ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _run.WaitAsync(StopGrace).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The stop was asked for.
        }
        catch (TimeoutException)
        {
            // A session that does not end on cancellation: its socket goes with the process.
        }

        _stop.Dispose();
    }

    /// <summary>Checks the AUTH credentials: any, or one user name and password.</summary>
    internal sealed class Authenticator : UserAuthenticator
    {
        private readonly byte[]? _user;
        private readonly byte[]? _password;

        /// <summary>Creates an authenticator.</summary>
        /// <param name="user">The only user name accepted, or <see langword="null"/> to accept any credentials.</param>
        /// <param name="password">The password of <paramref name="user"/>.</param>
        public Authenticator(string? user, string? password)
        {
            _user = user is null ? null : Encoding.UTF8.GetBytes(user);
            _password = password is null ? null : Encoding.UTF8.GetBytes(password);
        }

        /// <summary>Whether any credentials are accepted.</summary>
        public bool AcceptsAny => _user is null;

        /// <inheritdoc/>
        public override Task<bool> AuthenticateAsync(ISessionContext context, string user, string password, CancellationToken cancellationToken)
        {
            if (_user is null)
            {
                return Task.FromResult(true);
            }

            // Both compared whole, in constant time, so that the reply time tells nothing.
            var userMatches = CryptographicOperations.FixedTimeEquals(_user, Encoding.UTF8.GetBytes(user ?? string.Empty));
            var passwordMatches = CryptographicOperations.FixedTimeEquals(_password ?? [], Encoding.UTF8.GetBytes(password ?? string.Empty));
            return Task.FromResult(userMatches & passwordMatches);
        }
    }

    /// <summary>SmtpServer's services, without any authenticator when AUTH is off (its own default would offer AUTH after STARTTLS and accept anyone).</summary>
    private sealed class Services(ServiceProvider inner, bool authentication) : IServiceProvider
    {
        public object? GetService(Type serviceType) =>
            serviceType == typeof(IUserAuthenticator) || (!authentication && serviceType == typeof(IUserAuthenticatorFactory))
                ? null
                : inner.GetService(serviceType);
    }

    /// <summary>At most so many recipients per transaction; the next ones get 452 (RFC 5321 §4.5.3.1.8).</summary>
    private sealed class RecipientLimit(int maxRecipients) : MailboxFilter
    {
        private const string CountKey = "MailPipe:RecipientCount";

        public override Task<bool> CanAcceptFromAsync(ISessionContext context, IMailbox from, int size, CancellationToken cancellationToken)
        {
            // A new transaction (SmtpServer calls this for every MAIL it takes): no recipients yet.
            context.Properties[CountKey] = 0;
            return Task.FromResult(true);
        }

        public override Task<bool> CanDeliverToAsync(ISessionContext context, IMailbox to, IMailbox from, CancellationToken cancellationToken)
        {
            var count = context.Properties.TryGetValue(CountKey, out var value) && value is int n ? n : 0;
            if (count >= maxRecipients)
            {
                // SmtpServer ends the session after five such errors in a row: a flood gets a few 452s, then the close.
                throw new SmtpResponseException(new SmtpResponse(SmtpReplyCode.InsufficientStorage, $"4.5.3 too many recipients (at most {maxRecipients.ToString(CultureInfo.InvariantCulture)} per message)"));
            }

            context.Properties[CountKey] = count + 1;
            return Task.FromResult(true);
        }
    }

    /// <summary>Saves each message to <c>&lt;timestamp&gt;-&lt;n&gt;.eml</c>, never over an existing file, before the 250.</summary>
    /// <remarks>
    /// Per message: one <c>open</c> (create, never over an existing file), one <c>pwritev</c> with the whole message,
    /// one <c>close</c>. No <see cref="FileStream"/> (its position and length calls), no advisory lock: the lock that
    /// <see cref="FileShare.None"/> asks for costs two <c>flock</c> calls and protects nothing here, as every file is
    /// new and only ever written by this server.
    /// </remarks>
    private sealed class OutboxMessageStore : MessageStore
    {
        private static readonly ReadOnlyMemory<byte> Crlf = "\r\n"u8.ToArray();
        private readonly Action<SavedMessage>? _received;
        private readonly Lock _stampLock = new();
        private long _stampSecond = -1;
        private string _stamp = string.Empty;
        private int _count;

        public OutboxMessageStore(string directory, Action<SavedMessage>? received)
        {
            Directory = directory;
            _received = received;
        }

        public string Directory { get; }

        public ConcurrentQueue<string> Saved { get; } = new();

        public override Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            // SmtpServer un-stuffs every line but the first: it looks for CRLF ".." (RFC 5321 §4.5.2). A first line that
            // starts with a dot came stuffed, as every such line does, so its first dot goes.
            if (!buffer.IsEmpty && buffer.FirstSpan[0] == (byte)'.')
            {
                buffer = buffer.Slice(1);
            }

            // SmtpServer hands over the data without the CRLF that ends its last line (it takes it as part of
            // CRLF "." CRLF); RFC 5321 §4.1.1.4 counts it as the message's, so it goes back in.
            var parts = new List<ReadOnlyMemory<byte>>(buffer.IsSingleSegment ? 2 : 8);
            foreach (var segment in buffer)
            {
                parts.Add(segment);
            }

            if (!buffer.IsEmpty)
            {
                parts.Add(Crlf);
            }

            var size = buffer.IsEmpty ? 0 : buffer.Length + Crlf.Length;
            var stamp = Stamp();
            while (true)
            {
                var n = Interlocked.Increment(ref _count);
                var name = string.Create(CultureInfo.InvariantCulture, $"{stamp}-{n}.eml");
                var path = Path.Combine(Directory, name);
                SafeFileHandle file;
                try
                {
                    // A small file is written at once: an asynchronous write would cost a thread-pool hop per message.
                    file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
                }
                catch (IOException) when (File.Exists(path))
                {
                    // The name is taken (a file left from an earlier run): the next number.
                    continue;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    return Task.FromResult(new SmtpResponse(SmtpReplyCode.TransactionFailed, $"4.3.0 cannot save the message: {ex.Message}"));
                }

                try
                {
                    using (file)
                    {
                        RandomAccess.Write(file, parts, fileOffset: 0);
                    }
                }
                catch (IOException ex)
                {
                    TryDelete(path);
                    return Task.FromResult(new SmtpResponse(SmtpReplyCode.TransactionFailed, $"4.3.0 cannot save the message: {ex.Message}"));
                }

                Saved.Enqueue(path);
                _received?.Invoke(new SavedMessage(
                    DateTimeOffset.UtcNow,
                    transaction.From?.AsAddress() ?? string.Empty,
                    [.. transaction.To.Select(t => t.AsAddress() ?? string.Empty)],
                    size,
                    path,
                    context.Properties.TryGetValue(EndpointListener.RemoteEndPointKey, out var remote) ? remote as EndPoint : null,
                    context.Pipe.IsSecure,
                    context.Authentication.IsAuthenticated ? context.Authentication.User : null));
                return Task.FromResult(new SmtpResponse(SmtpReplyCode.Ok, $"2.0.0 saved as {name}"));
            }
        }

        /// <summary>The current second as the file names' timestamp, formatted once per second.</summary>
        private string Stamp()
        {
            var now = DateTime.UtcNow;
            var second = now.Ticks / TimeSpan.TicksPerSecond;
            lock (_stampLock)
            {
                if (second != _stampSecond)
                {
                    _stamp = now.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
                    _stampSecond = second;
                }

                return _stamp;
            }
        }

        private static void TryDelete(string path)
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Left behind; the reply says the message was not taken.
            }
        }
    }
}

/// <summary>What the embedded server listens on, where it saves, and its limits.</summary>
internal sealed record EmbeddedServerOptions
{
    /// <summary>The default <see cref="MaxMessageSize"/>: 25 MiB.</summary>
    public const int DefaultMaxMessageSize = 25 * 1024 * 1024;

    /// <summary>The default <see cref="MaxRecipients"/>, as Postfix's <c>smtpd_recipient_limit</c>.</summary>
    public const int DefaultMaxRecipients = 1000;

    /// <summary>The default <see cref="IdleTimeout"/>: 5 minutes, as RFC 5321 §4.5.3.2.7 asks of a server.</summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The default <see cref="MaxConnections"/>.</summary>
    public const int DefaultMaxConnections = 100;

    /// <summary>Where to listen (default 127.0.0.1, a free port).</summary>
    public IPEndPoint EndPoint { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>The folder the messages are saved in (created if missing).</summary>
    public required string SaveDirectory { get; init; }

    /// <summary>The name in the greeting and the EHLO reply.</summary>
    public string ServerName { get; init; } = "localhost";

    /// <summary>The largest message taken, in bytes on the wire (advertised as SIZE, RFC 1870); a larger one gets 552 and the connection is closed.</summary>
    public int MaxMessageSize { get; init; } = DefaultMaxMessageSize;

    /// <summary>The most recipients per message; more get 452.</summary>
    public int MaxRecipients { get; init; } = DefaultMaxRecipients;

    /// <summary>How long the server waits for the client's next bytes before it answers 421 and closes.</summary>
    public TimeSpan IdleTimeout { get; init; } = DefaultIdleTimeout;

    /// <summary>How many connections may be open at once.</summary>
    public int MaxConnections { get; init; } = DefaultMaxConnections;

    /// <summary>The certificate for STARTTLS (RFC 3207), with its private key; <see langword="null"/> for no STARTTLS.</summary>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>The AUTH PLAIN/LOGIN check (RFC 4954), or <see langword="null"/> for no AUTH. AUTH is offered only after STARTTLS when there is a certificate.</summary>
    public EmbeddedServer.Authenticator? Authenticator { get; init; }

    /// <summary>Whether MAIL needs AUTH first (530 otherwise).</summary>
    public bool AuthenticationRequired { get; init; }

    /// <summary>Called for each message once it is saved, before its 250; from the session's thread, so it must be quick and thread-safe.</summary>
    public Action<SavedMessage>? Received { get; init; }
}

/// <summary>A message the embedded server saved.</summary>
/// <param name="Time">When it was saved.</param>
/// <param name="From">The reverse-path (MAIL FROM), empty for the null path.</param>
/// <param name="To">The forward-paths (RCPT TO), in order.</param>
/// <param name="Size">The bytes saved.</param>
/// <param name="Path">The file.</param>
/// <param name="Remote">The client's address and port.</param>
/// <param name="Tls">Whether the message came over TLS.</param>
/// <param name="User">The user name the client authenticated as, or <see langword="null"/>.</param>
internal sealed record SavedMessage(DateTimeOffset Time, string From, IReadOnlyList<string> To, long Size, string Path, EndPoint? Remote, bool Tls, string? User);
