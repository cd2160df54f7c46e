using System.IO.Pipelines;
using MailPipe.Channel;
using MailPipe.Sending;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>What the transaction sender uses of the connection-level machinery (until that is the channel's own type).</summary>
public sealed partial class AsyncSmtpSession : ISmtpWire
{
    PipeWriter ISmtpWire.Output => Connection.Output;

    ExpectedReplyQueue<ExpectedReply> ISmtpWire.Replies => _pendingReplies;

    bool ISmtpWire.IsTls => _connection?.TlsStream is not null;

    ILogger ISmtpWire.ProtocolLog => _protocolLog;

    bool ISmtpWire.ConcurrentReading
    {
        set => _concurrentReading = value;
    }

    void ISmtpWire.BeginOperation(CancellationToken cancellationToken) => BeginOperation(cancellationToken);

    void ISmtpWire.EndOperation() => EndOperation();

    void ISmtpWire.CountRoundTrip() => RoundTrips++;

    void ISmtpWire.CheckUnsolicited() => CheckUnsolicited();

    void ISmtpWire.WriteCommand(ReadOnlySpan<byte> verb, string name) => WriteCommand(verb, name);

    void ISmtpWire.WritePathCommand(ReadOnlySpan<byte> prefix, string name, string path, string? parameters) => WritePathCommand(prefix, name, path, parameters);

    void ISmtpWire.ExpectReply(string name) => ExpectReply(name);

    ValueTask ISmtpWire.FlushAsync(string activity) => FlushAsync(activity);

    ValueTask ISmtpWire.FlushIfNeededAsync(string activity) => FlushIfNeededAsync(activity);

    ValueTask<SmtpReply> ISmtpWire.FlushAndReadAsync(TimeSpan replyTimeout, string activity) => FlushAndReadAsync(replyTimeout, activity);

    ValueTask<SmtpReply> ISmtpWire.ReadReplyAsync(TimeSpan timeout) => ReadReplyAsync(timeout);

    void ISmtpWire.Break(string reason) => Break(reason);

    void ISmtpWire.TransactionStarting(MailTransaction tx, bool chunking) => SessionTelemetry.StartTransaction(this, tx, chunking);
}
