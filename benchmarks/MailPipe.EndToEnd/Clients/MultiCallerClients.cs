using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using MailKit.Security;
using MimeKit;
using MailKitSmtpClient = MailKit.Net.Smtp.SmtpClient;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// The <c>--callers N</c> mode (issue #10): N concurrent callers share one client object, as the requests of a web
/// service do. Each caller sends one message at a time and waits for its result; the run ends when the callers have
/// sent the run's messages between them. Connections are opened before the timed part.
/// </summary>
internal static class MultiCaller
{
    /// <summary>Concurrent callers (<c>--callers</c>); 32 by default.</summary>
    public static int Callers { get; set; } = 32;

    /// <summary>Runs <see cref="Callers"/> loops that together call <paramref name="send"/> <paramref name="count"/> times.</summary>
    /// <remarks>
    /// <paramref name="send"/> returns a <see cref="ValueTask"/> and the clients' implementations use
    /// <see cref="PoolingAsyncValueTaskMethodBuilder"/>, as <c>IClientSession.SendAsync</c> does: the harness's own
    /// per-call wrapper allocates nothing per message, so the allocation and CPU columns are the client's (an
    /// <c>async</c> lambda returning <see cref="Task"/> allocated a state machine box per message).
    /// </remarks>
    public static Task RunAsync(int count, Func<CancellationToken, ValueTask> send, CancellationToken cancellationToken)
    {
        var next = -1;
        return Task.WhenAll(Enumerable.Range(0, Callers).Select(_ => Task.Run(
            async () =>
            {
                while (Interlocked.Increment(ref next) < count)
                {
                    await send(cancellationToken);
                }
            },
            cancellationToken)));
    }

    public static void Check(SmtpSendResult result)
    {
        if (!result.IsAccepted)
        {
            throw new InvalidOperationException($"Message not accepted: {result}");
        }
    }
}

/// <summary>MailPipe's shared sender (<c>SmtpSender</c>, <c>MaxConnections = 2</c>): N callers' messages coalesced into pipelined batches.</summary>
internal sealed class MailPipeSenderClient : InProcessClientRunner
{
    public override string Name => "mailpipe-sender";

    public override string Description => "MailPipe SmtpSender (MaxConnections = 2, MaxMessagesPerConnection = 0 as the other clients keep their connections for the run, defaults otherwise), SendAsync per caller: concurrent callers coalesced into pipelined batches";

    /// <summary>Connections the sender opened in the last run (for the report's prose).</summary>
    public static long LastOpened { get; private set; }

    protected override async Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = "127.0.0.1",
            Port = port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 2,
            MaxMessagesPerConnection = 0,
        });
        var message = SmtpMessage.FromBytes(new SmtpEnvelope(Workload.Sender, [.. workload.Recipients]), workload.Message);

        // Warm: open the connections the callers will use (untimed, as the other clients connect untimed).
        var session = new Session(sender, message);
        await MultiCaller.RunAsync(MultiCaller.Callers, session.SendOneAsync, cancellationToken);
        return session;
    }

    private sealed class Session(SmtpSender sender, SmtpMessage message) : IBatchClientSession
    {
        public Task SendBatchAsync(int count, CancellationToken cancellationToken) =>
            MultiCaller.RunAsync(count, SendOneAsync, cancellationToken);

        public ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken) => SendOneAsync(cancellationToken);

        /// <summary>One caller's call: send, check the result.</summary>
        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        public async ValueTask SendOneAsync(CancellationToken cancellationToken) =>
            MultiCaller.Check(await sender.SendAsync(message, cancellationToken));

        public async ValueTask DisposeAsync()
        {
            LastOpened = sender.GetStatistics().Opened;
            await sender.DisposeAsync();
        }
    }
}

/// <summary>The pool users write around MailKit: a <see cref="SemaphoreSlim"/> and 8 connected <c>SmtpClient</c>s.</summary>
internal sealed class MailKitPoolClient : InProcessClientRunner
{
    private const int Size = 8;

    public override string Name => "mailkit-pool";

    public override string Description => "MailKit 4.18: a SemaphoreSlim(8) and 8 connected SmtpClients, each caller takes one for SendAsync and gives it back";

    protected override async Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var clients = new ConcurrentQueue<MailKitSmtpClient>();
        for (var i = 0; i < Size; i++)
        {
            var client = new MailKitSmtpClient();
            await client.ConnectAsync("127.0.0.1", port, SecureSocketOptions.None, cancellationToken);
            clients.Enqueue(client);
        }

        using var stream = new MemoryStream(workload.Message, writable: false);
        var message = await MimeMessage.LoadAsync(stream, cancellationToken);
        return new Session(clients, message, MailboxAddress.Parse(Workload.Sender), [.. workload.Recipients.Select(MailboxAddress.Parse)]);
    }

    private sealed class Session(ConcurrentQueue<MailKitSmtpClient> clients, MimeMessage message, MailboxAddress sender, MailboxAddress[] recipients) : IBatchClientSession
    {
        private readonly SemaphoreSlim _available = new(Size, Size);

        public Task SendBatchAsync(int count, CancellationToken cancellationToken) =>
            MultiCaller.RunAsync(count, SendOneAsync, cancellationToken);

        public ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken) => SendOneAsync(cancellationToken);

        public async ValueTask DisposeAsync()
        {
            while (clients.TryDequeue(out var client))
            {
                await client.DisconnectAsync(quit: true);
                client.Dispose();
            }

            _available.Dispose();
            message.Dispose();
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        private async ValueTask SendOneAsync(CancellationToken cancellationToken)
        {
            await _available.WaitAsync(cancellationToken);
            clients.TryDequeue(out var client);
            try
            {
                await client!.SendAsync(message, sender, recipients, cancellationToken);
            }
            finally
            {
                clients.Enqueue(client!);
                _available.Release();
            }
        }
    }
}

/// <summary>The ceiling of the sender's mode: two sessions, each sending half the run with one <c>SendBatchAsync</c>, concurrently.</summary>
internal sealed class MailPipeBatch2Client : InProcessClientRunner
{
    public override string Name => "mailpipe-batch2";

    public override string Description => "MailPipe: two AsyncSmtpSessions, each SendBatchAsync over half the run, concurrently (the ceiling for 2 connections)";

    protected override async Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var sessions = new AsyncSmtpSession[2];
        for (var i = 0; i < sessions.Length; i++)
        {
            sessions[i] = new AsyncSmtpSession();
            await sessions[i].ConnectAsync("127.0.0.1", port, cancellationToken: cancellationToken);
            Expect(250, (await sessions[i].EhloAsync("client.example.test", cancellationToken)).Code, "EHLO");
        }

        return new Session(sessions, SmtpMessage.FromBytes(new SmtpEnvelope(Workload.Sender, [.. workload.Recipients]), workload.Message));
    }

    private sealed class Session(AsyncSmtpSession[] sessions, SmtpMessage message) : IBatchClientSession
    {
        public async Task SendBatchAsync(int count, CancellationToken cancellationToken)
        {
            var half = count / 2;
            var results = await Task.WhenAll(
                sessions[0].SendBatchAsync(Enumerable.Repeat(message, half), cancellationToken),
                sessions[1].SendBatchAsync(Enumerable.Repeat(message, count - half), cancellationToken));
            foreach (var result in results.SelectMany(r => r))
            {
                MultiCaller.Check(result);
            }
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        public async ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken) =>
            MultiCaller.Check(await sessions[0].SendAsync(message, cancellationToken));

        public async ValueTask DisposeAsync()
        {
            foreach (var session in sessions)
            {
                await session.QuitAsync();
                await session.DisposeAsync();
            }
        }
    }
}
