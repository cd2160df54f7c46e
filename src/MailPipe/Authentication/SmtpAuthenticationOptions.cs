namespace MailPipe;

/// <summary>
/// Settings of one call to
/// <see cref="AsyncSmtpSession.AuthenticateAsync(System.Net.NetworkCredential, SmtpAuthenticationOptions?, CancellationToken)"/>
/// or its token variant (RFC 4954).
/// </summary>
public sealed class SmtpAuthenticationOptions
{
    /// <summary>
    /// Pins the mechanism (a name of <see cref="SmtpAuthenticationMechanisms"/>, any case), with no fallback. It must be
    /// in the server's AUTH list: otherwise <see cref="InvalidOperationException"/> before anything is sent (the session
    /// stays usable); only when the list is unknown (no EHLO, or HELO) is it sent unchecked, and a 504 then returned.
    /// For a mechanism the server does not advertise, use the raw
    /// <see cref="AsyncSmtpSession.AuthenticateAsync(string, ReadOnlyMemory{byte}?, Func{ReadOnlyMemory{byte}, CancellationToken, ValueTask{ReadOnlyMemory{byte}?}}, CancellationToken)"/>. Default <see langword="null"/>:
    /// the first of <see cref="SmtpAuthenticationMechanisms.PasswordPreferenceOrder"/> (or
    /// <see cref="SmtpAuthenticationMechanisms.TokenPreferenceOrder"/>) that the server advertises and that may run here.
    /// </summary>
    public string? Mechanism { get; set; }

    /// <summary>The authorization identity to act as (RFC 4422 §2), for PLAIN and SCRAM; <see langword="null"/> (default) to act as the authenticated user. Ignored by the other mechanisms.</summary>
    public string? AuthorizationId { get; set; }

    /// <summary>The service principal name for NTLM, such as <c>SMTPSVC/mail.example.org</c>; default <see langword="null"/>: <c>SMTPSVC/</c> + the connected host.</summary>
    public string? NtlmTargetName { get; set; }
}
