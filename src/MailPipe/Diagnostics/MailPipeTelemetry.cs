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

    private static object Box(int value) => (uint)value < (uint)SmallInts.Length ? SmallInts[value] : value;

    /// <summary>The last enhanced status code's text (most transactions of a run end with the same one, such as 2.0.0).</summary>
    private static Tuple<EnhancedStatusCode, string>? _lastEnhanced;

    private static string EnhancedName(EnhancedStatusCode code)
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

    private static object BoxCode(int code) => code is >= 200 and < 600 ? ReplyCodes[code - 200] : code;

    /// <summary>A message for a session, carrying the caller's activity captured at <c>SendAsync</c> (the pool).</summary>
    public static SmtpMessage WithParent(SmtpMessage message, ActivityContext parent) =>
        Source.HasListeners() ? message.WithTelemetryParent(parent) : message;

    /// <summary>The caller's activity now (the pool captures it when a request is made).</summary>
    public static ActivityContext CaptureParent() => Activity.Current?.Context ?? default;

    /// <summary>Starts the connection span (a root) and its connect child; null when nothing listens.</summary>
    public static OperationScope? StartConnect(AsyncSmtpSession session, string host, int port)
    {
        var trace = Source.HasListeners();
        var metrics = session.Metrics;
        if (!trace && !metrics.ConnectionsObserved && !metrics.TransactionsObserved)
        {
            return null;
        }

        var connection = BeginConnection(session, host, port, trace);
        return new OperationScope(session, OperationKind.Connect, connection, trace ? StartChild(connection, ConnectSpan) : null);
    }

    /// <summary>The TCP connection (or the caller's stream) is attached: a connection span when none was started, and the peer's address.</summary>
    public static void Attached(AsyncSmtpSession session, EndPoint? remote, string? host)
    {
        var connection = session.TelemetryConnection;
        if (connection is null)
        {
            var trace = Source.HasListeners();
            if (!trace && !session.Metrics.ConnectionsObserved && !session.Metrics.TransactionsObserved)
            {
                return;
            }

            connection = BeginConnection(session, host, (remote as IPEndPoint)?.Port, trace);
        }

        if (connection.Activity is { IsAllDataRequested: true } activity && remote is IPEndPoint ip)
        {
            activity.SetTag("network.peer.address", (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString());
            activity.SetTag("network.peer.port", ip.Port);
        }
    }

    /// <summary>The connection is gone: its span stops and its duration is recorded.</summary>
    public static void ConnectionEnded(AsyncSmtpSession session, string? errorType = null)
    {
        var connection = session.TelemetryConnection;
        if (connection is null)
        {
            return;
        }

        session.TelemetryConnection = null;
        var metrics = session.Metrics;
        if (metrics.ConnectionDuration.Enabled)
        {
            metrics.ConnectionDuration.Record(Stopwatch.GetElapsedTime(connection.Start).TotalSeconds, connection.MetricTags);
        }

        if (connection.Activity is { } activity)
        {
            if (errorType is not null)
            {
                activity.SetTag("error.type", errorType);
                activity.SetStatus(ActivityStatusCode.Error);
            }

            activity.SetTag("smtp.transactions", connection.Transactions);
            activity.Stop();
        }
    }

    /// <summary>Starts the TLS handshake's span; null when nothing listens.</summary>
    public static OperationScope? StartTls(AsyncSmtpSession session) => StartOperation(session, OperationKind.Tls, TlsSpan);

    /// <summary>Starts the AUTH exchange's span; null when nothing listens.</summary>
    public static OperationScope? StartAuth(AsyncSmtpSession session, string mechanism)
    {
        var scope = StartOperation(session, OperationKind.Auth, AuthSpan);
        scope?.Activity?.SetTag("smtp.auth.mechanism", mechanism);
        return scope;
    }

    /// <summary>Starts a transaction's span (under the caller's activity, linked to the connection's span) at its MAIL FROM.</summary>
    public static void StartTransaction(AsyncSmtpSession session, MailTransaction tx, bool chunking)
    {
        var trace = Source.HasListeners();
        var metrics = session.Metrics;
        if (!trace && !metrics.TransactionsObserved)
        {
            return;
        }

        var connection = session.TelemetryConnection ?? BeginConnection(session, session.Host, null, trace);
        connection.Transactions++;
        Activity? activity = null;
        if (trace)
        {
            var parent = tx.Message.TelemetryParent;
            var previous = Activity.Current;
            if (parent is { } p && p == default)
            {
                Activity.Current = null; // captured without a caller's activity: a root, not whatever flows here
            }

            ActivityLink[]? links = connection.Activity is { } c ? [new ActivityLink(c.Context)] : null;
            activity = Source.StartActivity(TransactionSpan, ActivityKind.Client, parent ?? default, tags: null, links);
            Activity.Current = previous;
            if (activity is { IsAllDataRequested: true })
            {
                foreach (var tag in connection.Tags)
                {
                    activity.AddTag(tag.Key, tag.Value);
                }

                activity.AddTag("smtp.transfer", chunking ? "BDAT" : "DATA");
                activity.AddTag("smtp.recipients", Box(tx.RecipientCount));
                if (session.Options.LogAddresses)
                {
                    activity.AddTag("smtp.mail_from", tx.Envelope.ReversePath);
                    activity.AddTag("smtp.rcpt_to", string.Join(",", tx.Envelope.Recipients.Select(static r => r.Address)));
                }
            }
        }

        tx.Telemetry = new TransactionTelemetry(metrics, connection, activity, Stopwatch.GetTimestamp(), session);
    }

    /// <summary>Stops a transaction's span and records its measurements; returns <paramref name="result"/>.</summary>
    public static SmtpSendResult StopTransaction(MailTransaction tx, SmtpSendResult result)
    {
        var telemetry = tx.Telemetry;
        if (telemetry is null)
        {
            return result;
        }

        tx.Telemetry = null;
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
        long? bytes = tx.EndOfDataWritten ? tx.Message.ContentLength : null;
        var roundTrips = telemetry.Session.RoundTrips - telemetry.RoundTrips;
        // The reply that decided: a refused MAIL, else every recipient refused (the 554 to DATA that follows is its echo), else the end of data's.
        var deciding = result.MailReply is { IsNegative: true } ? result.MailReply
            : accepted == 0 && refused > 0 ? FirstRefusal(result)
            : result.FinalReply ?? result.DataReply;
        string? errorType = result.Outcome == SmtpSendOutcome.Accepted ? null
            : result.Exception is { } ex ? ErrorType(ex)
            : deciding is not null ? CodeName(deciding.Code) : "_OTHER";

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

        return result;
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

    private static OperationScope? StartOperation(AsyncSmtpSession session, OperationKind kind, string name)
    {
        var trace = Source.HasListeners();
        var metrics = session.Metrics;
        if (!trace && !metrics.ConnectionsObserved)
        {
            return null;
        }

        var connection = session.TelemetryConnection ?? BeginConnection(session, session.Host, null, trace);
        return new OperationScope(session, kind, connection, trace ? StartChild(connection, name) : null);
    }

    private static ConnectionTelemetry BeginConnection(AsyncSmtpSession session, string? host, int? port, bool trace)
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
            activity = Source.StartActivity(ConnectionSpan, ActivityKind.Client, default(ActivityContext), array);
            Activity.Current = previous;
        }

        var connection = new ConnectionTelemetry(array, activity, Stopwatch.GetTimestamp());
        session.TelemetryConnection = connection;
        return connection;
    }

    private static Activity? StartChild(ConnectionTelemetry connection, string name)
    {
        var previous = Activity.Current;
        var activity = connection.Activity is { } parent
            ? Source.StartActivity(name, ActivityKind.Client, parent.Context, connection.Tags)
            : null;
        Activity.Current = previous;
        return activity;
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
internal sealed class TransactionTelemetry(MailPipeMetrics metrics, ConnectionTelemetry connection, Activity? activity, long start, AsyncSmtpSession session)
{
    public MailPipeMetrics Metrics { get; } = metrics;

    public ConnectionTelemetry Connection { get; } = connection;

    public Activity? Activity { get; } = activity;

    public long Start { get; } = start;

    public AsyncSmtpSession Session { get; } = session;

    public long RoundTrips { get; } = session.RoundTrips;
}

/// <summary>
/// The span and measurements of connect, TLS or AUTH: <see cref="Ok"/> or <see cref="Reply"/> on success; disposed
/// without either, it is a failure whose error.type is the session's last failure.
/// </summary>
internal sealed class OperationScope : IDisposable
{
    private readonly AsyncSmtpSession _session;
    private readonly OperationKind _kind;
    private readonly ConnectionTelemetry _connection;
    private readonly long _start = Stopwatch.GetTimestamp();
    private bool _done;

    public OperationScope(AsyncSmtpSession session, OperationKind kind, ConnectionTelemetry connection, Activity? activity)
    {
        _session = session;
        _kind = kind;
        _connection = connection;
        Activity = activity;
        session.TelemetryError = null;
    }

    public Activity? Activity { get; }

    /// <summary>The operation succeeded (TLS: with the negotiated protocol).</summary>
    public void Ok(SslProtocols? tls = null)
    {
        if (_done)
        {
            return;
        }

        if (tls is { } protocol && Activity is { } activity)
        {
            activity.SetTag("tls.protocol.name", "tls");
            activity.SetTag("tls.protocol.version", MailPipeTelemetry.TlsVersion(protocol));
            _connection.Activity?.SetTag("tls.protocol.version", MailPipeTelemetry.TlsVersion(protocol));
        }

        End(null);
    }

    /// <summary>The operation's final reply: positive is success, else a failure with the reply code as error.type.</summary>
    public SmtpReply Reply(SmtpReply reply)
    {
        if (!_done)
        {
            Activity?.SetTag("smtp.reply.code", reply.Code);
            if (reply.IsPositiveCompletion)
            {
                End(null);
            }
            else
            {
                End(MailPipeTelemetry.CodeName(reply.Code));
            }
        }

        return reply;
    }

    public void Dispose()
    {
        if (!_done)
        {
            End(_session.TelemetryError ?? "_OTHER");
        }
    }

    private void End(string? errorType)
    {
        _done = true;
        var metrics = _session.Metrics;
        var (duration, failures) = _kind switch
        {
            OperationKind.Connect => (metrics.ConnectDuration, metrics.ConnectFailures),
            OperationKind.Tls => (metrics.TlsDuration, metrics.TlsFailures),
            _ => (metrics.AuthDuration, metrics.AuthFailures),
        };
        var tags = new TagList(_connection.MetricTags);
        if (errorType is not null)
        {
            tags.Add("error.type", errorType);
            failures.Add(1, tags);
        }

        if (duration.Enabled)
        {
            duration.Record(Stopwatch.GetElapsedTime(_start).TotalSeconds, tags);
        }

        if (Activity is { } activity)
        {
            if (errorType is not null)
            {
                activity.SetTag("error.type", errorType);
                activity.SetStatus(ActivityStatusCode.Error);
            }

            activity.Stop();
        }

        if (errorType is not null && _kind == OperationKind.Connect)
        {
            MailPipeTelemetry.ConnectionEnded(_session, errorType);
        }
    }
}
