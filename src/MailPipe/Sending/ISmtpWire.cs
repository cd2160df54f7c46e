using System.IO.Pipelines;
using MailPipe.Channel;
using Microsoft.Extensions.Logging;

namespace MailPipe.Sending;

/// <summary>
/// What the transaction sender needs of the transmission channel and of the session above it: the writer and the one
/// queue of expected replies (an entry appended in the call that writes its command), flushes and reads under the
/// channel's deadlines, the read-ahead check for unsolicited replies, the idempotent break, and the operation guard.
/// The sender never holds a reply queue, a token source or a timer of its own.
/// </summary>
internal interface ISmtpWire
{
    /// <summary>The connection's output; throws <see cref="SmtpException"/> (ConnectionClosed) once the connection is gone.</summary>
    PipeWriter Output { get; }

    /// <summary>Whether the connection is still there (false as soon as it is broken).</summary>
    bool IsConnected { get; }

    /// <summary>THE queue of expected replies (queue order = wire order).</summary>
    ExpectedReplyQueue<ExpectedReply> Replies { get; }

    /// <summary>The server's capabilities (from EHLO).</summary>
    SmtpCapabilities Capabilities { get; }

    /// <summary>Whether the connection is encrypted (REQUIRETLS may only be asked for then).</summary>
    bool IsTls { get; }

    /// <summary>The protocol transcript's logger.</summary>
    ILogger ProtocolLog { get; }

    /// <summary>Set while a concurrent reader files replies (the read-ahead is then off).</summary>
    bool ConcurrentReading { set; }

    /// <summary>Starts one operation: guard, the caller's token, deadlines.</summary>
    void BeginOperation(CancellationToken cancellationToken);

    /// <summary>Ends the operation begun by <see cref="BeginOperation"/>.</summary>
    void EndOperation();

    /// <summary>Counts one round trip (a wait for replies after a flush).</summary>
    void CountRoundTrip();

    /// <summary>Before a command is written with nothing pending: a complete reply already received fails the operation.</summary>
    void CheckUnsolicited();

    /// <summary>Writes a command without argument and appends its entry to the queue.</summary>
    void WriteCommand(ReadOnlySpan<byte> verb, string name);

    /// <summary>Writes MAIL or RCPT (path and parameters already checked) and appends its entry to the queue.</summary>
    void WritePathCommand(ReadOnlySpan<byte> prefix, string name, string path, string? parameters);

    /// <summary>Appends an entry for bytes already written (end of data, a BDAT chunk).</summary>
    void ExpectReply(string name);

    /// <summary>Flushes under the send deadline.</summary>
    ValueTask FlushAsync(string activity);

    /// <summary>Flushes once the unflushed bytes reach the threshold.</summary>
    ValueTask FlushIfNeededAsync(string activity);

    /// <summary>Flushes, counts a round trip and reads the next reply.</summary>
    ValueTask<SmtpReply> FlushAndReadAsync(TimeSpan replyTimeout, string activity);

    /// <summary>Reads the reply to the oldest queue entry, checked against its command.</summary>
    ValueTask<SmtpReply> ReadReplyAsync(TimeSpan timeout);

    /// <summary>Closes the connection (idempotent, safe from the concurrent reader).</summary>
    void Break(string reason);

    /// <summary>A transaction starts (its MAIL is about to be prepared): telemetry.</summary>
    void TransactionStarting(MailTransaction tx, bool chunking);
}
