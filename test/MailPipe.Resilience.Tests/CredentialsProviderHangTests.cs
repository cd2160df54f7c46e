using System.Net;
using System.Net.Sockets;
using System.Text;
using MailPipe.Resilience.Tests.Support;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;
using Polly;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// A credentials provider that hangs past Timeouts.Reply (a secret store that stopped answering) gave TimedOut, which
/// the circuit breaker counted as a failure of the SMTP server, while the same store failing on its own I/O (or its
/// HttpClient.Timeout elapsing) gave a transient AuthenticationError that is not counted: a few hung lookups opened
/// the circuit and stopped every send to a healthy server. The hang now gives that same transient AuthenticationError
/// (around a TimeoutException): retried, and not counted.
/// </summary>
public sealed class CredentialsProviderHangTests
{
    [Fact]
    public async Task A_provider_that_hangs_past_the_reply_timeout_is_transient_and_never_opens_the_circuit()
    {
        var time = new FakeTimeProvider();
        await using var server = new AuthOfferingServer();
        var calls = 0;
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pooled = new SmtpSender(new SmtpSenderOptions
        {
            Name = "hang",
            Host = "127.0.0.1",
            Port = server.Port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 1,
            TimeProvider = time,
            AcquireTimeout = TimeSpan.FromHours(1),
            Session = new SmtpSessionOptions { AllowCleartextAuthentication = true },
            CredentialsProvider = async token =>
            {
                Interlocked.Increment(ref calls);
                Volatile.Read(ref entered).TrySetResult();
                await Task.Delay(Timeout.Infinite, token); // a secret store that stopped answering
                throw new InvalidOperationException("Unreachable.");
            },
        });
        await using var sender = pooled.WithStandardResilience(
            o =>
            {
                o.Retry.MaxRetryAttempts = 0;
                o.CircuitBreaker.MinimumThroughput = 2;
                o.CircuitBreaker.FailureRatio = 0.5;
                o.CircuitBreaker.BreakDuration = TimeSpan.FromMinutes(30);
                o.AttemptTimeout.Timeout = TimeSpan.FromMinutes(10);
                o.TotalRequestTimeout.Timeout = TimeSpan.FromMinutes(20);
            },
            time);

        for (var i = 0; i < 5; i++)
        {
            var send = sender.SendAsync(Scripts.Message("rcpt@example.test"));
            var first = await Task.WhenAny(entered.Task, send).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            first.Should().BeSameAs(entered.Task, $"send {i} reached the provider: the circuit is closed ({send.Status}, {send.Exception?.InnerException?.GetType().Name})");
            Volatile.Write(ref entered, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            time.Advance(SmtpTimeouts.Interactive.Reply);
            var result = await send.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

            result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
            SmtpResiliencePredicates.IsServerFailure(Outcome.FromResult(result)).Should().BeFalse($"the server did nothing wrong: the client's own secret store hung ({result.Exception})");
            result.Exception.Should().BeOfType<SmtpException>().Which.Should().Match<SmtpException>(
                e => e.ErrorCode == SmtpErrorCode.AuthenticationError && e.IsTransient && e.InnerException is TimeoutException, result.Exception!.ToString());
            SmtpResiliencePredicates.IsTransient(Outcome.FromResult(result)).Should().BeTrue();
        }

        calls.Should().Be(5);
        server.ReceivedText.Should().NotContain("AUTH ").And.NotContain("MAIL FROM");
    }

    [Fact]
    public async Task A_provider_that_cancels_itself_its_own_timeout_is_transient_and_not_a_server_failure()
    {
        await using var server = new AuthOfferingServer();
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "own-timeout",
            Host = "127.0.0.1",
            Port = server.Port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 1,
            Session = new SmtpSessionOptions { AllowCleartextAuthentication = true },
            CredentialsProvider = _ => ValueTask.FromException<System.Net.NetworkCredential>(new TaskCanceledException("The secret store's request was cancelled by its own timeout.")),
        });

        var result = await sender.SendAsync(Scripts.Message("rcpt@example.test")).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        SmtpResiliencePredicates.IsServerFailure(Outcome.FromResult(result)).Should().BeFalse($"the client's own secret store timed out ({result.Exception})");
        SmtpResiliencePredicates.IsTransient(Outcome.FromResult(result)).Should().BeTrue();
    }

    /// <summary>A loopback server that greets, offers AUTH PLAIN to EHLO and reads whatever follows, on every connection.</summary>
    private sealed class AuthOfferingServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly StringBuilder _received = new();
        private readonly Task _serving;

        public AuthOfferingServer()
        {
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _serving = ServeAsync();
        }

        public int Port { get; }

        public string ReceivedText
        {
            get
            {
                lock (_received)
                {
                    return _received.ToString();
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _serving;
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }

            _stop.Dispose();
        }

        private async Task ServeAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                _ = HandleAsync(client);
            }
        }

        private async Task HandleAsync(TcpClient client)
        {
            using (client)
            {
                try
                {
                    var stream = client.GetStream();
                    using var reader = new StreamReader(stream, Encoding.ASCII);
                    await stream.WriteAsync("220 mail.example.test ESMTP\r\n"u8.ToArray(), _stop.Token);
                    while (await reader.ReadLineAsync(_stop.Token) is { } line)
                    {
                        lock (_received)
                        {
                            _received.Append(line).Append('\n');
                        }

                        var reply = line.StartsWith("EHLO", StringComparison.OrdinalIgnoreCase) ? "250-mail.example.test\r\n250 AUTH PLAIN\r\n"
                            : line.StartsWith("QUIT", StringComparison.OrdinalIgnoreCase) ? "221 bye\r\n"
                            : "502 5.5.1 not here\r\n";
                        await stream.WriteAsync(Encoding.ASCII.GetBytes(reply), _stop.Token);
                    }
                }
                catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    // The client closed, or the test ended.
                }
            }
        }
    }
}
