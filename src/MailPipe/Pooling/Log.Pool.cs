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
}
