namespace MailPipe;

/// <summary>TLS state (STARTTLS and implicit TLS arrive with the TLS work).</summary>
public sealed partial class AsyncSmtpSession
{
    private bool _redactServerText;

    private void ResetTlsState() => _redactServerText = false;
}
