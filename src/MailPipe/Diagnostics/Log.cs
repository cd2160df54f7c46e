using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>Source-generated log methods; event ids are the public <see cref="MailPipeEventId"/> constants.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = MailPipeEventId.ClientLine, Level = LogLevel.Trace, Message = "C: {Line}")]
    public static partial void ClientLine(ILogger logger, string line);

    [LoggerMessage(EventId = MailPipeEventId.ServerLine, Level = LogLevel.Trace, Message = "S: {Line}")]
    public static partial void ServerLine(ILogger logger, string line);

    [LoggerMessage(EventId = MailPipeEventId.MessageData, Level = LogLevel.Trace, Message = "C: <message data, {Bytes} bytes>")]
    public static partial void MessageData(ILogger logger, long bytes);

    [LoggerMessage(EventId = MailPipeEventId.Connecting, Level = LogLevel.Debug, Message = "Connecting to {Host}:{Port}")]
    public static partial void Connecting(ILogger logger, string host, int port);

    [LoggerMessage(EventId = MailPipeEventId.Connected, Level = LogLevel.Debug, Message = "Connected to {RemoteEndPoint}")]
    public static partial void Connected(ILogger logger, string remoteEndPoint);

    [LoggerMessage(EventId = MailPipeEventId.Disconnected, Level = LogLevel.Debug, Message = "Disconnected")]
    public static partial void Disconnected(ILogger logger);

    [LoggerMessage(EventId = MailPipeEventId.ConnectionBroken, Level = LogLevel.Debug, Message = "Connection closed after a failure: {Reason}")]
    public static partial void ConnectionBroken(ILogger logger, string reason);

    [LoggerMessage(EventId = MailPipeEventId.TlsEstablished, Level = LogLevel.Debug, Message = "TLS established: {Protocol}, {Cipher}")]
    public static partial void TlsEstablished(ILogger logger, string protocol, string cipher);
}
