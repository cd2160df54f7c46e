using MailPipe.Transmission;
using MailPipe.Transport;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>
/// Forwarders to the channel (<see cref="SmtpChannel"/>) under the names the partials used before it existed; they go
/// once the transaction sender, AUTH and TLS call the channel directly.
/// </summary>
public sealed partial class AsyncSmtpSession
{
    private ILogger _protocolLog => _channel.ProtocolLog;

    private ExpectedReplyQueue<ReplyTag> _pendingReplies => _channel.Replies;

    private SmtpConnection? _connection => _channel.Connection;

    private SmtpConnection Connection => _channel.OpenConnection;

    private bool _concurrentReading
    {
        get => _channel.ConcurrentReading;
        set => _channel.ConcurrentReading = value;
    }

    private void WriteCommand(ReadOnlySpan<byte> verb, string name) => _channel.WriteCommand(verb, name);

    private void WriteCommand(ReadOnlySpan<byte> verb, string name, string argument, bool maskArgument) => _channel.WriteCommand(verb, name, argument, maskArgument);

    private void WritePathCommand(ReadOnlySpan<byte> prefix, string name, string path, string? parameters) => _channel.WritePathCommand(prefix, name, path, parameters);

    private void ExpectReply(string name) => _channel.ExpectReply(name);

    private void CheckUnsolicited() => _channel.CheckUnsolicited();

    private ValueTask FlushAsync(string activity) => _channel.FlushAsync(activity);

    private ValueTask FlushIfNeededAsync(string activity) => _channel.FlushIfNeededAsync(activity);

    private ValueTask<SmtpReply> FlushAndReadAsync(TimeSpan replyTimeout, string activity) => _channel.FlushAndReadAsync(replyTimeout, activity);

    private ValueTask<SmtpReply> ReadReplyAsync(TimeSpan timeout) => _channel.ReadReplyAsync(timeout);

    private SmtpReply CloseIfServiceClosing(SmtpReply reply) => _channel.CloseIfServiceClosing(reply);

    private void Break(string reason) => _channel.Break(reason);

    private void EndOperation() => _channel.EndOperation();
}
