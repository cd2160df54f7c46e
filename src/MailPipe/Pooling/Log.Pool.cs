using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>The pool's log methods (category <c>MailPipe.Pool</c>).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = MailPipeEventId.PoolConnectionOpened, Level = LogLevel.Debug, Message = "Pool {Sender}: connection opened")]
    public static partial void PoolConnectionOpened(ILogger logger, string sender);

    [LoggerMessage(EventId = MailPipeEventId.PoolConnectionOpenFailed, Level = LogLevel.Warning, Message = "Pool {Sender}: opening a connection failed ({ErrorCode})")]
    public static partial void PoolConnectionOpenFailed(ILogger logger, string sender, SmtpErrorCode errorCode, Exception exception);

    [LoggerMessage(EventId = MailPipeEventId.PoolConnectionDiscarded, Level = LogLevel.Debug, Message = "Pool {Sender}: connection closed ({Reason})")]
    public static partial void PoolConnectionDiscarded(ILogger logger, string sender, string reason);

    [LoggerMessage(EventId = MailPipeEventId.PoolRetry, Level = LogLevel.Debug, Message = "Pool {Sender}: message not sent ({ErrorCode}); sending it again on a fresh connection")]
    public static partial void PoolRetry(ILogger logger, string sender, SmtpErrorCode errorCode);

    [LoggerMessage(EventId = MailPipeEventId.PoolConnectionLost, Level = LogLevel.Warning, Message = "Pool {Sender}: connection {ConnectionId} lost ({Reason}) after {Messages} messages")]
    public static partial void PoolConnectionLost(ILogger logger, string sender, long connectionId, string reason, int messages, Exception? exception);

    [LoggerMessage(EventId = MailPipeEventId.PoolDisposalFailed, Level = LogLevel.Error, Message = "Pool {Sender}: the disposal failed unexpectedly; some connections may not have been closed")]
    public static partial void PoolDisposalFailed(ILogger logger, string sender, Exception exception);

    /// <summary>
    /// A scope around everything done on one pooled connection (open, lend check, batches, close), so that the
    /// interleaved transcripts of concurrent connections can be told apart: <c>MailPipe.ConnectionId</c>,
    /// <c>MailPipe.Server</c> (host:port) and <c>MailPipe.Sender</c>.
    /// </summary>
    public static IDisposable? BeginConnectionScope(ILogger logger, long connectionId, string server, string sender) =>
        logger.BeginScope(new ConnectionScope(connectionId, server, sender));

    private sealed class ConnectionScope(long connectionId, string server, string sender) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public int Count => 3;

        public KeyValuePair<string, object?> this[int index] => index switch
        {
            0 => new("MailPipe.ConnectionId", connectionId),
            1 => new("MailPipe.Server", server),
            2 => new("MailPipe.Sender", sender),
            _ => throw new ArgumentOutOfRangeException(nameof(index)),
        };

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
        {
            for (var i = 0; i < Count; i++)
            {
                yield return this[i];
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => $"MailPipe connection {connectionId} to {server}";
    }
}
