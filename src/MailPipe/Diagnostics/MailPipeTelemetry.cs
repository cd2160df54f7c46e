using System.Diagnostics;
using System.Net;
using System.Security.Authentication;

namespace MailPipe;

/// <summary>
/// Spans and measurements of sessions and transactions. Every entry point returns at once (no allocation) when no
/// <see cref="ActivityListener"/> listens to the <c>MailPipe</c> source and no listener is attached to the instruments.
/// Never a mail address in a tag unless <see cref="SmtpSessionOptions.LogAddresses"/> is set.
/// </summary>
internal static class MailPipeTelemetry
{
    public static readonly ActivitySource Source = new(MailPipeDiagnostics.ActivitySourceName, typeof(MailPipeTelemetry).Assembly.GetName().Version?.ToString());

    public const string ConnectionSpan = "smtp connection";
    public const string ConnectSpan = "smtp connect";
    public const string TlsSpan = "smtp tls";
    public const string AuthSpan = "smtp auth";
    public const string TransactionSpan = "smtp transaction";

    private static readonly KeyValuePair<string, object?> Protocol = new("network.protocol.name", "smtp");
    private static readonly object[] BoxedPorts = [25, 465, 587, 2525];

    /// <summary>Boxed small counts, so that a span's integer tags allocate no box per transaction.</summary>
    private static readonly object[] SmallInts = [.. Enumerable.Range(0, 65).Select(static i => (object)i)];

    /// <summary>Boxed reply codes 200-599.</summary>
    private static readonly object[] ReplyCodes = [.. Enumerable.Range(200, 400).Select(static i => (object)i)];

    public static object Box(int value) => (uint)value < (uint)SmallInts.Length ? SmallInts[value] : value;

    /// <summary>The last enhanced status code's text (most transactions of a run end with the same one, such as 2.0.0).</summary>
    private static Tuple<EnhancedStatusCode, string>? _lastEnhanced;

    public static string EnhancedName(EnhancedStatusCode code)
    {
        var last = Volatile.Read(ref _lastEnhanced);
        if (last is not null && last.Item1 == code)
        {
            return last.Item2;
        }

        var text = code.ToString();
        Volatile.Write(ref _lastEnhanced, Tuple.Create(code, text));
        return text;
    }

    public static object BoxCode(int code) => code is >= 200 and < 600 ? ReplyCodes[code - 200] : code;

    /// <summary>A message for a session, carrying the caller's activity captured at <c>SendAsync</c> (the pool).</summary>
    public static SmtpMessage WithParent(SmtpMessage message, ActivityContext parent) =>
        Source.HasListeners() ? message.WithTelemetryParent(parent) : message;

    /// <summary>The caller's activity now (the pool captures it when a request is made).</summary>
    public static ActivityContext CaptureParent() => Activity.Current?.Context ?? default;

    /// <summary>Stops a transaction's span and records its measurements; returns <paramref name="result"/>.</summary>
    public static SmtpSendResult StopTransaction(TransactionTelemetry telemetry, SmtpSendResult result, long? bytes)
    {
        var accepted = 0;
        var refused = 0;
        foreach (var recipient in result.Recipients)
        {
            if (recipient.Reply is { } reply)
            {
                if (reply.IsPositiveCompletion)
                {
                    accepted++;
                }
                else
                {
                    refused++;
                }
            }
        }

        var outcome = OutcomeName(result.Outcome);
        var roundTrips = telemetry.Session.RoundTrips - telemetry.RoundTrips;
        // The reply that decided: a refused MAIL, else every recipient refused (the 554 to DATA that follows is its echo), else
        // the end of data's, else a refused DATA. Never the 354 that only invited the content (RFC 5321 §4.2.1: 3yz is
        // intermediate): a transaction that ended after it without the end of data's reply (Unknown, NotSent) has none.
        var deciding = result.MailReply is { IsNegative: true } ? result.MailReply
            : accepted == 0 && refused > 0 ? FirstRefusal(result)
            : result.FinalReply ?? (result.DataReply is { IsNegative: true } ? result.DataReply : null);
        string? errorType = result.Outcome == SmtpSendOutcome.Accepted ? null
            : result.Exception is { } ex ? ErrorType(ex)
            : deciding is not null ? CodeName(deciding.Code) : "_OTHER";

        try
        {
            Record(telemetry, bytes, outcome, roundTrips, deciding, errorType, accepted, refused);
        }
        catch (Exception)
        {
            // A listener's callback threw (ActivityStopped, a measurement callback): that span or measurement is lost, never the result.
        }

        return result;
    }

    private static void Record(TransactionTelemetry telemetry, long? bytes, string outcome, long roundTrips, SmtpReply? deciding, string? errorType, int accepted, int refused)
    {
        var metrics = telemetry.Metrics;
        var tags = new TagList(telemetry.Connection.MetricTags) { { "smtp.outcome", outcome } };
        if (errorType is not null)
        {
            tags.Add("error.type", errorType);
        }

        metrics.Messages.Add(1, tags);
        if (metrics.TransactionDuration.Enabled)
        {
            metrics.TransactionDuration.Record(Stopwatch.GetElapsedTime(telemetry.Start).TotalSeconds, tags);
        }

        if (metrics.Recipients.Enabled)
        {
            var recipientTags = new TagList(telemetry.Connection.MetricTags) { { "smtp.recipient.status", "accepted" } };
            if (accepted > 0)
            {
                metrics.Recipients.Add(accepted, recipientTags);
            }

            if (refused > 0)
            {
                recipientTags[recipientTags.Count - 1] = new("smtp.recipient.status", "refused");
                metrics.Recipients.Add(refused, recipientTags);
            }
        }

        if (bytes is { } sent)
        {
            metrics.BytesSent.Add(sent, telemetry.Connection.MetricTags);
        }

        if (telemetry.Activity is { } activity)
        {
            if (activity.IsAllDataRequested)
            {
                activity.AddTag("smtp.outcome", outcome);
                activity.AddTag("smtp.recipients.accepted", Box(accepted));
                activity.AddTag("smtp.recipients.refused", Box(refused));
                activity.AddTag("smtp.round_trips", Box((int)Math.Min(roundTrips, int.MaxValue)));
                if (bytes is { } b)
                {
                    activity.AddTag("smtp.message.bytes", b);
                }

                if (deciding is not null)
                {
                    activity.AddTag("smtp.reply.code", BoxCode(deciding.Code));
                    if (deciding.EnhancedStatusCode is { } enhanced)
                    {
                        activity.AddTag("smtp.reply.enhanced_status_code", EnhancedName(enhanced));
                    }
                }

                if (errorType is not null)
                {
                    activity.AddTag("error.type", errorType);
                    activity.SetStatus(ActivityStatusCode.Error);
                }
            }

            activity.Stop();
        }
    }

    /// <summary>The low-cardinality error.type of a failure: the <see cref="SmtpErrorCode"/> name, else the exception's type.</summary>
    public static string ErrorType(Exception exception) => exception switch
    {
        SmtpException smtp => smtp.ErrorCode.ToString(),
        _ => exception.GetType().FullName ?? "_OTHER",
    };

    /// <summary>"1.2"/"1.3" for tls.protocol.version.</summary>
    public static string TlsVersion(SslProtocols protocol) => protocol switch
    {
        SslProtocols.Tls13 => "1.3",
        SslProtocols.Tls12 => "1.2",
        _ => protocol.ToString(),
    };

    public static string CodeName(int code) => code switch
    {
        421 => "421",
        450 => "450",
        451 => "451",
        452 => "452",
        454 => "454",
        535 => "535",
        550 => "550",
        551 => "551",
        552 => "552",
        553 => "553",
        554 => "554",
        _ => code.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string OutcomeName(SmtpSendOutcome outcome) => outcome switch
    {
        SmtpSendOutcome.Accepted => "accepted",
        SmtpSendOutcome.Refused => "refused",
        SmtpSendOutcome.NotSent => "not_sent",
        _ => "unknown",
    };

    private static SmtpReply? FirstRefusal(SmtpSendResult result)
    {
        foreach (var recipient in result.Recipients)
        {
            if (recipient.Reply is { IsNegative: true } reply)
            {
                return reply;
            }
        }

        return null;
    }

    public static ConnectionTelemetry BeginConnection(string? host, int? port, bool trace)
    {
        var tags = new List<KeyValuePair<string, object?>>(3) { Protocol };
        if (host is not null)
        {
            tags.Add(new("server.address", host));
        }

        if (port is { } p)
        {
            tags.Add(new("server.port", Array.Find(BoxedPorts, b => (int)b == p) ?? p));
        }

        var array = tags.ToArray();
        Activity? activity = null;
        if (trace)
        {
            // A connection outlives the request that opened it: a root span, linked from the transactions it carries.
            var previous = Activity.Current;
            Activity.Current = null;
            try
            {
                activity = Source.StartActivity(ConnectionSpan, ActivityKind.Client, default(ActivityContext), array);
            }
            catch (Exception)
            {
                // A listener's ActivityStarted or Sample threw: no span for this connection.
            }
            finally
            {
                Activity.Current = previous;
            }
        }

        return new ConnectionTelemetry(array, activity, Stopwatch.GetTimestamp());
    }

    public static Activity? StartChild(ConnectionTelemetry connection, string name)
    {
        var previous = Activity.Current;
        try
        {
            return connection.Activity is { } parent ? Source.StartActivity(name, ActivityKind.Client, parent.Context, connection.Tags) : null;
        }
        catch (Exception)
        {
            return null;
        }
        finally
        {
            Activity.Current = previous;
        }
    }
}

internal enum OperationKind
{
    Connect,
    Tls,
    Auth,
}

/// <summary>One connection's span, metric tags and start.</summary>
internal sealed class ConnectionTelemetry(KeyValuePair<string, object?>[] tags, Activity? activity, long start)
{
    /// <summary>The span attributes: network.protocol.name, server.address, server.port (those known).</summary>
    public KeyValuePair<string, object?>[] Tags { get; } = tags;

    /// <summary>The metric dimensions: server.address and server.port (the protocol is always smtp).</summary>
    public KeyValuePair<string, object?>[] MetricTags { get; } = tags[1..];

    public Activity? Activity { get; } = activity;

    public long Start { get; } = start;

    public int Transactions { get; set; }
}

/// <summary>One transaction's span and start.</summary>
internal sealed class TransactionTelemetry(MailPipeMetrics metrics, ConnectionTelemetry connection, Activity? activity, long start, IRoundTripCounter session)
{
    public MailPipeMetrics Metrics { get; } = metrics;

    public ConnectionTelemetry Connection { get; } = connection;

    public Activity? Activity { get; } = activity;

    public long Start { get; } = start;

    public IRoundTripCounter Session { get; } = session;

    public long RoundTrips { get; } = session.RoundTrips;

    /// <summary>The octets read from a streamed source (a stream, a pipe, a content writer), set once the content was read to its end; null for in-memory content.</summary>
    public long? StreamedLength { get; set; }
}

/// <summary>The session's count of round trips (for smtp.round_trips), without a dependency on the session.</summary>
internal interface IRoundTripCounter
{
    long RoundTrips { get; }
}
