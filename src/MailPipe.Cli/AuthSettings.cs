using System.Net;

namespace MailPipe.Cli;

/// <summary>
/// What <c>--auth</c>, <c>--user</c> and <c>--password-env</c> ask for: a mechanism (or the automatic choice), a user
/// name, and the password or OAuth token read from an environment variable. The secret never appears in
/// <see cref="ToString"/>, in an error message or in the transcript (MailPipe redacts AUTH).
/// </summary>
internal sealed class AuthSettings
{
    /// <summary>The <c>--auth</c> value for the strongest password mechanism both sides support.</summary>
    public const string Automatic = "AUTO";

    /// <summary>The <c>--auth</c> values, in help order.</summary>
    public static readonly IReadOnlyList<string> Mechanisms =
    [
        SmtpAuthenticationMechanisms.Plain,
        SmtpAuthenticationMechanisms.Login,
        SmtpAuthenticationMechanisms.CramMd5,
        SmtpAuthenticationMechanisms.Ntlm,
        SmtpAuthenticationMechanisms.ScramSha1,
        SmtpAuthenticationMechanisms.ScramSha256,
        SmtpAuthenticationMechanisms.XOAuth2,
        SmtpAuthenticationMechanisms.OAuthBearer,
    ];

    private readonly string _secret;

    /// <summary>
    /// How an error shows the value of <c>--password-env</c> or <c>--auth-password-env</c>: the name itself when it is
    /// a shell variable's name (letters, digits, '_', not starting with a digit); otherwise nothing of it, because such a
    /// value is most likely the password or token given where its variable's name belongs, and standard error ends up
    /// in terminal scroll-back and CI logs.
    /// </summary>
    /// <param name="option">The option, <c>--password-env</c> or <c>--auth-password-env</c>.</param>
    /// <param name="name">The value given.</param>
    /// <returns>The start of an error line: the option, and the name when it may be shown.</returns>
    public static string ShownVariable(string option, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var isName = name.Length > 0 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
        return isName ? $"{option} {name}" : $"{option} (the value is not shown: it is not a variable name, and may be the password itself; give the variable's name, as {option} SMTP_PASSWORD)";
    }

    /// <summary>
    /// The secret in an environment variable (<c>--password-env</c>, serve's <c>--auth-password-env</c>), less exactly
    /// one trailing line end (LF or CRLF): a variable filled from a file (a Kubernetes secret made with
    /// <c>--from-file</c>, an env file, <c>"$(cat file; echo)"</c>) ends with the file's line end, which is never part
    /// of the password and would make the server answer 535.
    /// </summary>
    /// <param name="variable">The variable's name.</param>
    /// <returns>The secret, or <see langword="null"/> when the variable is not set or holds nothing but one line end.</returns>
    public static string? ReadSecretVariable(string variable)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        var secret = value is null ? null
            : value.EndsWith("\r\n", StringComparison.Ordinal) ? value[..^2]
            : value.EndsWith('\n') ? value[..^1]
            : value;
        return string.IsNullOrEmpty(secret) ? null : secret;
    }

    /// <summary>Creates the settings.</summary>
    /// <param name="mechanism">A name of <see cref="Mechanisms"/> or <see cref="Automatic"/>, upper case.</param>
    /// <param name="userName">The user name (the mailbox for OAuth).</param>
    /// <param name="secret">The password, or the OAuth access token for XOAUTH2 and OAUTHBEARER.</param>
    public AuthSettings(string mechanism, string userName, string secret)
    {
        Mechanism = mechanism;
        UserName = userName;
        _secret = secret;
    }

    /// <summary>The pinned mechanism, or <see cref="Automatic"/>.</summary>
    public string Mechanism { get; }

    /// <summary>The user name.</summary>
    public string UserName { get; }

    /// <summary>Whether the secret is an OAuth 2.0 access token (XOAUTH2, OAUTHBEARER).</summary>
    public bool IsToken => Mechanism is SmtpAuthenticationMechanisms.XOAuth2 or SmtpAuthenticationMechanisms.OAuthBearer;

    /// <summary>Checks an <c>--auth</c> value and returns it upper case.</summary>
    /// <param name="value">The value as typed.</param>
    /// <param name="mechanism">The normalised name.</param>
    /// <returns>Whether it is a mechanism the CLI offers, or <c>auto</c>.</returns>
    public static bool TryParseMechanism(string? value, out string mechanism)
    {
        mechanism = value?.Trim().ToUpperInvariant() ?? string.Empty;
        return mechanism == Automatic || Mechanisms.Contains(mechanism);
    }

    /// <summary>Whether a mechanism sends the secret itself, so that it needs TLS unless <c>--allow-cleartext-auth</c>.</summary>
    /// <param name="mechanism">A normalised <c>--auth</c> value.</param>
    /// <returns><see langword="true"/> for PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER.</returns>
    public static bool RevealsSecret(string mechanism) => mechanism != Automatic && SmtpAuthenticationMechanisms.RevealsSecret(mechanism);

    /// <summary>Runs AUTH on the session: the pinned mechanism, or the strongest password mechanism both sides support.</summary>
    /// <param name="session">A session after EHLO (and STARTTLS).</param>
    /// <param name="cancellationToken">Cancels.</param>
    /// <returns>The final reply: 235 on success.</returns>
    /// <exception cref="SmtpException">No usable mechanism, the mechanism cannot run here, or a transport failure.</exception>
    /// <exception cref="InvalidOperationException">The mechanism would send the secret without TLS.</exception>
    /// <exception cref="ArgumentException">The user name or secret holds characters the mechanism cannot carry.</exception>
    public Task<SmtpReply> AuthenticateAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (IsToken)
        {
            var token = _secret;
            return session.AuthenticateAsync(UserName, _ => ValueTask.FromResult(token), new SmtpAuthenticationOptions { Mechanism = Mechanism }, cancellationToken);
        }

        var options = Mechanism == Automatic ? null : new SmtpAuthenticationOptions { Mechanism = Mechanism };
        return session.AuthenticateAsync(new NetworkCredential(UserName, _secret), options, cancellationToken);
    }

    /// <summary>The settings without the secret.</summary>
    /// <returns>For example <c>AUTH PLAIN as user@example.org</c>.</returns>
    public override string ToString() => Describe(attempted: null);

    /// <summary>The settings without the secret, naming the mechanism that ran.</summary>
    /// <param name="attempted">The mechanism the session tried (<c>AsyncSmtpSession.LastAttemptedMechanism</c>), or <see langword="null"/> when none was begun.</param>
    /// <returns>For example <c>AUTH PLAIN as user@example.org</c>, <c>AUTH SCRAM-SHA-256 (chosen by --auth auto) as user@example.org</c>.</returns>
    public string Describe(string? attempted) => (Mechanism, attempted) switch
    {
        (Automatic, null) => $"AUTH (--auth auto, no mechanism begun) as {UserName}",
        (Automatic, _) => $"AUTH {attempted} (chosen by --auth auto) as {UserName}",
        _ => $"AUTH {Mechanism} as {UserName}",
    };
}
