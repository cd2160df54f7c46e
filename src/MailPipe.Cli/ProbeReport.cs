using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace MailPipe.Cli;

/// <summary>A reply to EHLO: the reply and the extensions it lists.</summary>
/// <param name="Reply">The reply.</param>
/// <param name="Domain">The server's domain (the first word of the first line), or <see langword="null"/> for a negative reply.</param>
/// <param name="Extensions">One line per extension, as the server wrote it (such as <c>SIZE 10240000</c>).</param>
internal sealed record EhloReport(ReplyInfo Reply, string? Domain, IReadOnlyList<string> Extensions)
{
    /// <summary>Reads a reply to EHLO.</summary>
    /// <param name="reply">The reply.</param>
    /// <returns>The report.</returns>
    public static EhloReport From(SmtpReply reply)
    {
        var capabilities = SmtpCapabilities.FromEhloReply(reply);
        return new EhloReport(ReplyInfo.From(reply), capabilities.Domain, [.. capabilities.Items.Select(i => i.Line)]);
    }
}

/// <summary>The server's certificate as the probe reports it.</summary>
/// <param name="Subject">The subject's distinguished name.</param>
/// <param name="Issuer">The issuer's distinguished name.</param>
/// <param name="NotBefore">The start of validity, UTC.</param>
/// <param name="NotAfter">The end of validity, UTC.</param>
/// <param name="SerialNumber">The serial number, hexadecimal.</param>
/// <param name="Sha256Fingerprint">The SHA-256 hash of the DER certificate, hexadecimal.</param>
/// <param name="Names">The DNS names and IP addresses of the subject alternative name extension.</param>
internal sealed record CertificateReport(string Subject, string Issuer, DateTime NotBefore, DateTime NotAfter, string SerialNumber, string Sha256Fingerprint, IReadOnlyList<string> Names)
{
    /// <summary>Reads a certificate.</summary>
    /// <param name="certificate">The certificate.</param>
    /// <returns>The report.</returns>
    public static CertificateReport From(X509Certificate2 certificate)
    {
        var names = new List<string>();
        foreach (var extension in certificate.Extensions)
        {
            if (extension is X509SubjectAlternativeNameExtension alternativeNames)
            {
                names.AddRange(alternativeNames.EnumerateDnsNames());
                names.AddRange(alternativeNames.EnumerateIPAddresses().Select(a => a.ToString()));
            }
        }

        return new CertificateReport(
            certificate.Subject,
            certificate.Issuer,
            certificate.NotBefore.ToUniversalTime(),
            certificate.NotAfter.ToUniversalTime(),
            certificate.SerialNumber,
            certificate.GetCertHashString(HashAlgorithmName.SHA256),
            names);
    }
}

/// <summary>What the probe learnt of TLS: the negotiated parameters and the certificate, also when the handshake failed.</summary>
/// <param name="Established">Whether TLS is active.</param>
/// <param name="Protocol">The TLS version, such as <c>TLSv1.3</c>, when established.</param>
/// <param name="CipherSuite">The IANA cipher suite name, when established.</param>
/// <param name="Certificate">The server's certificate, when one was presented.</param>
/// <param name="NameMatched">Whether the certificate names the server (<see langword="null"/> without a certificate).</param>
/// <param name="Trusted">Whether the certificate chains to a trusted root, the system's or <c>--ca-file</c>'s (<see langword="null"/> without a certificate).</param>
/// <param name="Errors">The certificate's faults (<see cref="SslPolicyErrors"/>), <c>None</c> for a valid one.</param>
internal sealed record TlsReport(bool Established, string? Protocol, string? CipherSuite, CertificateReport? Certificate, bool? NameMatched, bool? Trusted, string Errors)
{
    /// <summary>Reads the session's TLS state and the recorded certificate.</summary>
    /// <param name="session">The session after a handshake (or a failed one).</param>
    /// <param name="recorder">The certificate the handshake saw.</param>
    /// <returns>The report, or <see langword="null"/> when no handshake took place.</returns>
    public static TlsReport? From(AsyncSmtpSession session, ProbeCommand.CertificateRecorder recorder)
    {
        if (!session.IsEncrypted && !recorder.Seen)
        {
            return null;
        }

        var certificate = recorder.Certificate ?? session.RemoteCertificate;
        var errors = recorder.Seen ? recorder.Errors : session.RemoteCertificateErrors;
        return new TlsReport(
            session.IsEncrypted,
            session.IsEncrypted ? ConnectionSettings.ProtocolName(session.SslProtocol) : null,
            session.NegotiatedCipherSuite?.ToString(),
            certificate is null ? null : CertificateReport.From(certificate),
            certificate is null ? null : (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0,
            certificate is null ? null : (errors & SslPolicyErrors.RemoteCertificateChainErrors) == 0,
            errors.ToString());
    }
}

/// <summary>Everything <c>mailpipe probe</c> found out.</summary>
internal sealed class ProbeReport
{
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The server probed.</summary>
    public required ServerAddress Server { get; init; }

    /// <summary>The TLS mode: <c>implicit</c>, <c>starttls</c> (required) or <c>starttls-when-offered</c>.</summary>
    public required string TlsMode { get; init; }

    /// <summary>The name the certificate was checked against.</summary>
    public required string TargetHost { get; init; }

    /// <summary>The greeting, once read.</summary>
    public ReplyInfo? Greeting { get; set; }

    /// <summary>The first reply to EHLO (over TLS with implicit TLS, before STARTTLS otherwise).</summary>
    public EhloReport? Ehlo { get; set; }

    /// <summary>The reply to HELO, when EHLO was not understood.</summary>
    public ReplyInfo? Helo { get; set; }

    /// <summary>Whether the first EHLO reply offered STARTTLS; <see langword="null"/> when not looked at (implicit TLS, no EHLO).</summary>
    public bool? StartTlsOffered { get; set; }

    /// <summary>The reply to STARTTLS, when sent.</summary>
    public ReplyInfo? StartTls { get; set; }

    /// <summary>The TLS parameters and the certificate, when a handshake took place.</summary>
    public TlsReport? Tls { get; set; }

    /// <summary>The reply to EHLO after STARTTLS.</summary>
    public EhloReport? EhloAfterStartTls { get; set; }

    /// <summary>The exit code (see <see cref="ExitCodes"/>).</summary>
    public int ExitCode { get; set; }

    /// <summary>Why the probe failed, or <see langword="null"/>.</summary>
    public string? Error { get; set; }

    /// <summary>Records a failure.</summary>
    /// <param name="exitCode">The exit code.</param>
    /// <param name="error">Why.</param>
    public void Fail(int exitCode, string error)
    {
        ExitCode = exitCode;
        Error = error;
    }

    /// <summary>The report as one line of JSON (no line break).</summary>
    /// <returns>An object: server, tlsMode, targetHost, greeting, ehlo, helo, startTlsOffered, startTls, tls, ehloAfterStartTls, exitCode, error.</returns>
    public string ToJson()
    {
        return JsonLine.Object(JsonOptions, json =>
        {
            json.WriteString("type", "probe");
            json.WriteString("server", Server.ToString());
            json.WriteString("tlsMode", TlsMode);
            json.WriteString("targetHost", TargetHost);
            WriteReply(json, "greeting", Greeting);
            WriteEhlo(json, "ehlo", Ehlo);
            WriteReply(json, "helo", Helo);
            if (StartTlsOffered is { } offered)
            {
                json.WriteBoolean("startTlsOffered", offered);
            }
            else
            {
                json.WriteNull("startTlsOffered");
            }

            WriteReply(json, "startTls", StartTls);
            WriteTls(json, Tls);
            WriteEhlo(json, "ehloAfterStartTls", EhloAfterStartTls);
            json.WriteNumber("exitCode", ExitCode);
            json.WriteString("error", Error);
        });
    }

    /// <summary>The report as readable lines, each ending with a line break.</summary>
    /// <returns>The text.</returns>
    public string ToText()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"server: {Server} (TLS: {TlsMode})\n");
        if (TlsMode == "implicit")
        {
            AppendTls(text);
        }

        if (Greeting is { } greeting)
        {
            text.Append(CultureInfo.InvariantCulture, $"greeting: {greeting}\n");
        }

        AppendEhlo(text, "EHLO", Ehlo);
        if (Helo is { } helo)
        {
            text.Append(CultureInfo.InvariantCulture, $"HELO: {helo}\n");
        }

        if (StartTlsOffered == false)
        {
            text.Append("STARTTLS: not offered\n");
        }

        if (StartTls is { } startTls)
        {
            text.Append(CultureInfo.InvariantCulture, $"STARTTLS: {startTls}\n");
        }

        if (TlsMode != "implicit")
        {
            AppendTls(text);
        }

        AppendEhlo(text, "EHLO after STARTTLS", EhloAfterStartTls);
        if (Error is { } error)
        {
            text.Append(CultureInfo.InvariantCulture, $"error: {error}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"exit {ExitCode}\n");
        return text.ToString();
    }

    private static void AppendEhlo(StringBuilder text, string label, EhloReport? ehlo)
    {
        if (ehlo is null)
        {
            return;
        }

        text.Append(CultureInfo.InvariantCulture, $"{label}: {ehlo.Reply.Code} {ehlo.Domain ?? ehlo.Reply.Text}\n");
        foreach (var extension in ehlo.Extensions)
        {
            text.Append(CultureInfo.InvariantCulture, $"  {extension}\n");
        }
    }

    private void AppendTls(StringBuilder text)
    {
        if (Tls is not { } tls)
        {
            return;
        }

        text.Append(tls.Established ? string.Create(CultureInfo.InvariantCulture, $"TLS: {tls.Protocol} {tls.CipherSuite}\n") : "TLS: handshake failed\n");
        if (tls.Certificate is not { } certificate)
        {
            text.Append("certificate: none\n");
            return;
        }

        text.Append("certificate:\n");
        text.Append(CultureInfo.InvariantCulture, $"  subject: {certificate.Subject}\n");
        text.Append(CultureInfo.InvariantCulture, $"  issuer: {certificate.Issuer}\n");
        text.Append(CultureInfo.InvariantCulture, $"  valid: {certificate.NotBefore:yyyy-MM-dd'T'HH:mm:ss'Z'} to {certificate.NotAfter:yyyy-MM-dd'T'HH:mm:ss'Z'}\n");
        if (certificate.Names.Count > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"  names: {string.Join(", ", certificate.Names)}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"  sha256: {certificate.Sha256Fingerprint}\n");
        var name = tls.NameMatched == true ? "matched" : tls.Established ? "NOT matched (accepted by --accept-name-mismatch)" : "NOT matched";
        text.Append(CultureInfo.InvariantCulture, $"  name {TargetHost}: {name}\n");
        text.Append(tls.Trusted == true ? "  trusted: yes\n" : string.Create(CultureInfo.InvariantCulture, $"  trusted: NO ({tls.Errors})\n"));
    }

    private static void WriteReply(Utf8JsonWriter json, string name, ReplyInfo? reply)
    {
        if (reply is null)
        {
            json.WriteNull(name);
            return;
        }

        json.WriteStartObject(name);
        json.WriteNumber("code", reply.Code);
        json.WriteString("enhancedStatus", reply.EnhancedStatus);
        json.WriteString("text", reply.Text);
        json.WriteEndObject();
    }

    private static void WriteEhlo(Utf8JsonWriter json, string name, EhloReport? ehlo)
    {
        if (ehlo is null)
        {
            json.WriteNull(name);
            return;
        }

        json.WriteStartObject(name);
        WriteReply(json, "reply", ehlo.Reply);
        json.WriteString("domain", ehlo.Domain);
        json.WriteStartArray("extensions");
        foreach (var extension in ehlo.Extensions)
        {
            json.WriteStringValue(extension);
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteTls(Utf8JsonWriter json, TlsReport? tls)
    {
        if (tls is null)
        {
            json.WriteNull("tls");
            return;
        }

        json.WriteStartObject("tls");
        json.WriteBoolean("established", tls.Established);
        json.WriteString("protocol", tls.Protocol);
        json.WriteString("cipherSuite", tls.CipherSuite);
        if (tls.Certificate is { } certificate)
        {
            json.WriteStartObject("certificate");
            json.WriteString("subject", certificate.Subject);
            json.WriteString("issuer", certificate.Issuer);
            json.WriteString("notBefore", certificate.NotBefore.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            json.WriteString("notAfter", certificate.NotAfter.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            json.WriteString("serialNumber", certificate.SerialNumber);
            json.WriteString("sha256", certificate.Sha256Fingerprint);
            json.WriteStartArray("names");
            foreach (var name in certificate.Names)
            {
                json.WriteStringValue(name);
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("certificate");
        }

        WriteNullableBoolean(json, "nameMatched", tls.NameMatched);
        WriteNullableBoolean(json, "trusted", tls.Trusted);
        json.WriteString("errors", tls.Errors);
        json.WriteEndObject();
    }

    private static void WriteNullableBoolean(Utf8JsonWriter json, string name, bool? value)
    {
        if (value is { } flag)
        {
            json.WriteBoolean(name, flag);
        }
        else
        {
            json.WriteNull(name);
        }
    }
}
