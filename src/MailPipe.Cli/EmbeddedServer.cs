using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
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
internal sealed partial class EmbeddedServer : IAsyncDisposable
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    /// <summary>The session of <see cref="WarmUpAsync"/>, after the greeting: pipelined, ended with RSET (nothing to save).</summary>
    private static readonly byte[] WarmUpCommands =
        "EHLO warm-up.invalid\r\nMAIL FROM:<warm-up@warm-up.invalid>\r\nRCPT TO:<warm-up@warm-up.invalid>\r\nRSET\r\nQUIT\r\n"u8.ToArray();

    private readonly ServerListenerFactory _listeners;
    private readonly OutboxMessageStore _store;
    private readonly CancellationTokenSource _stop;
    private readonly Task _run;

    private EmbeddedServer(ServerListenerFactory listeners, OutboxMessageStore store, CancellationTokenSource stop, Task run, IPEndPoint endPoint)
    {
        _listeners = listeners;
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
        var store = new OutboxMessageStore(options.SaveDirectory, options.Received, options.MaxMessageSize);
        var builder = new SmtpServerOptionsBuilder()
            .ServerName(options.ServerName)
            .MaxMessageSize(options.MaxMessageSize, MaxMessageSizeHandling.Ignore)
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
        var listeners = new ServerListenerFactory(new ServerLimits(options.IdleTimeout, options.MaxConnections, options.MaxMessageSize));
        listeners.EndpointStarted += (_, e) => started.TrySetResult((IPEndPoint)e.LocalEndPoint);

        var services = new ServiceProvider();
        services.Add(store);
        services.Add(listeners);
        services.Add(new RecipientLimit(options.MaxRecipients));
        services.Add((ISmtpCommandFactory)new DeclaredSizeCheck());
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

        var embedded = new EmbeddedServer(listeners, store, stop, run, await started.Task.ConfigureAwait(false));
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

    /// <summary>Stops listening, lets the sessions in progress end (for a few seconds at most), closes those left with 421, then stops.</summary>
    /// <returns>A task that completes when the server is stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        _listeners.StopAccepting();
        var stopping = Stopwatch.StartNew();
        while (_listeners.OpenConnections > 0 && stopping.Elapsed < StopGrace)
        {
            await Task.Delay(20).ConfigureAwait(false);
        }

        // The sessions still open are closed with 421 at their next read, which ends them.
        _listeners.CloseOpenConnections();
        while (_listeners.OpenConnections > 0 && stopping.Elapsed < StopGrace * 2)
        {
            await Task.Delay(20).ConfigureAwait(false);
        }

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

    /// <summary>
    /// Checks MAIL's SIZE parameter (RFC 1870) where SmtpServer does not: it reads the value as a 32-bit number and takes
    /// one it cannot read as no SIZE at all, so a declared 2 GiB or more got 250 instead of 552, and a value that is not
    /// a number (a syntax error, RFC 1870 §4) got 250 too.
    /// </summary>
    private sealed class DeclaredSizeCheck : SmtpCommandFactory
    {
        public override SmtpCommand CreateMail(IMailbox address, IReadOnlyDictionary<string, string> parameters)
        {
            foreach (var (name, value) in parameters)
            {
                if (!name.Equals("SIZE", StringComparison.OrdinalIgnoreCase))
                {
                    continue;
                }

                if (string.IsNullOrEmpty(value) || !value.All(char.IsAsciiDigit))
                {
                    // size-value ::= 1*20DIGIT (RFC 1870 §4).
                    throw new SmtpResponseException(new SmtpResponse(SmtpReplyCode.SyntaxError, "5.5.4 the SIZE parameter is not a number (RFC 1870)"));
                }

                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    // More than SmtpServer reads, so more than any --max-size (at most 2047M): RFC 1870 §6.1.
                    throw new SmtpResponseException(new SmtpResponse(SmtpReplyCode.SizeLimitExceeded, "5.3.4 message size exceeds fixed maximum message size"));
                }
            }

            return base.CreateMail(address, parameters);
        }
    }

    /// <summary>At most so many recipients per transaction; the next ones get 452 (RFC 5321 §4.5.3.1.8). Also keeps each path as the client wrote it (<see cref="ReceivedMailboxes"/>).</summary>
    private sealed class RecipientLimit(int maxRecipients) : MailboxFilter
    {
        private const string CountKey = "MailPipe:RecipientCount";

        public override Task<bool> CanAcceptFromAsync(ISessionContext context, IMailbox from, int size, CancellationToken cancellationToken)
        {
            // A new transaction (SmtpServer calls this for every MAIL it takes): no recipients yet.
            context.Properties[CountKey] = 0;
            ReceivedMailboxes.Remember(context, from);
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
            ReceivedMailboxes.Remember(context, to);
            return Task.FromResult(true);
        }
    }
}
