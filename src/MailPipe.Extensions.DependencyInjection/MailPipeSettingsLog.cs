using MailPipe;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Warnings about a sender's settings that are valid but probably wrong, logged once when the sender is made (at
/// start-up with a host), category <c>MailPipe.Configuration</c>.
/// </summary>
internal static partial class MailPipeSettingsLog
{
    /// <summary>The logger category.</summary>
    public const string Category = "MailPipe.Configuration";

    /// <summary>
    /// Warns when the port and the TLS mode disagree with the convention of RFC 8314 §3.3 (465: implicit TLS) and
    /// RFC 6409 (587, and 25, start in clear text with STARTTLS): the usual result is a connection that waits until
    /// its timeout. Names the settings as the user wrote them (<paramref name="portSetting"/>, <paramref name="tlsModeSetting"/>).
    /// </summary>
    public static void CheckPortAndTlsMode(ILogger logger, string sender, string portSetting, int port, string tlsModeSetting, SmtpTlsMode tlsMode)
    {
        var convention = (port, tlsMode) switch
        {
            (465, not SmtpTlsMode.Implicit) =>
                "by convention port 465 is submission over implicit TLS (RFC 8314 §3.3; TlsMode Implicit): such a server waits for the client's TLS handshake while the client waits for its greeting, until the connect or reply timeout",
            (587 or 25, SmtpTlsMode.Implicit) =>
                $"by convention port {port} ({(port == 587 ? "submission, RFC 6409" : "relay")}) starts in clear text and upgrades with STARTTLS (TlsMode StartTlsRequired), and implicit TLS is port 465 (RFC 8314 §3.3): the TLS handshake meets the server's clear-text greeting and fails, or waits until the timeout",
            _ => null,
        };
        if (convention is not null)
        {
            PortTlsModeMismatch(logger, sender, portSetting, port, tlsModeSetting, tlsMode, convention);
        }
    }

    [LoggerMessage(EventId = MailPipeEventId.PortTlsModeMismatch, Level = LogLevel.Warning,
        Message = "MailPipe sender {Sender}: {PortSetting} is {Port} and {TlsModeSetting} is {TlsMode}; {Convention}. Ignore this if the server is set up otherwise.")]
    private static partial void PortTlsModeMismatch(ILogger logger, string sender, string portSetting, int port, string tlsModeSetting, SmtpTlsMode tlsMode, string convention);
}
