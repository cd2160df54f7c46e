using System.Net;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// A peer's tests of the shared sender's documented contract (README, "The shared sender") not covered elsewhere:
/// unsolicited replies on idle connections, failing credential and token providers, and the pool's statistics under churn.
/// </summary>
public sealed class PeerSenderContractTests
{
    [Theory]
    [InlineData("250 2.0.0 stray reply")]
    [InlineData("220 loopback ESMTP again")]
    [InlineData("421 4.3.2 going down soon")]
    public async Task An_idle_connection_with_an_unsolicited_reply_waiting_is_never_lent_and_the_next_message_goes_once_on_a_new_one(string unsolicited)
    {
        await using var server = new LoopbackSmtpServer();
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1));
        (await sender.SendAsync(PoolTestMessages.Create("stray", 0).Message)).IsAccepted.Should().BeTrue();
        await WaitUntilAsync(() => sender.GetStatistics().Idle == 1);

        await proxy.InjectAllAsync(unsolicited);   // the connection stays open, a reply nobody asked for waiting on it
        var (message, messageId) = PoolTestMessages.Create("stray", 1);
        var result = await sender.SendAsync(message).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(1, "a connection unfit to lend is replaced before the message is given to it");
        server.CountOf(messageId).Should().Be(1);
        server.Received.Single(m => m.MessageId == messageId).Connection.Should().Be(2, "the connection with the unsolicited reply is never lent again");
        server.CommandsOf(1).Count(c => c.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase)).Should().Be(1);
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.Retries == 0 && s.Discarded == 1 && s.Opened == 2);
    }

    [Fact]
    public async Task A_credentials_provider_that_throws_makes_the_message_NotSent_and_is_called_again_for_the_next_connection()
    {
        await using var server = new LoopbackSmtpServer();
        var calls = 0;
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.CredentialsProvider = _ =>
        {
            Interlocked.Increment(ref calls);
            throw new InvalidOperationException("The secret store is unreachable.");
        };
        await using var sender = new SmtpSender(options);

        var (message, messageId) = PoolTestMessages.Create("provider", 0);
        var first = await sender.SendAsync(message).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        var second = await sender.SendAsync(PoolTestMessages.Create("provider", 1).Message).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        foreach (var result in new[] { first, second })
        {
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent, "SendAsync never throws for the server's or the network's sake, nor for a provider's failure");
            result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
            result.Exception!.InnerException.Should().BeOfType<InvalidOperationException>("the provider's failure is kept as the cause");
        }

        calls.Should().Be(2, "providers are called per connection");
        server.Received.Should().BeEmpty();
        server.Commands.Should().NotContain(c => c.Line.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase));
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.OpenFailures == 2 && s.Opened == 0 && s.InUse == 0 && s.Idle == 0 && s.PendingRequests == 0);
    }

    [Fact]
    public async Task A_credentials_provider_that_times_out_on_its_own_is_NotSent_transient_not_a_cancellation_of_the_caller()
    {
        await using var server = new LoopbackSmtpServer();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.CredentialsProvider = _ => ValueTask.FromException<NetworkCredential>(new TaskCanceledException("The secret store's HTTP request timed out."));
        await using var sender = new SmtpSender(options);

        var result = await sender.SendAsync(PoolTestMessages.Create("provider-timeout", 0).Message).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, "only the caller's own cancellation throws OperationCanceledException");

        // Its own I/O did not complete in time, as with an HttpClient.Timeout: the provider's failure, not the server's.
        result.Exception.Should().BeOfType<SmtpException>().Which.Should().Match<SmtpException>(e => e.ErrorCode == SmtpErrorCode.AuthenticationError && e.IsTransient && e.InnerException is TaskCanceledException);
        server.Received.Should().BeEmpty();
    }

    [Fact]
    public async Task A_credentials_provider_that_never_returns_fails_its_open_at_the_reply_timeout_and_does_not_hold_the_slot_forever()
    {
        await using var server = new LoopbackSmtpServer();
        var time = new FakeTimeProvider();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.TimeProvider = time;
        options.AcquireTimeout = TimeSpan.FromSeconds(5);
        options.CredentialsProvider = async token =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                entered.TrySetResult();
                await Task.Delay(Timeout.Infinite, token);   // a secret store that never answers (only the token ends the wait)
            }

            return null!;   // this server offers no AUTH: none is done
        };
        await using var sender = new SmtpSender(options);

        var first = sender.SendAsync(PoolTestMessages.Create("hung-provider", 0).Message);
        await entered.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        time.Advance(TimeSpan.FromSeconds(6));
        var firstResult = await first.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        firstResult.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        firstResult.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);

        time.Advance(options.Timeouts.Reply);   // past the reply timeout since the provider was called
        await WaitUntilAsync(() => sender.GetStatistics() is { Opening: 0, OpenFailures: 1 });

        var (message, messageId) = PoolTestMessages.Create("hung-provider", 1);
        var result = await sender.SendAsync(message).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "the slot of the open whose provider never returned was given back");
        server.CountOf(messageId).Should().Be(1);
        calls.Should().Be(2);
    }

    [Fact]
    public async Task An_access_token_provider_that_throws_makes_the_message_NotSent_and_no_AUTH_is_sent()
    {
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse(
            "S: 220 scripted ESMTP",
            "C: EHLO client.pool.test",
            "S: 250-scripted",
            "S: 250-PIPELINING",
            "S: 250 AUTH XOAUTH2").ReadUntilClosed());
        var calls = 0;
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            EhloName = "client.pool.test",
            MaxConnections = 1,
            Session = new SmtpSessionOptions { AllowCleartextAuthentication = true },
            ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
            OAuthUserName = "user@example.test",
            AccessTokenProvider = _ =>
            {
                Interlocked.Increment(ref calls);
                throw new HttpRequestException("The token endpoint answered 503.");
            },
        });

        var result = await sender.SendAsync(PoolTestMessages.Create("token", 0).Message).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        result.Exception!.InnerException.Should().BeOfType<HttpRequestException>("the provider's failure is kept as the cause");
        calls.Should().Be(1);
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("AUTH").And.NotContain("MAIL FROM");
    }

    [Fact]
    public async Task An_access_token_provider_that_never_returns_is_NotSent_transient_at_the_reply_timeout_and_no_AUTH_is_sent()
    {
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse(
            "S: 220 scripted ESMTP",
            "C: EHLO client.pool.test",
            "S: 250-scripted",
            "S: 250 AUTH XOAUTH2").ReadUntilClosed());
        var time = new FakeTimeProvider();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            EhloName = "client.pool.test",
            MaxConnections = 1,
            TimeProvider = time,
            AcquireTimeout = TimeSpan.FromMinutes(5),
            Session = new SmtpSessionOptions { AllowCleartextAuthentication = true },
            ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
            OAuthUserName = "user@example.test",
            AccessTokenProvider = async _ =>
            {
                entered.TrySetResult();
                await Task.Delay(Timeout.Infinite, CancellationToken.None);   // ignores its token too
                return "never";
            },
        });

        var send = sender.SendAsync(PoolTestMessages.Create("hung-token", 0).Message);
        await entered.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        time.Advance(SmtpTimeouts.Interactive.Reply);
        var result = await send.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeTrue();
        result.Exception.Should().BeOfType<SmtpException>().Which.Should().Match<SmtpException>(e => e.ErrorCode == SmtpErrorCode.AuthenticationError && e.IsTransient && e.InnerException is TimeoutException, "the provider's own I/O did not complete in time, as an elapsed HttpClient.Timeout: no server's doing");
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("AUTH").And.NotContain("MAIL FROM");
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.Opening == 0 && s.OpenFailures == 1);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Under_churn_connections_idle_in_use_and_opening_never_exceed_MaxConnections_and_the_counts_add_up(bool chunking)
    {
        const int maxConnections = 3;
        await using var server = new LoopbackSmtpServer(chunking);
        var options = PoolTestMessages.Options(server.Port, maxConnections: maxConnections, maxBatchSize: 2);
        options.MaxMessagesPerConnection = 3;   // connections are replaced all the time
        await using var sender = new SmtpSender(options);
        var violations = new List<SmtpSenderStatistics>();
        using var stop = new CancellationTokenSource();
        var samples = 0;
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var s = sender.GetStatistics();
                samples++;
                if (s.Idle + s.InUse + s.Opening > maxConnections || s.Idle < 0 || s.InUse < 0 || s.Opening < 0 || s.PendingRequests < 0)
                {
                    violations.Add(s);
                }

                await Task.Yield();
            }
        });

        var messages = Enumerable.Range(0, 120).Select(i => PoolTestMessages.Create("churn", i, bodyBytes: 256)).ToArray();
        var results = await Task.WhenAll(messages.Select(m => Task.Run(() => sender.SendAsync(m.Message)))).WaitAsync(TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        await sampler;

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        results.ShouldMatchServer(messages, server);
        samples.Should().BeGreaterThan(0);
        violations.Should().BeEmpty("MaxConnections counts opening connections too, and idle plus in use never exceed it");
        server.Received.GroupBy(m => m.Connection).Should().OnlyContain(g => g.Count() <= 3);

        await WaitUntilAsync(() => sender.GetStatistics() is { InUse: 0, Opening: 0, PendingRequests: 0 });
        var end = sender.GetStatistics();
        end.Messages.Should().Be(120);
        (end.Opened - end.Discarded).Should().Be(end.Idle, "every connection opened is either discarded or idle once the load is over");
        server.Connections.Should().Be((int)end.Opened);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + ScriptedSmtpServer.SafetyTimeout;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }

        condition().Should().BeTrue();
    }
}
