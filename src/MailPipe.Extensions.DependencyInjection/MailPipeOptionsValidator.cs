using Microsoft.Extensions.Options;

namespace MailPipe;

/// <summary>
/// Checks <see cref="MailPipeOptions"/> when the application starts (<c>ValidateOnStart</c>), with one message per
/// problem that names the configuration key (<c>Smtp:Port</c>), the value found and what is expected, so that a
/// deployment with a wrong setting fails at once instead of at the first message.
/// </summary>
internal sealed class MailPipeOptionsValidator : IValidateOptions<MailPipeOptions>
{
    public static readonly string TlsModeNames = string.Join(", ", Enum.GetNames<SmtpTlsMode>());

    public ValidateOptionsResult Validate(string? name, MailPipeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var at = options.Source;
        // The same section added twice (AddMailPipe called again) is read twice: each problem is reported once.
        List<string> errors = [.. options.BindingErrors.Distinct(StringComparer.Ordinal)];
        if (string.IsNullOrWhiteSpace(options.Host))
        {
            errors.Add($"{at}Host is required: the SMTP server's host name or IP address{EnvironmentHint(at, "Host")}.");
        }
        else if (options.Host.AsSpan().IndexOfAny("\r\n\0\t ") >= 0)
        {
            errors.Add($"{at}Host '{options.Host}' holds a space or a control character; give only the host name or IP address.");
        }
        else if (options.Host.Contains('/', StringComparison.Ordinal)
            || (options.Host.Contains(':', StringComparison.Ordinal) && !System.Net.IPAddress.TryParse(options.Host.Trim('[', ']'), out _)))
        {
            errors.Add($"{at}Host '{options.Host}' is not a host name or IP address: give the name alone, such as smtp.example.com, and the port in {at}Port.");
        }

        if (options.Port is < 1 or > 65535)
        {
            errors.Add($"{at}Port must be between 1 and 65535; it is {options.Port}.");
        }

        if (options.TlsMode is null)
        {
            if (!options.BindingErrors.Exists(static e => e.Contains("TlsMode", StringComparison.Ordinal)))
            {
                errors.Add($"{at}TlsMode is required, with no default: one of {TlsModeNames}{EnvironmentHint(at, "TlsMode")}.");
            }
        }
        else if (!Enum.IsDefined(options.TlsMode.Value))
        {
            errors.Add($"{at}TlsMode {(int)options.TlsMode.Value} is not a TLS mode. Use one of: {TlsModeNames}.");
        }

        if (options.EhloName is { } ehlo && ehlo.AsSpan().IndexOfAny("\r\n\0\t ") >= 0)
        {
            errors.Add($"{at}EhloName '{ehlo}' holds a space or a control character; give a fully qualified domain name or an address literal such as [192.0.2.1].");
        }
        else if (options.EhloName is { } ehloName && System.Text.Encoding.UTF8.GetByteCount(ehloName) is var octets and > 255)
        {
            errors.Add($"{at}EhloName is {octets} octets long; a domain is at most 255 (RFC 5321 §4.5.3.1.2).");
        }
        else if (options.EhloName is { Length: > 0 } helloName && HelloNameProblem(helloName) is { } problem)
        {
            // The sender's own check (a Unicode name needs an A-label form): else the start failed naming ConfigureSender.
            errors.Add($"{at}EhloName '{helloName}' {problem}");
        }

        if (options.UserName is null != options.Password is null)
        {
            errors.Add($"{at}UserName and {at}Password go together: set both for AUTH, or neither (an empty value counts as not set).");
        }

        if (options.Tls.CaFile is { Length: > 0 } caFile)
        {
            if (Directory.Exists(caFile))
            {
                errors.Add($"{at}Tls:CaFile '{caFile}' is a directory; a PEM file of trusted root certificates is expected.");
            }
            else if (!File.Exists(caFile))
            {
                errors.Add($"{at}Tls:CaFile '{caFile}' does not exist (a PEM file of trusted root certificates is expected).");
            }
            else if (CaFileProblem(caFile) is { } problem)
            {
                errors.Add($"{at}Tls:CaFile '{caFile}' {problem}");
            }
        }

        if (options.Pool.MaxConnections < 1)
        {
            errors.Add($"{at}Pool:MaxConnections must be at least 1; it is {options.Pool.MaxConnections}.");
        }

        if (options.Pool.MaxMessagesPerConnection < 0)
        {
            errors.Add($"{at}Pool:MaxMessagesPerConnection must be 0 (no limit) or more; it is {options.Pool.MaxMessagesPerConnection}.");
        }

        if (options.Pool.MaxNonMailCommandsPerConnection < 0)
        {
            errors.Add($"{at}Pool:MaxNonMailCommandsPerConnection must be 0 (no limit) or more; it is {options.Pool.MaxNonMailCommandsPerConnection}.");
        }

        Positive(errors, at + "Pool:IdleTimeout", options.Pool.IdleTimeout);
        Positive(errors, at + "Pool:MaxLifetime", options.Pool.MaxLifetime);
        Positive(errors, at + "Timeouts:Connect", options.Timeouts.Connect, SmtpSessionOptions.MaxTimeout);
        Positive(errors, at + "Timeouts:Reply", options.Timeouts.Reply, SmtpSessionOptions.MaxTimeout);

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>Reads the CA file as the sender will (<see cref="SmtpTlsOptions.AddTrustedRootCertificatesFromPemFile"/>), so that a file it cannot use fails the start, not the first message.</summary>
    private static string? CaFileProblem(string path)
    {
        var tls = new SmtpTlsOptions();
        try
        {
            tls.AddTrustedRootCertificatesFromPemFile(path);
            return null;
        }
        catch (ArgumentException)
        {
            return "holds no PEM certificate (-----BEGIN CERTIFICATE----- blocks of trusted root certificates are expected).";
        }
        catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException)
        {
            return $"is not a valid PEM certificate file: {ex.Message}";
        }
        finally
        {
            foreach (var certificate in tls.TrustedRootCertificates)
            {
                certificate.Dispose();
            }
        }
    }

    /// <summary>What the sender's check of an EHLO name (<c>SmtpHelloName.Validate</c>) finds wrong, or <see langword="null"/>.</summary>
    private static string? HelloNameProblem(string name)
    {
        try
        {
            SmtpHelloName.Validate(name);
            return null;
        }
        catch (ArgumentException ex)
        {
            return $"is not a domain for EHLO: give a domain (with an A-label form, RFC 5890, when it is not ASCII) or an address literal such as [192.0.2.1]; leave it unset for this machine's name. ({ex.Message})";
        }
    }

    /// <summary>For a configuration section, the environment variable of a key: " (environment variable Smtp__Host)".</summary>
    private static string EnvironmentHint(string source, string key) =>
        source.EndsWith(':') ? $" (environment variable {source.Replace(":", "__", StringComparison.Ordinal)}{key})" : string.Empty;

    private static void Positive(List<string> errors, string key, TimeSpan value, TimeSpan? max = null)
    {
        if (value != Timeout.InfiniteTimeSpan && value <= TimeSpan.Zero)
        {
            errors.Add($"{key} must be a positive time span such as 00:00:30; it is {value:c}.");
        }
        else if (value > max)
        {
            errors.Add($"{key} must be at most {max:c} (a timer's limit) or -00:00:00.001 for none; it is {value:c}.");
        }
    }
}
