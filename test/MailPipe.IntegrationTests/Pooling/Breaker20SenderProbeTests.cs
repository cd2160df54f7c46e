using System.Collections.Concurrent;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Pooling;

/// <summary>Breaker 20: the shared sender from many threads with mixed outcomes, its statistics, its disposal.</summary>
public sealed class Breaker20SenderProbeTests
{
    public Breaker20SenderProbeTests() => TestServers.RequireListening(TestServers.PostfixPort);

    private static SmtpSender NewSender(int port, int maxConnections = 3) => new(new SmtpSenderOptions
    {
        Host = TestServers.Host,
        Port = port,
        TlsMode = SmtpTlsMode.None,
        MaxConnections = maxConnections,
        EhloName = "client.example.test",
    });

    private static (SmtpEnvelope Envelope, bool[] Expected) Case(int i)
    {
        return (i % 4) switch
        {
            0 => (new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), [true]),
            1 => (new SmtpEnvelope("sender@example.test", "tempfail@example.test"), [false]),
            2 => (new SmtpEnvelope("sender@example.test", $"unknown{i}@example.test"), [false]),
            _ => (new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient(), $"unknown{i}@example.test", "tempfail@example.test"), [true, false, false]),
        };
    }

    [Theory]
    [InlineData(2525, 80)]
    [InlineData(2526, 80)]
    [InlineData(2527, 80)]
    [InlineData(2526, 400)]
    public async Task Many_threads_mixed_outcomes_every_recipient_truthful_and_statistics_consistent(int port, int count)
    {
        TestServers.RequireListening(port);
        await using var sender = NewSender(port);
        var results = new ConcurrentBag<(SmtpSendResult Result, bool[] Expected)>();
        var tasks = Enumerable.Range(0, count).Select(i => Task.Run(async () =>
        {
            var (envelope, expected) = Case(i);
            var result = await sender.SendAsync(envelope, System.Text.Encoding.ASCII.GetBytes($"Subject: pool {i}\r\n\r\nbody {i}\r\n"));
            results.Add((result, expected));
        })).ToArray();
        await Task.WhenAll(tasks);

        foreach (var (result, expected) in results)
        {
            if (result.Outcome == SmtpSendOutcome.NotSent)
            {
                // Exim drops a connection after 11 RSETs that followed refused transactions; a message left behind is
                // sent again on another connection up to 4 attempts (Breaker18EximLimitTests), which may meet it again.
                result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable, result.ToString());
                result.Attempts.Should().BeGreaterThanOrEqualTo(2);
                continue;
            }

            result.Recipients.Select(r => r.Accepted).Should().Equal(expected, result.ToString());
            result.Outcome.Should().Be(expected[0] ? SmtpSendOutcome.Accepted : SmtpSendOutcome.Refused, result.ToString());
            if (!expected[0])
            {
                result.IsTransientFailure.Should().Be(result.Envelope.Recipients[0].Address == "tempfail@example.test", result.ToString());
            }
        }

        // A connection may still be finishing its batch (the RSET after the last refusal) when its callers have their results.
        var stats = await QuiescentAsync(sender);
        stats.PendingRequests.Should().Be(0);
        stats.InUse.Should().Be(0);
        stats.Opening.Should().Be(0);
        (stats.Opened - stats.Discarded).Should().Be(stats.Idle, stats.ToString());
        stats.Messages.Should().Be(results.Sum(r => r.Result.Attempts), stats.ToString());
        stats.Retries.Should().Be(results.Sum(r => r.Result.Attempts - 1), stats.ToString());
    }

    [Theory]
    [InlineData(2525)]
    [InlineData(2527)]
    public async Task Cancellations_mixed_in_leave_no_caller_waiting_and_the_pool_clean(int port)
    {
        TestServers.RequireListening(port);
        await using var sender = NewSender(port, 2);
        var outcomes = new ConcurrentBag<string>();
        var tasks = Enumerable.Range(0, 60).Select(i => Task.Run(async () =>
        {
            using var cts = new CancellationTokenSource();
            var (envelope, expected) = Case(i);
            var send = sender.SendAsync(envelope, System.Text.Encoding.ASCII.GetBytes($"Subject: pool {i}\r\n\r\n" + new string('y', 20_000 * (i % 5)) + "\r\n"), cts.Token);
            if (i % 3 == 0)
            {
                await Task.Yield();
                await cts.CancelAsync();
            }

            try
            {
                var result = await send;
                result.Recipients.Select(r => r.Accepted).Should().Equal(expected, result.ToString());
                outcomes.Add(result.Outcome.ToString());
            }
            catch (SmtpOutcomeUnknownException)
            {
                outcomes.Add("unknown-exception");
            }
            catch (OperationCanceledException)
            {
                outcomes.Add("cancelled");
            }
        })).ToArray();
        await Task.WhenAll(tasks);

        outcomes.Should().HaveCount(60);
        var stats = await QuiescentAsync(sender);
        stats.PendingRequests.Should().Be(0);
        stats.InUse.Should().Be(0);
        (stats.Opened - stats.Discarded).Should().Be(stats.Idle, stats.ToString());
        var after = await sender.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), "Subject: after\r\n\r\nx\r\n"u8.ToArray());
        after.Outcome.Should().Be(SmtpSendOutcome.Accepted, after.ToString());
    }

    /// <summary>Waits (up to a minute, polling) until no connection is in use or opening, then returns the statistics.</summary>
    private static async Task<SmtpSenderStatistics> QuiescentAsync(SmtpSender sender)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var stats = sender.GetStatistics();
        while ((stats.InUse != 0 || stats.Opening != 0 || stats.PendingRequests != 0) && !deadline.IsCancellationRequested)
        {
            await Task.Delay(20, CancellationToken.None);
            stats = sender.GetStatistics();
        }

        return stats;
    }

    [Fact]
    public async Task Dispose_with_sends_queued_and_in_flight_ends_every_caller_as_documented()
    {
        var sender = NewSender(TestServers.PostfixPort, 1);
        var tasks = Enumerable.Range(0, 40).Select(i => Task.Run(() =>
            sender.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), System.Text.Encoding.ASCII.GetBytes($"Subject: d {i}\r\n\r\n" + new string('z', 50_000) + "\r\n")))).ToArray();
        await Task.Delay(20);
        await sender.DisposeAsync();

        foreach (var task in tasks)
        {
            try
            {
                var result = await task;
                result.Outcome.Should().BeOneOf([SmtpSendOutcome.Accepted, SmtpSendOutcome.Unknown], result.ToString());
            }
            catch (ObjectDisposedException)
            {
            }
        }

        var stats = sender.GetStatistics();
        stats.PendingRequests.Should().Be(0, stats.ToString());
        stats.InUse.Should().Be(0, stats.ToString());
        stats.Idle.Should().Be(0, stats.ToString());
        stats.Opened.Should().Be(stats.Discarded, stats.ToString());
        var late = () => sender.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), "x"u8.ToArray());
        await late.Should().ThrowAsync<ObjectDisposedException>();
        var lateBatch = () => sender.SendBatchAsync([SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), "x"u8.ToArray())]);
        await lateBatch.Should().ThrowAsync<ObjectDisposedException>();
        await sender.DisposeAsync();
    }

    [Fact]
    public async Task A_batch_under_way_when_the_sender_is_disposed_returns_every_result_and_never_hides_the_accepted_ones()
    {
        var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            TlsMode = SmtpTlsMode.None,
            MaxConnections = 1,
            MaxBatchSize = 1,
            EhloName = "client.example.test",
        });
        var writerStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = SmtpMessage.FromWriter(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), async (stream, ct) =>
        {
            writerStarted.TrySetResult();
            await gate.Task.WaitAsync(ct);
            await stream.WriteAsync("Subject: held\r\n\r\nx\r\n"u8.ToArray(), ct);
        });
        var first = SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), "Subject: first\r\n\r\nx\r\n"u8.ToArray());
        var rest = Enumerable.Range(0, 4).Select(i => SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), "Subject: rest\r\n\r\nx\r\n"u8.ToArray()));
        var batch = sender.SendBatchAsync([first, held, .. rest]);
        await writerStarted.Task.WaitAsync(TimeSpan.FromMinutes(1));

        // The messages still waiting are dropped at once; the one being written gets DisposeTimeout to finish.
        var disposing = sender.DisposeAsync();
        gate.SetResult();
        await disposing;
        var results = await batch;

        results.Should().HaveCount(6);
        results[0].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[0].ToString());
        results[1].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[1].ToString());
        foreach (var result in results.Skip(2))
        {
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
            result.Exception.Should().BeOfType<ObjectDisposedException>();
            result.IsTransientFailure.Should().BeFalse();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Concurrent_callers_of_a_sender_that_cannot_open_a_connection_all_get_NotSent(bool badPassword)
    {
        var options = new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = badPassword ? TestServers.PostfixSubmissionPort : 1,
            TlsMode = badPassword ? SmtpTlsMode.StartTlsRequired : SmtpTlsMode.None,
            Credentials = badPassword ? new System.Net.NetworkCredential(TestServers.User, "wrong-password") : null,
            MaxConnections = 2,
            EhloName = "client.example.test",
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await using var sender = new SmtpSender(options);
        var tasks = Enumerable.Range(0, 20).Select(i => Task.Run(() => sender.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), "Subject: x\r\n\r\nx\r\n"u8.ToArray()))).ToArray();
        var results = await Task.WhenAll(tasks);

        foreach (var result in results)
        {
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
            var error = result.Exception.Should().BeOfType<SmtpException>().Subject;
            error.ErrorCode.Should().Be(badPassword ? SmtpErrorCode.AuthenticationError : SmtpErrorCode.ConnectionRefused, result.ToString());
            result.IsTransientFailure.Should().Be(!badPassword, result.ToString());
        }

        var stats = await QuiescentAsync(sender);
        stats.Opened.Should().Be(0);
        stats.Idle.Should().Be(0);
        stats.OpenFailures.Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task MaxMessagesPerConnection_holds_when_callers_are_coalesced()
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            TlsMode = SmtpTlsMode.None,
            MaxConnections = 2,
            MaxMessagesPerConnection = 3,
            EhloName = "client.example.test",
        });
        var tasks = Enumerable.Range(0, 30).Select(i => Task.Run(() => sender.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient()), "Subject: x\r\n\r\nx\r\n"u8.ToArray()))).ToArray();
        var results = await Task.WhenAll(tasks);
        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        var stats = await QuiescentAsync(sender);
        stats.Messages.Should().Be(30);
        stats.Opened.Should().BeGreaterThanOrEqualTo(10, stats.ToString());
    }

    [Fact]
    public async Task Batch_with_the_same_message_object_twice()
    {
        await using var sender = NewSender(TestServers.PostfixPort, 2);
        var recipient = TestServers.UniqueRecipient();
        var stream = new MemoryStream("Subject: twice\r\n\r\nsame stream\r\n"u8.ToArray());
        var message = SmtpMessage.FromStream(new SmtpEnvelope("sender@example.test", recipient), stream);
        var results = await sender.SendBatchAsync([message, message, message]);
        results.Should().HaveCount(3);
        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        var stored = await Maildir.WaitForPostfixAsync(recipient, 3);
        foreach (var s in stored)
        {
            System.Text.Encoding.ASCII.GetString(Maildir.StripTraceHeaders(s)).Should().Be("Subject: twice\r\n\r\nsame stream\r\n");
        }
    }
}
