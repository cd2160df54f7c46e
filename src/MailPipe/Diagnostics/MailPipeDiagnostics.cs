namespace MailPipe;

/// <summary>
/// The names under which MailPipe publishes its traces and metrics (System.Diagnostics <c>ActivitySource</c> and
/// <c>Meter</c>; OpenTelemetry picks them up with <c>AddSource</c>/<c>AddMeter</c> or the MailPipe.OpenTelemetry package).
/// Spans: <c>smtp connection</c> (a root per connection), its children <c>smtp connect</c>, <c>smtp tls</c> and
/// <c>smtp auth</c>, and <c>smtp transaction</c> per message (under the caller's activity, linked to its connection).
/// No mail address appears in a span, event, link or metric unless <see cref="SmtpSessionOptions.LogAddresses"/> is set.
/// </summary>
public static class MailPipeDiagnostics
{
    /// <summary>The name of MailPipe's <see cref="System.Diagnostics.ActivitySource"/>: <c>MailPipe</c>.</summary>
    public const string ActivitySourceName = "MailPipe";

    /// <summary>The name of MailPipe's <see cref="System.Diagnostics.Metrics.Meter"/>: <c>MailPipe</c> (the same as <see cref="SmtpSender.MeterName"/>).</summary>
    public const string MeterName = "MailPipe";
}
