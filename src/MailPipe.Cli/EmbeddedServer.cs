using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using SmtpServer;
using SmtpServer.ComponentModel;
using SmtpServer.Net;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace MailPipe.Cli;

/// <summary>
/// A local SMTP server for <c>mailpipe send</c> without <c>--server</c>: it listens on 127.0.0.1 on a free port and
/// saves every message it receives to a folder as <c>&lt;timestamp&gt;-&lt;n&gt;.eml</c> (the SmtpServer package).
/// </summary>
internal sealed class EmbeddedServer : IAsyncDisposable
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

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
        Address = new ServerAddress(endPoint.Address.ToString(), endPoint.Port);
    }

    /// <summary>Where the server listens.</summary>
    public ServerAddress Address { get; }

    /// <summary>Creates the folder and starts listening; returns once the port is open.</summary>
    /// <param name="saveDirectory">Where to save the messages (created if missing).</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The running server.</returns>
    /// <exception cref="IOException">The folder cannot be created.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder cannot be created.</exception>
    public static async Task<EmbeddedServer> StartAsync(string saveDirectory, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(saveDirectory);
        var store = new OutboxMessageStore(saveDirectory);
        var options = new SmtpServerOptionsBuilder()
            .ServerName("localhost")
            .Endpoint(builder => builder.Endpoint(new IPEndPoint(IPAddress.Loopback, 0)))
            .Build();

        var started = new TaskCompletionSource<IPEndPoint>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listeners = new EndpointListenerFactory();
        listeners.EndpointStarted += (_, e) => started.TrySetResult((IPEndPoint)e.LocalEndPoint);

        var services = new ServiceProvider();
        services.Add(store);
        services.Add(listeners);
        var server = new SmtpServer.SmtpServer(options, services);
        var stop = new CancellationTokenSource();
        var run = server.StartAsync(stop.Token);
        var first = await Task.WhenAny(started.Task, run).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (first != started.Task)
        {
            await run.ConfigureAwait(false);
            stop.Dispose();
            throw new IOException("the embedded SMTP server stopped as it started");
        }

        return new EmbeddedServer(server, store, stop, run, await started.Task.ConfigureAwait(false));
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
            await _run.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The stop was asked for.
        }

        _stop.Dispose();
    }

    /// <summary>Saves each message to <c>&lt;timestamp&gt;-&lt;n&gt;.eml</c>, never over an existing file.</summary>
    private sealed class OutboxMessageStore : MessageStore
    {
        private static readonly ReadOnlyMemory<byte> Crlf = "\r\n"u8.ToArray();
        private int _count;

        public OutboxMessageStore(string directory) => Directory = directory;

        public string Directory { get; }

        public ConcurrentQueue<string> Saved { get; } = new();

        public override async Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            var stamp = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
            while (true)
            {
                var n = Interlocked.Increment(ref _count);
                var name = string.Create(CultureInfo.InvariantCulture, $"{stamp}-{n}.eml");
                var path = Path.Combine(Directory, name);
                FileStream file;
                try
                {
                    file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 64 * 1024, useAsync: true);
                }
                catch (IOException) when (File.Exists(path))
                {
                    continue;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    return new SmtpResponse(SmtpReplyCode.TransactionFailed, $"cannot save the message: {ex.Message}");
                }

                try
                {
                    await using (file.ConfigureAwait(false))
                    {
                        foreach (var segment in buffer)
                        {
                            await file.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
                        }

                        // SmtpServer hands over the data without the CRLF that ends its last line (it takes it as part
                        // of CRLF "." CRLF); RFC 5321 §4.1.1.4 counts it as the message's, so it goes back in.
                        if (!buffer.IsEmpty)
                        {
                            await file.WriteAsync(Crlf, cancellationToken).ConfigureAwait(false);
                        }
                    }
                }
                catch (IOException ex)
                {
                    File.Delete(path);
                    return new SmtpResponse(SmtpReplyCode.TransactionFailed, $"cannot save the message: {ex.Message}");
                }

                Saved.Enqueue(path);
                return new SmtpResponse(SmtpReplyCode.Ok, $"Saved as {name}");
            }
        }
    }
}
