using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MailPipe.Cli;

/// <summary>
/// The options <c>mailpipe send</c> and <c>mailpipe probe</c> share: the server, TLS (<c>--tls</c>, <c>--starttls</c>,
/// <c>--tls-name</c>, <c>--ca-file</c>, <c>--accept-name-mismatch</c>), the EHLO name, the timeout and the transcript.
/// </summary>
internal sealed class ConnectionOptions
{
    private static readonly System.Buffers.SearchValues<char> NotInHostName = System.Buffers.SearchValues.Create(" \t\r\n\0/");

    /// <summary>Creates the options.</summary>
    /// <param name="serverDescription">The help text of <c>--server</c>.</param>
    /// <param name="serverRequired">Whether <c>--server</c> must be given.</param>
    public ConnectionOptions(string serverDescription, bool serverRequired)
    {
        Server = new Option<ServerAddress?>("--server", "-s")
        {
            Description = serverDescription,
            HelpName = "HOST[:PORT]",
            CustomParser = ParseServer,
            Required = serverRequired,
        };
        HeloName.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } name && !IsValidHeloName(name))
            {
                result.AddError($"--helo-name: '{name}' is not a domain name or address literal");
            }
        });
        TlsName.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } name && (name.Length == 0 || name.AsSpan().IndexOfAny(NotInHostName) >= 0))
            {
                result.AddError($"--tls-name: '{name}' is not a host name");
            }
        });
    }

    /// <summary><c>--server</c>.</summary>
    public Option<ServerAddress?> Server { get; }

    /// <summary><c>--tls</c>: implicit TLS (RFC 8314), as on port 465.</summary>
    public Option<bool> ImplicitTls { get; } = new("--tls")
    {
        Description = "Implicit TLS (RFC 8314): TLS from the first byte, as on port 465. The certificate must be trusted and name the server. Default: off.",
    };

    /// <summary><c>--starttls</c>: STARTTLS required (RFC 3207).</summary>
    public Option<bool> StartTls { get; } = new("--starttls")
    {
        Description = "STARTTLS is required (RFC 3207), as on port 587: when the server does not offer it, or refuses it, nothing more is sent (exit 2). Default: off.",
    };

    /// <summary><c>--tls-name</c>: the name the certificate must carry.</summary>
    public Option<string?> TlsName { get; } = new("--tls-name")
    {
        Description = "The name the server's certificate must carry, also sent as SNI (default: the --server host).",
        HelpName = "NAME",
    };

    /// <summary><c>--ca-file</c>: extra trusted roots.</summary>
    public Option<FileInfo> CaFile { get; } = new("--ca-file")
    {
        CustomParser = r => PathOptions.ParseExistingFile(r, "--ca-file"),
        Description = "A certificate authority (PEM, one or more, or DER) to trust besides the system store for the server's TLS certificate. Default: the system store only.",
        HelpName = "PATH",
    };

    /// <summary><c>--accept-name-mismatch</c>.</summary>
    public Option<bool> AcceptNameMismatch { get; } = new("--accept-name-mismatch")
    {
        Description = "Accept a trusted certificate that does not name the server (RFC 6125); any other certificate fault still fails. Default: off.",
    };

    /// <summary><c>--helo-name</c>.</summary>
    public Option<string?> HeloName { get; } = new("--helo-name")
    {
        Description = "The name the client gives in EHLO/HELO (default: this machine's fully qualified name when it has a dot and is not localhost, otherwise the address literal of the connection's local end, such as [127.0.0.1]).",
        HelpName = "NAME",
    };

    /// <summary><c>--timeout</c>.</summary>
    public Option<TimeSpan?> Timeout { get; } = new("--timeout")
    {
        Description = "The time allowed for the connect, the TLS handshake, each send and each reply: " + DurationArgument.Forms + ", above 0 and at most 1 day (default: MailPipe's: 60 s to connect, 3 min per send, 5 min per reply, 10 min for the reply to the end of data; RFC 5321 §4.5.3.2).",
        HelpName = "DURATION",
        CustomParser = ParseTimeout,
    };

    /// <summary><c>--trace</c>.</summary>
    public Option<bool> Trace { get; } = new("--trace")
    {
        Description = "Print the SMTP transcript (C:/S: lines) to standard error; addresses are masked unless --log-addresses, secrets are always redacted. Default: off.",
    };

    /// <summary><c>--log-addresses</c>.</summary>
    public Option<bool> LogAddresses { get; } = new("--log-addresses") { Description = "Show mail addresses unmasked in the --trace transcript. Default: off (masked)." };

    /// <summary><c>--tls-cert</c>: the client certificate (PEM).</summary>
    public Option<FileInfo> TlsCertificate { get; } = new("--tls-cert")
    {
        CustomParser = r => PathOptions.ParseExistingFile(r, "--tls-cert"),
        Description = "A client certificate (PEM) to present in the TLS handshake, with --tls-key (default: none).",
        HelpName = "PATH",
    };

    /// <summary><c>--tls-key</c>: the client certificate's private key (PEM).</summary>
    public Option<FileInfo> TlsKey { get; } = new("--tls-key")
    {
        CustomParser = r => PathOptions.ParseExistingFile(r, "--tls-key"),
        Description = "The private key (PEM, unencrypted) of --tls-cert; default: the key in the --tls-cert file.",
        HelpName = "PATH",
    };

    /// <summary>Every option, in help order.</summary>
    public IEnumerable<Option> All => [Server, ImplicitTls, StartTls, TlsName, CaFile, AcceptNameMismatch, TlsCertificate, TlsKey, HeloName, Timeout, Trace, LogAddresses];

    /// <summary>Loads <c>--ca-file</c>: one DER certificate, or one or more PEM certificates.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The certificates.</returns>
    /// <exception cref="CryptographicException">The file holds no certificate that loads.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static X509Certificate2Collection LoadCertificateAuthorities(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var certificates = new X509Certificate2Collection();
        if (bytes.AsSpan().IndexOf("-----BEGIN"u8) >= 0)
        {
            certificates.ImportFromPem(Encoding.ASCII.GetString(bytes));
        }
        else
        {
            certificates.Add(X509CertificateLoader.LoadCertificate(bytes));
        }

        return certificates.Count > 0 ? certificates : throw new CryptographicException("the file holds no PEM certificate");
    }

    /// <summary>The checks across options: one TLS mode at most; the TLS settings only with a TLS mode.</summary>
    /// <param name="result">The command's result.</param>
    /// <param name="tlsByDefault">Whether the command uses TLS without <c>--tls</c>/<c>--starttls</c> (probe tries STARTTLS when offered; send with <c>--tls-optional</c>, which the message names, as probe never shows it).</param>
    public void Validate(CommandResult result, bool tlsByDefault)
    {
        if (result.GetResult(TlsKey) is not null && result.GetResult(TlsCertificate) is null)
        {
            result.AddError("--tls-key is the key of --tls-cert: give --tls-cert too");
        }

        var implicitTls = result.GetValue(ImplicitTls);
        var startTls = result.GetValue(StartTls);
        if (implicitTls && startTls)
        {
            result.AddError("--tls (implicit TLS) and --starttls cannot be used together: choose the one the server's port speaks");
        }

        if (!implicitTls && !startTls && !tlsByDefault)
        {
            foreach (var (option, name) in new (Option, string)[] { (CaFile, "--ca-file"), (AcceptNameMismatch, "--accept-name-mismatch"), (TlsName, "--tls-name"), (TlsCertificate, "--tls-cert"), (TlsKey, "--tls-key") })
            {
                if (result.GetResult(option) is not null)
                {
                    result.AddError($"{name} is a TLS setting: it needs --tls, --starttls or --tls-optional");
                }
            }
        }
    }

    /// <summary>Reads the checked options; loads <c>--ca-file</c>.</summary>
    /// <param name="parseResult">The parse result.</param>
    /// <param name="defaultMode">The TLS mode without <c>--tls</c>/<c>--starttls</c>.</param>
    /// <param name="settings">The settings, when <c>--ca-file</c> loads.</param>
    /// <param name="error">Why <c>--ca-file</c> does not load, otherwise <see langword="null"/>.</param>
    /// <returns>Whether the settings could be read.</returns>
    public bool TryRead(ParseResult parseResult, SmtpTlsMode defaultMode, out ConnectionSettings? settings, out string? error)
    {
        settings = null;
        error = null;
        X509Certificate2Collection? authorities = null;
        if (parseResult.GetValue(CaFile) is { } caFile)
        {
            try
            {
                authorities = LoadCertificateAuthorities(caFile.FullName);
            }
            catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
            {
                error = $"--ca-file {caFile}: not a certificate: {ex.Message}";
                return false;
            }
        }

        X509Certificate2? certificate = null;
        if (parseResult.GetValue(TlsCertificate) is { } certificateFile)
        {
            var keyFile = parseResult.GetValue(TlsKey);
            try
            {
                certificate = X509Certificate2.CreateFromPemFile(certificateFile.FullName, keyFile?.FullName);
            }
            catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                error = (ex is CryptographicException ? ServerCertificate.EncryptedKeyError(certificateFile.FullName, keyFile?.FullName) : null)
                    ?? $"--tls-cert {certificateFile}{(keyFile is null ? string.Empty : $" --tls-key {keyFile}")}: not a PEM certificate with its private key: {ex.Message}";
                return false;
            }
        }

        var mode = parseResult.GetValue(ImplicitTls) ? SmtpTlsMode.Implicit
            : parseResult.GetValue(StartTls) ? SmtpTlsMode.StartTlsRequired
            : defaultMode;
        settings = new ConnectionSettings
        {
            Server = parseResult.GetValue(Server),
            HeloName = parseResult.GetValue(HeloName),
            ClientCertificate = certificate,
            TlsMode = mode,
            TlsName = parseResult.GetValue(TlsName),
            AcceptNameMismatch = parseResult.GetValue(AcceptNameMismatch),
            TrustedCertificateAuthorities = authorities,
            Timeout = parseResult.GetValue(Timeout),
            Trace = parseResult.GetValue(Trace),
            LogAddresses = parseResult.GetValue(LogAddresses),
        };
        return true;
    }

    /// <summary>
    /// Whether a name may follow EHLO/HELO: a domain (RFC 5321 §4.1.2: dot-separated labels of letters, digits and '-'
    /// that neither start nor end with '-'; '_' allowed, as servers allow it), an address literal (<c>[192.0.2.1]</c>,
    /// <c>[IPv6:2001:db8::1]</c>; <c>[2001:db8::1]</c> too), or a bare IP address, which MailPipe sends as its literal.
    /// A domain with U-labels (<c>bücher.example</c>) is checked in its A-label form, the form MailPipe sends.
    /// </summary>
    /// <param name="name">The name.</param>
    /// <returns>Whether it is usable.</returns>
    public static bool IsValidHeloName(string name)
    {
        if (name.Length > 0 && name[0] != '[' && !System.Text.Ascii.IsValid(name))
        {
            // A domain with U-labels: MailPipe sends it as its A-labels (EHLO comes before SMTPUTF8, RFC 6531 §3.7.1),
            // so the A-label form is what must be a domain name; a label with no such form is not one.
            try
            {
                name = HeloIdn.GetAscii(name);
            }
            catch (ArgumentException)
            {
                return false;
            }
        }

        if (name.Length is 0 or > 255)
        {
            return false;
        }

        if (name[0] == '[' && name[^1] == ']')
        {
            var literal = name[1..^1];
            return literal.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase) ? IsIPv6(literal[5..]) : IsIPv4(literal) || IsIPv6(literal);
        }

        if (IsIPv4(name) || IsIPv6(name))
        {
            return true;
        }

        foreach (var label in name.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-')
            {
                return false;
            }

            foreach (var c in label)
            {
                if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static readonly IdnMapping HeloIdn = new() { AllowUnassigned = false, UseStd3AsciiRules = false };

    /// <summary>A dotted-quad IPv4 address (RFC 5321 §4.1.3 IPv4-address-literal), nothing shorter.</summary>
    private static bool IsIPv4(string text) =>
        text.Split('.') is { Length: 4 } parts
        && Array.TrueForAll(parts, part => part.Length is > 0 and <= 3 && byte.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out _));

    private static bool IsIPv6(string text) =>
        text.Contains(':', StringComparison.Ordinal) && IPAddress.TryParse(text, out var address) && address.AddressFamily == AddressFamily.InterNetworkV6;

    private static TimeSpan? ParseTimeout(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : null;
        if (DurationArgument.TryParse(text, out var duration))
        {
            return duration;
        }

        result.AddError($"--timeout: '{text}' is not a duration: give {DurationArgument.Forms}, above 0 and at most 1 day");
        return null;
    }

    private static ServerAddress? ParseServer(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : null;
        if (ServerAddress.TryParse(text, out var address, out var problem))
        {
            return address;
        }

        result.AddError($"--server: {problem}");
        return null;
    }
}
