using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// breaker22 (probes that held): through the pooled sender, an attempt timeout while the server holds its reply to RCPT (long before
/// DATA) is a transient TimedOut, retried, and the message is delivered once (README: "An attempt timeout before the
/// end of data is a transient TimedOut; after it, Unknown"), and the caller's cancellation there is an OperationCanceledException,
/// not an unknown outcome. A loopback server of its own: the first connection never
/// answers RCPT, the next ones deliver.
/// </summary>
public sealed class Breaker22PooledRcptTimeoutTests
{
    [Fact]
    public async Task An_attempt_timeout_while_the_server_holds_its_RCPT_reply_is_retried_and_delivered_once()
    {
        await using var server = RcptHoldingServer.Start();
        var time = new FakeTimeProvider();
        await using var sender = ResilientSender(server.Port, time);

        var send = sender.SendAsync(Message());
        await server.RcptHeld.WaitAsync(TimeSpan.FromSeconds(60));
        time.Advance(TimeSpan.FromSeconds(30));
        var result = await send.WaitAsync(TimeSpan.FromSeconds(60));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, $"nothing was delivered by the attempt that timed out before DATA ({result.Exception?.Message})");
        server.DataCommands.Should().Be(1);
    }

    [Fact]
    public async Task The_callers_cancellation_while_the_server_holds_its_RCPT_reply_is_OperationCanceledException_not_an_unknown_outcome()
    {
        await using var server = RcptHoldingServer.Start();
        var time = new FakeTimeProvider();
        await using var sender = ResilientSender(server.Port, time);

        using var caller = new CancellationTokenSource();
        var send = sender.SendAsync(Message(), caller.Token);
        await server.RcptHeld.WaitAsync(TimeSpan.FromSeconds(60));
        await caller.CancelAsync();

        // SendWithRetryAsync: "OperationCanceledException: cancelled before any end of data was written".
        var thrown = (await send.Awaiting(t => t.WaitAsync(TimeSpan.FromSeconds(60))).Should().ThrowAsync<OperationCanceledException>()).Which;
        thrown.Should().NotBeOfType<SmtpOutcomeUnknownException>("no DATA was ever sent: the caller may send the message again safely");
        server.DataCommands.Should().Be(0);
    }

    private static SmtpMessage Message() =>
        SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", "rcpt@example.test"), "Subject: x\r\n\r\nHello.\r\n"u8.ToArray());

    private static ISmtpSender ResilientSender(int port, TimeProvider time) => new SmtpSender(new SmtpSenderOptions
    {
        Host = "127.0.0.1",
        Port = port,
        TlsMode = SmtpTlsMode.None,
        EhloName = "client.example.test",
        Timeouts = SmtpTimeouts.Rfc5321,
    }).WithStandardResilience(
        o =>
        {
            o.AttemptTimeout.Timeout = TimeSpan.FromSeconds(30);
            o.Retry.MaxRetryAttempts = 1;
            o.Retry.Delay = TimeSpan.Zero;
            o.Retry.UseJitter = false;
        },
        time);

    /// <summary>A loopback server whose first connection never answers RCPT; the next ones deliver (DATA counted).</summary>
    private sealed class RcptHoldingServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource _rcptHeld = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _dataCommands;
        private int _connections;
        private Task _serving = Task.CompletedTask;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        /// <summary>Completes when the first connection's RCPT arrived (and is held).</summary>
        public Task RcptHeld => _rcptHeld.Task;

        public int DataCommands => Volatile.Read(ref _dataCommands);

        public static RcptHoldingServer Start()
        {
            var server = new RcptHoldingServer();
            server._listener.Start();
            server._serving = server.ServeAsync();
            return server;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _serving;
            _listener.Dispose();
            _stop.Dispose();
        }

        private async Task ServeAsync()
        {
            var clients = new List<Task>();
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    clients.Add(ServeOneAsync(client, Interlocked.Increment(ref _connections)));
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }

            await Task.WhenAll(clients);
        }

        private async Task ServeOneAsync(TcpClient client, int number)
        {
            using var _ = client;
            try
            {
                var stream = client.GetStream();
                using var reader = new StreamReader(stream, Encoding.ASCII);
                async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), _stop.Token);
                await Say("220 test ESMTP");
                while (await reader.ReadLineAsync(_stop.Token) is { } line)
                {
                    var verb = line.Split(' ', ':')[0].ToUpperInvariant();
                    switch (verb)
                    {
                        case "EHLO": await Say("250 test"); break;
                        case "MAIL": await Say("250 ok"); break;
                        case "RCPT" when number == 1:
                            _rcptHeld.TrySetResult();
                            break; // never answered
                        case "RCPT": await Say("250 ok"); break;
                        case "DATA":
                            Interlocked.Increment(ref _dataCommands);
                            await Say("354 go");
                            while (await reader.ReadLineAsync(_stop.Token) is { } content && content != ".")
                            {
                            }

                            await Say("250 queued");
                            break;
                        case "QUIT": await Say("221 bye"); return;
                        default: await Say("250 ok"); break;
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
