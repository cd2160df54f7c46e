using MailPipe.Tests.Support;
using Microsoft.Extensions.Logging;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// An exception that is neither the server's, the network's nor the caller's, outside the channel's I/O (a defect, an
/// exhausted resource such as the OutOfMemoryException breaker10 met with a huge ChunkSize): the caller still gets a
/// result that says why, and the pool keeps no slot for the broken connection. Before, the batch's results were
/// completed with no reason, and the worker's catch took only ArgumentException, InvalidOperationException and
/// SmtpException, so the worker ended with the slot still in use.
/// </summary>
public sealed class SmtpSenderUnexpectedFaultTests
{
    [Fact]
    public async Task An_unexpected_exception_while_sending_is_a_result_with_its_reason_and_the_pool_recovers()
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        var logging = new FaultyLoggerFactory();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.LoggerFactory = logging;
        options.RetryOnFreshConnection = false;
        await using var sender = new SmtpSender(options);
        var first = PoolTestMessages.Create("unexpected", 1);
        (await sender.SendAsync(first.Message).WaitAsync(ScriptedSmtpServer.SafetyTimeout)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await WaitIdleAsync(sender);

        logging.Armed = true;
        var second = PoolTestMessages.Create("unexpected", 2);
        var result = await sender.SendAsync(second.Message).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        logging.Armed.Should().BeFalse("the fault was thrown while the end of data was written");
        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, "the end of data was written when the fault came");
        result.Exception.Should().NotBeNull("the caller learns why");
        result.Exception!.ToString().Should().Contain("a fault of no known kind");
        (await WaitIdleAsync(sender)).InUse.Should().Be(0, "the broken connection's slot is free");
        var third = PoolTestMessages.Create("unexpected", 3);
        (await sender.SendAsync(third.Message).WaitAsync(ScriptedSmtpServer.SafetyTimeout)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf(third.MessageId).Should().Be(1);
    }

    private static async Task<SmtpSenderStatistics> WaitIdleAsync(SmtpSender sender)
    {
        var deadline = DateTime.UtcNow + ScriptedSmtpServer.SafetyTimeout;
        var statistics = sender.GetStatistics();
        while (statistics.InUse > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
            statistics = sender.GetStatistics();
        }

        return statistics;
    }

    /// <summary>Loggers that throw once, when armed, as the message data is logged: a defect of no known kind in the middle of a send, outside the channel's I/O.</summary>
    private sealed class FaultyLoggerFactory : ILoggerFactory, ILogger
    {
        public volatile bool Armed;

        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (Armed && eventId.Name == "MessageData")
            {
                Armed = false;
                throw new NotSupportedException("a fault of no known kind");
            }
        }

        public void Dispose()
        {
        }
    }
}
