using System.Buffers;
using System.Text;

namespace MailPipe;

/// <summary>
/// Writes SMTP command lines (RFC 5321 §4.1) into an <see cref="IBufferWriter{T}"/>. Every argument is checked for
/// CR, LF and NUL <b>before</b> a byte is written, so a hostile address or parameter can never inject a command.
/// </summary>
internal static class SmtpCommandWriter
{
    private static ReadOnlySpan<byte> Crlf => "\r\n"u8;

    /// <summary>Throws when <paramref name="value"/> holds CR, LF or NUL (CRLF injection, RFC 5321 §4.1.1).</summary>
    /// <param name="value">The argument.</param>
    /// <param name="parameterName">The caller's parameter name, for the exception.</param>
    /// <exception cref="ArgumentException">The value holds CR, LF or NUL.</exception>
    public static void ValidateArgument(string? value, string parameterName)
    {
        if (value is not null && value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            throw new ArgumentException("An SMTP command argument must not contain CR, LF or NUL (command injection).", parameterName);
        }
    }

    /// <summary>Checks a caller's reverse-path or forward-path, with or without angle brackets: what <see cref="ValidatePath"/> checks, and the mailbox syntax.</summary>
    /// <exception cref="ArgumentException">CR, LF or NUL, angle brackets inside the address (but in a quoted local part), a path over 256 octets (RFC 5321 §4.5.3.1.3), or not a mailbox (RFC 5321 §4.1.2).</exception>
    public static void ValidateMailbox(string path, string parameterName, bool forwardPath)
    {
        ValidatePath(path, parameterName);
        if (path.Length > 0 && string.IsNullOrWhiteSpace(path))
        {
            // Trimmed to nothing it would be the null reverse-path, MAIL FROM:<> (a bounce), which nobody asked for.
            throw new ArgumentException($"A {(forwardPath ? "forward-path" : "reverse-path")} of white space only is not a mailbox; the null reverse-path is \"\" or \"<>\" (RFC 5321 §4.5.5).", parameterName);
        }

        if (SmtpAddressRules.WhyNotMailbox(StripBrackets(path), forwardPath) is { } why)
        {
            throw new ArgumentException($"'{path}' is not a {(forwardPath ? "forward-path" : "reverse-path")}: {why}.", parameterName);
        }
    }

    /// <summary>Checks a path for the wire, with or without angle brackets (the caller's mailbox syntax was checked when it was given).</summary>
    /// <exception cref="ArgumentException">CR, LF or NUL, angle brackets inside the address (but in a quoted local part), or a path over 256 octets (RFC 5321 §4.5.3.1.3).</exception>
    public static void ValidatePath(string path, string parameterName)
    {
        ValidateArgument(path, parameterName);
        var inner = StripBrackets(path);
        SmtpAddressRules.ValidatePathLength(inner, parameterName);
        if (inner[SmtpAddressRules.QuotedPrefixLength(inner)..].IndexOfAny('<', '>') >= 0)
        {
            throw new ArgumentException("A mailbox must not contain '<' or '>' inside its angle brackets but in a quoted local part (RFC 5321 §4.1.2).", parameterName);
        }
    }

    /// <summary>Writes <c>VERB</c> CRLF.</summary>
    public static void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> verb)
    {
        WriteBytes(output, verb);
        WriteBytes(output, Crlf);
    }

    /// <summary>Writes <c>VERB argument</c> CRLF; the argument is checked first (nothing is written when it holds CR, LF or NUL).</summary>
    /// <exception cref="ArgumentException"><paramref name="argument"/> holds CR, LF or NUL.</exception>
    public static void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> verb, string argument)
    {
        ValidateArgument(argument, nameof(argument));
        WriteBytes(output, verb);
        WriteBytes(output, " "u8);
        WriteText(output, argument);
        WriteBytes(output, Crlf);
    }

    /// <summary>Writes <c>prefix&lt;path&gt;[ parameters]</c> CRLF, as in <c>MAIL FROM:&lt;a@b&gt; SIZE=10</c> (RFC 5321 §4.1.1.2, §4.1.1.3); both are checked first.</summary>
    /// <exception cref="ArgumentException">The path or the parameters hold CR, LF or NUL, or the path holds angle brackets inside; nothing was written.</exception>
    public static void WritePathCommand(IBufferWriter<byte> output, ReadOnlySpan<byte> prefix, string path, string? parameters)
    {
        ValidatePath(path, nameof(path));
        ValidateArgument(parameters, nameof(parameters));
        WriteBytes(output, prefix);
        WriteBytes(output, "<"u8);
        WriteText(output, StripBrackets(path));
        WriteBytes(output, ">"u8);
        if (!string.IsNullOrWhiteSpace(parameters))
        {
            WriteBytes(output, " "u8);
            WriteText(output, parameters.Trim());
        }

        WriteBytes(output, Crlf);
    }

    /// <summary>Writes <c>BDAT size[ LAST]</c> CRLF (RFC 3030 §2) without making a string of it.</summary>
    public static void WriteBdat(IBufferWriter<byte> output, int size, bool last)
    {
        // "BDAT " + at most 10 digits + " LAST" + CRLF.
        var line = output.GetSpan(32);
        "BDAT "u8.CopyTo(line);
        var length = 5;
        size.TryFormat(line[length..], out var digits, default, System.Globalization.CultureInfo.InvariantCulture);
        length += digits;
        if (last)
        {
            " LAST"u8.CopyTo(line[length..]);
            length += 5;
        }

        Crlf.CopyTo(line[length..]);
        output.Advance(length + 2);
    }

    /// <summary>Writes a caller-supplied command line and CRLF; the line (already without its trailing CRLF, see <see cref="TrimLineEnd"/>) is checked first.</summary>
    /// <exception cref="ArgumentException"><paramref name="line"/> holds CR, LF or NUL; nothing was written.</exception>
    public static void WriteLine(IBufferWriter<byte> output, string line)
    {
        ValidateArgument(line, nameof(line));
        WriteText(output, line);
        WriteBytes(output, Crlf);
    }

    /// <summary>The text of a caller's command line without one trailing CRLF, as the seed's <c>SendCommand("XFOO\r\n")</c> took it.</summary>
    public static string TrimLineEnd(string line) => line.EndsWith("\r\n", StringComparison.Ordinal) ? line[..^2] : line;

    /// <summary>The mailbox without surrounding angle brackets.</summary>
    public static ReadOnlySpan<char> StripBrackets(string path)
    {
        var span = path.AsSpan().Trim();
        return span.Length >= 2 && span[0] == '<' && span[^1] == '>' ? span[1..^1] : span;
    }

    private static void WriteText(IBufferWriter<byte> output, ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
        {
            return;
        }

        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        var count = Encoding.UTF8.GetBytes(text, span);
        output.Advance(count);
    }

    private static void WriteBytes(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(output.GetSpan(bytes.Length));
        output.Advance(bytes.Length);
    }
}
