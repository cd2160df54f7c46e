using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text;
using MailPipe.Tests.Shared;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// The discard reason of a connection MailPipe closed itself to end a transaction (with DATA, a content source that
/// failed or was cancelled midway: closing is the only way without the final dot) was "broken", which the metric's
/// reader takes for a network failure. It is now <see cref="SmtpSenderDiscardReason.TransactionAborted"/>; a connection
/// the network broke is still "broken".
/// </summary>
public sealed class SmtpSenderDiscardReasonTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_connection_closed_because_a_DATA_content_source_failed_midway_is_discarded_as_transaction_aborted()
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        using var discards = new DiscardListener();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.Name = discards.Name;
        await using (var sender = new SmtpSender(options))
        {
            var head = Encoding.ASCII.GetBytes("Subject: fails\r\n\r\n" + new string('x', 70) + "\r\n");
            var failing = SmtpMessage.FromStream(new SmtpEnvelope("sender@example.test", "rcpt@example.test"), new GeneratedContentStream(head, 64 * 1024, failAtEnd: true, filler: 'z'));

            var result = await sender.SendAsync(failing).WaitAsync(Limit);

            result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
            (result.Exception as SmtpException)?.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed, result.ToString());
            (await sender.SendAsync(PoolTestMessages.Create("after", 0).Message).WaitAsync(Limit)).IsAccepted.Should().BeTrue();
        }

        server.EndedInContent.Should().Be(1, "the connection was closed in the content, never the final dot");
        discards.Reasons.Should().Contain(SmtpSenderDiscardReason.TransactionAborted).And.NotContain(SmtpSenderDiscardReason.Broken);
    }

    [Fact]
    public async Task A_connection_closed_because_its_caller_cancelled_in_its_DATA_content_is_discarded_as_transaction_aborted()
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        using var discards = new DiscardListener();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.Name = discards.Name;
        await using (var sender = new SmtpSender(options))
        {
            var (gated, _, content) = GatedContentStream.Create("discard-cut");
            using var cts = new CancellationTokenSource();
            var cancelled = sender.SendAsync(gated, cts.Token);
            await content.HeadRead.WaitAsync(Limit);
            await cts.CancelAsync();
            await cancelled.Awaiting(t => t.WaitAsync(Limit)).Should().ThrowAsync<OperationCanceledException>();
            (await sender.SendAsync(PoolTestMessages.Create("after-cut", 0).Message).WaitAsync(Limit)).IsAccepted.Should().BeTrue();
        }

        discards.Reasons.Should().Contain(SmtpSenderDiscardReason.TransactionAborted).And.NotContain(SmtpSenderDiscardReason.Broken);
    }

    [Fact]
    public async Task A_connection_closed_because_the_only_caller_of_its_batch_cancelled_while_its_DATA_waited_for_354_is_discarded_as_transaction_aborted()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { DataGate = gate.Task };
        using var discards = new DiscardListener();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.Name = discards.Name;
        await using (var sender = new SmtpSender(options))
        {
            using var cts = new CancellationTokenSource();
            var cancelled = sender.SendAsync(PoolTestMessages.Create("alone", 0).Message, cts.Token);
            await server.DataReceived.WaitAsync(Limit);
            await cts.CancelAsync();
            await cancelled.Awaiting(t => t.WaitAsync(Limit)).Should().ThrowAsync<OperationCanceledException>();
            gate.SetResult();
            (await sender.SendAsync(PoolTestMessages.Create("after-alone", 0).Message).WaitAsync(Limit)).IsAccepted.Should().BeTrue();
        }

        discards.Reasons.Should().Contain(SmtpSenderDiscardReason.TransactionAborted).And.NotContain(SmtpSenderDiscardReason.Broken);
    }

    [Fact]
    public async Task A_connection_the_network_broke_is_still_discarded_as_broken()
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        await using var proxy = new FaultProxy(server.Port);
        using var discards = new DiscardListener();
        var options = PoolTestMessages.Options(proxy.Port, maxConnections: 1);
        options.Name = discards.Name;
        options.RetryOnFreshConnection = false;
        await using (var sender = new SmtpSender(options))
        {
            (await sender.SendAsync(PoolTestMessages.Create("warm", 0).Message).WaitAsync(Limit)).IsAccepted.Should().BeTrue();
            proxy.DropNext(DropPoint.BeforeNthMail, 2);
            var results = await sender.SendBatchAsync([PoolTestMessages.Create("a", 0).Message, PoolTestMessages.Create("b", 0).Message]).WaitAsync(Limit);
            results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent, results[1].ToString());
        }

        discards.Reasons.Should().Contain(SmtpSenderDiscardReason.Broken).And.NotContain(SmtpSenderDiscardReason.TransactionAborted);
    }

    /// <summary>The discard reasons one sender (named <see cref="Name"/>) reports on the MailPipe meter.</summary>
    private sealed class DiscardListener : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<string> _reasons = new();

        public DiscardListener()
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == SmtpSender.MeterName && instrument.Name == "mailpipe.sender.connection.discarded")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
            {
                string? name = null, reason = null;
                foreach (var tag in tags)
                {
                    name = tag.Key == "mailpipe.sender.name" ? tag.Value as string : name;
                    reason = tag.Key == "mailpipe.sender.connection.discard_reason" ? tag.Value as string : reason;
                }

                if (name == Name && reason is not null)
                {
                    _reasons.Enqueue(reason);
                }
            });
            _listener.Start();
        }

        public string Name { get; } = "discard-test-" + Guid.NewGuid().ToString("N");

        public IReadOnlyList<string> Reasons => [.. _reasons];

        public void Dispose() => _listener.Dispose();
    }
}
