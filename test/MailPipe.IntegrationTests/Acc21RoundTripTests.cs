using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests;

/// <summary>
/// Acceptance review (session 21) of issue #4, point 1, measured the way the issue says (not with the session's own
/// counter): a loopback proxy in front of Postfix delays every byte the server sends by a fixed time, and round trips =
/// elapsed time / delay, start-up (connect, EHLO) excluded, the fastest of three sends. A batch's round trips are
/// counted by <c>RoundTripTests</c> with the session's counter, not timed here: Postfix's <c>in_flow_delay</c> stalls a
/// MAIL for up to 1 s when the test run fills its queue, which a batch of 100 messages meets often (a fixed 100 ms delay
/// per round trip cannot tell one such stall from ten round trips), and a single send's best of three never.
/// </summary>
public sealed class Acc21RoundTripTests
{
    private static readonly TimeSpan Delay = TimeSpan.FromMilliseconds(250);

    public Acc21RoundTripTests() => TestServers.RequireListening(TestServers.PostfixPort);

    [Theory]
    [InlineData(true, true, 1)]
    [InlineData(false, true, 2)]
    [InlineData(false, false, 4)]
    public async Task One_transaction_through_a_delaying_proxy_costs_the_protocol_floor(bool chunking, bool pipelining, int expected)
    {
        await using var proxy = new DelayProxy(TestServers.PostfixPort, Delay);
        await using var session = await OpenAsync(proxy.Port, chunking, pipelining);

        // The fastest of three: a loaded machine (or Postfix's queue) may stall one send, never make one faster.
        var fastest = TimeSpan.MaxValue;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var watch = Stopwatch.StartNew();
            var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient("acc21-rt")), "Subject: rt\r\n\r\nx\r\n"u8.ToArray());
            var elapsed = watch.Elapsed;
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
            fastest = elapsed < fastest ? elapsed : fastest;
        }

        (fastest / Delay).Should().BeInRange(expected - 0.05, expected + 0.7);
    }

    private static async Task<AsyncSmtpSession> OpenAsync(int port, bool chunking, bool pipelining)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking, UsePipelining = pipelining });
        (await session.ConnectAsync(TestServers.Host, port))!.Code.Should().Be(220);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
        return session;
    }

    /// <summary>Relays one connection at a time to the server; what the server sends is passed on <c>delay</c> after it arrived (a fixed latency, not cumulative).</summary>
    private sealed class DelayProxy : IAsyncDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _tasks = [];
        private readonly int _target;
        private readonly TimeSpan _delay;

        public DelayProxy(int target, TimeSpan delay)
        {
            _target = target;
            _delay = delay;
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen();
            Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
            _tasks.Add(AcceptAsync());
        }

        public int Port { get; }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Dispose();
            try
            {
                await Task.WhenAll(_tasks).WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or IOException or TimeoutException)
            {
            }

            _stop.Dispose();
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptAsync(_stop.Token);
                var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                client.NoDelay = true;
                await server.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _target), _stop.Token);
                lock (_tasks)
                {
                    _tasks.Add(PassAsync(client, server, TimeSpan.Zero));
                    _tasks.Add(PassAsync(server, client, _delay));
                }
            }
        }

        private async Task PassAsync(Socket from, Socket to, TimeSpan delay)
        {
            var pending = Channel.CreateUnbounded<(long Arrival, byte[] Bytes)>();
            var writer = Task.Run(async () =>
            {
                await foreach (var (arrival, bytes) in pending.Reader.ReadAllAsync(_stop.Token))
                {
                    var wait = delay - Stopwatch.GetElapsedTime(arrival);
                    if (wait > TimeSpan.Zero)
                    {
                        await Task.Delay(wait, _stop.Token);
                    }

                    await to.SendAsync(bytes, SocketFlags.None, _stop.Token);
                }

                to.Shutdown(SocketShutdown.Send);
            });
            var buffer = new byte[65536];
            try
            {
                while (true)
                {
                    var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                    if (read == 0)
                    {
                        break;
                    }

                    pending.Writer.TryWrite((Stopwatch.GetTimestamp(), buffer[..read]));
                }
            }
            finally
            {
                pending.Writer.TryComplete();
                await writer;
            }
        }
    }
}
