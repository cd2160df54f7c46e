using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// A 421 (the server closing the channel, RFC 5321 §3.8) at each step of the first connection, with or without the
/// close after it: the message is stored exactly once, on a fresh connection (Attempts 2), or, when the session was
/// refused before any transaction, NotSent and transient; an Accepted result always matches a stored message.
/// Breaker10 probe through the pool (held).
/// </summary>
public sealed class SmtpSender421StepTests
{
    [Theory]
    [InlineData("MAIL", true)]
    [InlineData("RCPT", true)]
    [InlineData("DATA", true)]
    [InlineData("END", true)]
    [InlineData("MAIL", false)]
    [InlineData("RCPT", false)]
    [InlineData("DATA", false)]
    [InlineData("END", false)]
    public async Task A_421_in_a_transaction_is_sent_once_more_on_a_fresh_connection(string step, bool close)
    {
        await using var server = new StepServer(step, close);
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));

        var result = await sender.SendAsync(PoolTestMessages.Create("step-421", 0).Message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(2);
        server.Stored.Should().Be(1, "stored once, on the second connection");
        server.StoredOn.Should().Equal(2);
    }

    [Theory]
    [InlineData("greeting")]
    [InlineData("EHLO")]
    public async Task A_421_before_any_transaction_is_NotSent_and_transient(string step)
    {
        await using var server = new StepServer(step, close: true);
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));

        var result = await sender.SendAsync(PoolTestMessages.Create("step-421", 0).Message);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeTrue();
        server.Stored.Should().Be(0);
    }

    /// <summary>A small DATA-only server (PIPELINING, 8BITMIME) that answers 421 at one step of its first connection.</summary>
    private sealed class StepServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentQueue<int> _storedOn = new();
        private readonly string _step;
        private readonly bool _close;
        private readonly Task _accepting;
        private int _connections;

        public StepServer(string step, bool close)
        {
            (_step, _close) = (step, close);
            _listener.Start();
            _accepting = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Stored => _storedOn.Count;

        public IReadOnlyList<int> StoredOn => [.. _storedOn];

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accepting;
            _stop.Dispose();
        }

        private async Task AcceptAsync()
        {
            List<Task> sessions = [];
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    sessions.Add(ServeAsync(client, Interlocked.Increment(ref _connections)));
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                await Task.WhenAll(sessions);
            }
        }

        private async Task ServeAsync(TcpClient client, int connection)
        {
            using var owned = client;
            var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.Latin1);
            try
            {
                if (!await ReplyAsync(stream, connection, "greeting", "220 step.test\r\n"))
                {
                    return;
                }

                while (await reader.ReadLineAsync(_stop.Token) is { } line)
                {
                    var verb = line.Split(' ', ':')[0].ToUpperInvariant();
                    var ok = verb switch
                    {
                        "EHLO" => await ReplyAsync(stream, connection, verb, "250-step.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
                        "QUIT" => !await ReplyAsync(stream, connection, verb, "221 bye\r\n"),
                        "DATA" => await ReplyAsync(stream, connection, verb, "354 go\r\n") && await ReadDataAsync(reader, stream, connection),
                        _ => await ReplyAsync(stream, connection, verb, "250 ok\r\n"),
                    };
                    if (!ok)
                    {
                        return;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // The client closed the connection, or the test ended.
            }
        }

        private async Task<bool> ReadDataAsync(StreamReader reader, NetworkStream stream, int connection)
        {
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                if (line == ".")
                {
                    var fault = connection == 1 && _step == "END";
                    if (!fault)
                    {
                        _storedOn.Enqueue(connection);
                    }

                    return await ReplyAsync(stream, connection, "END", "250 2.0.0 stored\r\n");
                }
            }

            return false;
        }

        /// <summary>Writes the reply, or the 421 at the faulty step of the first connection; false when the connection is to be closed.</summary>
        private async Task<bool> ReplyAsync(NetworkStream stream, int connection, string step, string reply)
        {
            var fault = connection == 1 && step == _step;
            await stream.WriteAsync(Encoding.ASCII.GetBytes(fault ? "421 4.3.2 step.test closing\r\n" : reply), _stop.Token);
            return !(fault && _close);
        }
    }
}
