using System.Diagnostics;
using System.Net;
using System.Security.Authentication;

namespace MailPipe;

/// <summary>
/// The session's side of telemetry (Session layer): the connection, connect, TLS, AUTH and transaction spans of one
/// <see cref="AsyncSmtpSession"/>. Each entry point returns at once, allocating nothing, when nothing listens.
/// </summary>
internal static class SessionTelemetry
{
    /// <summary>Starts the connection span (a root) and its connect child; null when nothing listens.</summary>
    public static TelemetryScope? StartConnect(AsyncSmtpSession session, string host, int port)
    {
        var trace = MailPipeTelemetry.Source.HasListeners();
        var metrics = session.Metrics;
        if (!trace && !metrics.ConnectionsObserved && !metrics.TransactionsObserved)
        {
            return null;
        }

        var connection = session.TelemetryConnection = MailPipeTelemetry.BeginConnection(host, port, trace);
        return new TelemetryScope(session, OperationKind.Connect, connection, trace ? MailPipeTelemetry.StartChild(connection, MailPipeTelemetry.ConnectSpan) : null);
    }

    /// <summary>The TCP connection (or the caller's stream) is attached: a connection span when none was started, and the peer's address.</summary>
    public static void Attached(AsyncSmtpSession session, EndPoint? remote, string? host)
    {
        var connection = session.TelemetryConnection;
        if (connection is null)
        {
            var trace = MailPipeTelemetry.Source.HasListeners();
            if (!trace && !session.Metrics.ConnectionsObserved && !session.Metrics.TransactionsObserved)
            {
                return;
            }

            connection = session.TelemetryConnection = MailPipeTelemetry.BeginConnection(host, (remote as IPEndPoint)?.Port, trace);
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
        try
        {
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
        catch (Exception)
        {
            // A listener's callback threw: the connection's measurement or span is lost, never the connection's end.
        }
    }

    /// <summary>Starts the TLS span (STARTTLS and the handshake, or the implicit TLS handshake); null when nothing listens.</summary>
    public static TelemetryScope? StartTls(AsyncSmtpSession session) => StartOperation(session, OperationKind.Tls, MailPipeTelemetry.TlsSpan);

    /// <summary>Starts the AUTH exchange's span; null when nothing listens.</summary>
    public static TelemetryScope? StartAuth(AsyncSmtpSession session, string mechanism)
    {
        var scope = StartOperation(session, OperationKind.Auth, MailPipeTelemetry.AuthSpan);
        scope?.Activity?.SetTag("smtp.auth.mechanism", mechanism);
        return scope;
    }

    /// <summary>Starts a transaction's span (under the caller's activity, linked to the connection's span) at its MAIL FROM.</summary>
    public static void StartTransaction(AsyncSmtpSession session, MailTransaction tx, bool chunking)
    {
        var trace = MailPipeTelemetry.Source.HasListeners();
        var metrics = session.Metrics;
        if (!trace && !metrics.TransactionsObserved)
        {
            return;
        }

        var connection = session.TelemetryConnection ??= MailPipeTelemetry.BeginConnection(session.Host, null, trace);
        connection.Transactions++;
        Activity? activity = null;
        if (trace)
        {
            var parent = tx.Message.TelemetryParent;
            ActivityLink[]? links = connection.Activity is { } c ? [new ActivityLink(c.Context)] : null;
            activity = StartTransactionActivity(parent, links);
            if (activity is { IsAllDataRequested: true })
            {
                foreach (var tag in connection.Tags)
                {
                    activity.AddTag(tag.Key, tag.Value);
                }

                activity.AddTag("smtp.transfer", chunking ? "BDAT" : "DATA");
                activity.AddTag("smtp.recipients", MailPipeTelemetry.Box(tx.RecipientCount));
                if (session.Options.LogAddresses)
                {
                    activity.AddTag("smtp.mail_from", tx.Envelope.ReversePath);
                    activity.AddTag("smtp.rcpt_to", string.Join(",", tx.Envelope.Recipients.Select(static r => r.Address)));
                }
            }
        }

        tx.Telemetry = new TransactionTelemetry(metrics, connection, activity, Stopwatch.GetTimestamp(), session);
    }

    /// <summary>
    /// Starts the transaction span without leaving it in <see cref="Activity.Current"/> (the caller's current activity is
    /// put back), so that the next transaction of a batch is not parented under this one. Only runs with a listener.
    /// </summary>
    private static Activity? StartTransactionActivity(ActivityContext? parent, ActivityLink[]? links)
    {
        var current = Activity.Current;
        if (parent is { } p && p == default)
        {
            Activity.Current = null; // captured without a caller's activity: a root, not whatever flows here
        }

        try
        {
            return MailPipeTelemetry.Source.StartActivity(MailPipeTelemetry.TransactionSpan, ActivityKind.Client, parent ?? default, tags: null, links);
        }
        catch (Exception)
        {
            // A listener's ActivityStarted or Sample threw: no span for this transaction, which is sent all the same.
            return null;
        }
        finally
        {
            Activity.Current = current;
        }
    }

    private static TelemetryScope? StartOperation(AsyncSmtpSession session, OperationKind kind, string name)
    {
        var trace = MailPipeTelemetry.Source.HasListeners();
        var metrics = session.Metrics;
        if (!trace && !metrics.ConnectionsObserved)
        {
            return null;
        }

        var connection = session.TelemetryConnection ??= MailPipeTelemetry.BeginConnection(session.Host, null, trace);
        return new TelemetryScope(session, kind, connection, trace ? MailPipeTelemetry.StartChild(connection, name) : null);
    }
}

/// <summary>
/// The span and measurements of connect, TLS or AUTH: <see cref="Ok"/> or <see cref="Reply"/> on success; disposed
/// without either, it is a failure whose error.type is the session's last failure.
/// </summary>
internal sealed class TelemetryScope : IDisposable
{
    private readonly AsyncSmtpSession _session;
    private readonly OperationKind _kind;
    private readonly ConnectionTelemetry _connection;
    private readonly long _start = Stopwatch.GetTimestamp();
    private bool _done;

    public TelemetryScope(AsyncSmtpSession session, OperationKind kind, ConnectionTelemetry connection, Activity? activity)
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
        try
        {
            Record(errorType);
        }
        catch (Exception)
        {
            // A listener's callback threw: this operation's measurement or span is lost, never the operation.
        }

        if (errorType is not null && _kind == OperationKind.Connect)
        {
            SessionTelemetry.ConnectionEnded(_session, errorType);
        }
    }

    private void Record(string? errorType)
    {
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
    }
}
