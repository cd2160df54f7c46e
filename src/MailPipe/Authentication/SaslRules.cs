using System.Security.Cryptography;

namespace MailPipe.Authentication;

/// <summary>Checks on SASL identities shared by every mechanism.</summary>
internal static class SaslIdentity
{
    /// <summary>
    /// Throws when an identity (user name, authorization identity, NTLM domain) holds CR, LF or NUL: inside base64 they
    /// cannot inject a command, but the server would see another identity than the caller meant (RFC 4616 §2, RFC 4422 §3.4.1).
    /// </summary>
    /// <param name="value">The identity; <see langword="null"/> passes.</param>
    /// <param name="mechanism">The mechanism, for the message.</param>
    /// <param name="parameterName">The caller's parameter name.</param>
    /// <exception cref="ArgumentException">The value holds CR, LF or NUL.</exception>
    public static void Validate(string? value, string mechanism, string parameterName)
    {
        if (value is not null && value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            throw new ArgumentException($"An AUTH {mechanism} identity must not contain CR, LF or NUL (the server would see another identity); nothing was sent.", parameterName);
        }
    }
}

/// <summary>Whether a mechanism the caller named may be tried on this server (RFC 4954 §3: the server's AUTH list).</summary>
internal static class SaslAdvertisement
{
    /// <summary>
    /// Why <paramref name="mechanism"/> must not be sent, or <see langword="null"/>: a typed mechanism the server's
    /// current EHLO reply does not list (after STARTTLS the list may differ from before). The raw
    /// <c>AuthenticateAsync(mechanism, initialResponse, onChallenge)</c> is never checked, nor a session whose
    /// capabilities are unknown (no EHLO, or HELO). The session throws it as an <see cref="InvalidOperationException"/>
    /// before anything is written, like its cleartext check, and stays usable (STARTTLS, EHLO, then AUTH again).
    /// </summary>
    public static string? Refusal(SaslMechanism mechanism, SmtpCapabilities capabilities)
    {
        if (mechanism is SaslCallbackMechanism || ReferenceEquals(capabilities, SmtpCapabilities.None))
        {
            return null;
        }

        var offered = capabilities.AuthenticationMechanisms;
        if (offered.Contains(mechanism.Name))
        {
            return null;
        }

        return offered.Count == 0
            ? $"AUTH {mechanism.Name} was not sent: the server's EHLO reply does not advertise AUTH (RFC 4954 §3; some servers offer it only after STARTTLS, then send EHLO again). Nothing was sent; the session is unchanged."
            : $"AUTH {mechanism.Name} was not sent: the server advertises only AUTH {string.Join(' ', offered)} (RFC 4954 §3). Nothing was sent; the session is unchanged.";
    }
}

/// <summary>
/// The fallback of the automatic password choice (RFC 4954 §6): after <c>534 5.7.9</c> ("mechanism too weak") to a
/// mechanism MailPipe picked, each remaining advertised mechanism that is not weaker is tried, once. Never after 535,
/// 454, 530 or 5.7.14 (providers answer 534 5.7.14 for "application-specific password required", and repeating a
/// failing login can lock an account), and never in place of a mechanism the caller named.
/// </summary>
internal static class SaslFallback
{
    /// <summary>
    /// Strength for the "not weaker" rule: SCRAM (salted, mutual) 3; PLAIN and LOGIN over TLS 2 (what servers that
    /// answer 5.7.9 to a hash-based mechanism ask for); CRAM-MD5 and NTLM 1; PLAIN and LOGIN in cleartext 0.
    /// </summary>
    public static int Strength(string mechanism, bool encrypted) => mechanism switch
    {
        SmtpAuthenticationMechanisms.ScramSha256 or SmtpAuthenticationMechanisms.ScramSha1 => 3,
        SmtpAuthenticationMechanisms.Plain or SmtpAuthenticationMechanisms.Login => encrypted ? 2 : 0,
        _ => 1,
    };

    /// <summary>Whether <paramref name="reply"/> asks for another mechanism: 534 with enhanced code 5.7.9, nothing else.</summary>
    public static bool IsTooWeak(SmtpReply reply) =>
        reply.Code == 534 && reply.EnhancedStatusCode is { } status && status.Class == 5 && status.Subject == 7 && status.Detail == 9;

    /// <summary>The mechanisms to try after <paramref name="failed"/> was refused as too weak, in preference order.</summary>
    /// <param name="failed">The mechanism refused with 534 5.7.9.</param>
    /// <param name="offered">The server's AUTH list.</param>
    /// <param name="tried">Mechanisms already tried (each is tried once).</param>
    /// <param name="encrypted">Whether the connection is encrypted.</param>
    public static IEnumerable<string> Candidates(string failed, IReadOnlyList<string> offered, IReadOnlySet<string> tried, bool encrypted)
    {
        var floor = Strength(failed, encrypted);
        foreach (var name in SmtpAuthenticationMechanisms.PasswordPreferenceOrder)
        {
            if (offered.Contains(name) && !tried.Contains(name) && Strength(name, encrypted) >= floor)
            {
                yield return name;
            }
        }
    }

    /// <summary>The mechanism when it can run on this platform; an NTLM that cannot start is disposed and <see langword="null"/> returned.</summary>
    public static SaslMechanism? Usable(SaslMechanism mechanism)
    {
        if (mechanism is SaslNtlm ntlm && !ntlm.TryStart())
        {
            ntlm.Dispose();
            return null;
        }

        return mechanism;
    }

    /// <summary>Runs <paramref name="first"/>, then the fallbacks while the reply is 534 5.7.9.</summary>
    /// <param name="first">The mechanism chosen automatically.</param>
    /// <param name="offered">The server's AUTH list.</param>
    /// <param name="encrypted">Whether the connection is encrypted.</param>
    /// <param name="create">Makes a mechanism by name, or returns <see langword="null"/> when it may not run here (cleartext policy, platform).</param>
    /// <param name="run">Runs one exchange and disposes the mechanism.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <returns>The last exchange's final reply.</returns>
    public static async Task<SmtpReply> RunAsync(
        SaslMechanism first,
        IReadOnlyList<string> offered,
        bool encrypted,
        Func<string, SaslMechanism?> create,
        Func<SaslMechanism, CancellationToken, Task<SmtpReply>> run,
        CancellationToken cancellationToken)
    {
        var tried = new HashSet<string>(StringComparer.Ordinal) { first.Name };
        var name = first.Name;
        var reply = await run(first, cancellationToken).ConfigureAwait(false);
        while (IsTooWeak(reply))
        {
            SaslMechanism? next = null;
            foreach (var candidate in Candidates(name, offered, tried, encrypted))
            {
                tried.Add(candidate);
                next = create(candidate);
                if (next is not null)
                {
                    break;
                }
            }

            if (next is null)
            {
                return reply;
            }

            name = next.Name;
            reply = await run(next, cancellationToken).ConfigureAwait(false);
        }

        return reply;
    }
}

/// <summary>SCRAM's Hi() (RFC 5802 §2.2), PBKDF2 with one block, computed so that a token can stop it.</summary>
internal static class ScramDerivation
{
    /// <summary>
    /// The highest iteration count accepted from a server. Real servers use 4,096 (Cyrus SASL, Dovecot, PostgreSQL;
    /// RFC 7677 §4 asks at least that) to 15,000 (MongoDB); 100,000 leaves room for administrators who raise it and
    /// costs tens of milliseconds, where the old cap of 10,000,000 cost seconds of CPU.
    /// </summary>
    public const int MaxIterations = 100_000;

    /// <summary>How many iterations run between checks of the token.</summary>
    private const int CheckEvery = 1024;

    /// <summary>Hi(password, salt, iterations) with HMAC over <paramref name="hash"/> (SHA-1 or SHA-256).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static byte[] Hi(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, int iterations, HashAlgorithmName hash, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        cancellationToken.ThrowIfCancellationRequested();
        using var hmac = IncrementalHash.CreateHMAC(hash, password);
        var length = hmac.HashLengthInBytes;
        Span<byte> u = stackalloc byte[length];
        var result = new byte[length];

        // U1 = HMAC(password, salt || INT(1)).
        hmac.AppendData(salt);
        hmac.AppendData([0, 0, 0, 1]);
        hmac.GetHashAndReset(u);
        u.CopyTo(result);
        for (var i = 2; i <= iterations; i++)
        {
            if (i % CheckEvery == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            hmac.AppendData(u);
            hmac.GetHashAndReset(u);
            for (var j = 0; j < length; j++)
            {
                result[j] ^= u[j];
            }
        }

        return result;
    }
}
