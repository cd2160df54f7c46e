using System.Diagnostics;

namespace MailPipe;

/// <summary>The session's telemetry state (Diagnostics/MailPipeTelemetry.cs does the work).</summary>
public sealed partial class AsyncSmtpSession : IRoundTripCounter
{
    private MailPipeMetrics? _metrics;

    /// <summary>The instruments of <see cref="SmtpSessionOptions.MeterFactory"/>'s meter (or the process-wide one).</summary>
    internal MailPipeMetrics Metrics => _metrics ??= MailPipeMetrics.For(_options.MeterFactory);

    /// <summary>The open connection's span and tags; null when nothing listened when it opened.</summary>
    internal ConnectionTelemetry? TelemetryConnection { get; set; }

    /// <summary>The error.type of the last failure (set by the channel's failure funnel, <see cref="Fail"/>), read by an operation's span when it ends without success.</summary>
    internal string? TelemetryError
    {
        get => _channel.TelemetryError;
        set => _channel.TelemetryError = value;
    }

    /// <summary>Every I/O failure goes through the channel's funnel: the error type is kept for the operation's span and instruments.</summary>
    private Exception Fail(Exception exception, string activity, bool reading = false) => _channel.Fail(exception, activity, reading);
}

/// <summary>The transaction's span and start (<see cref="SessionTelemetry.StartTransaction"/>).</summary>
internal sealed partial class MailTransaction
{
    public TransactionTelemetry? Telemetry { get; set; }

    /// <summary>Keeps, for the measurements, the octets read from a streamed source once the content was read to its end (nothing without a listener, or for in-memory content).</summary>
    public void ContentRead(long streamedLength)
    {
        if (Telemetry is { } telemetry && Message.Bytes is null)
        {
            telemetry.StreamedLength = streamedLength;
        }
    }

    /// <summary>Stops the transaction's span and records its measurements (once); returns <paramref name="result"/>.</summary>
    public SmtpSendResult StopTelemetry(SmtpSendResult result)
    {
        var telemetry = Telemetry;
        if (telemetry is null)
        {
            return result;
        }

        Telemetry = null;
        return MailPipeTelemetry.StopTransaction(telemetry, result, EndOfDataWritten ? telemetry.StreamedLength ?? SentLength() : null);
    }

    /// <summary>
    /// The content length for the measurements when no streamed length was kept: the in-memory content's; none when the
    /// source cannot tell it (after the end of data, a measurement must never cost the message its result).
    /// </summary>
    private long? SentLength()
    {
        try
        {
            return Message.ContentLength;
        }
        catch (Exception)
        {
            return null;
        }
    }
}

/// <summary>The caller's activity carried with a message through the pool.</summary>
public sealed partial class SmtpMessage
{
    /// <summary>The parent of this send's transaction span: captured at the pooled sender's <c>SendAsync</c> (default = a root span); null = <see cref="Activity.Current"/> where the transaction starts.</summary>
    internal ActivityContext? TelemetryParent => _extras.TelemetryParent;

    /// <summary>A copy whose transaction span goes under <paramref name="parent"/>.</summary>
    internal SmtpMessage WithTelemetryParent(ActivityContext parent)
    {
        var copy = (SmtpMessage)MemberwiseClone();
        copy._extras = _extras with { TelemetryParent = parent };
        return copy;
    }
}
