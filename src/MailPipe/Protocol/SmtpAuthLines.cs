using System.Buffers;
using System.Buffers.Text;

namespace MailPipe.Protocol;

/// <summary>
/// The lines of an AUTH exchange (RFC 4954 §4) as they go on the wire and into the transcript: <c>AUTH mechanism
/// [initial-response]</c>, the base64 continuation lines or <c>*</c>, and the base64 text of a 334 challenge. The
/// transcript form never shows a secret: <c>AUTH PLAIN &lt;redacted&gt;</c>, <c>&lt;redacted&gt;</c>, <c>*</c>.
/// </summary>
internal static class SmtpAuthLines
{
    /// <summary>RFC 4954 §4: the AUTH command line, initial response included, may be at most 12,288 octets.</summary>
    public const int MaxCommandLength = 12288;

    /// <summary>The command name the AUTH line and every continuation line are expected to be answered as.</summary>
    public const string Command = "AUTH";

    /// <summary>The white space servers take between a command's words (RFC 5321 asks for SP; Postfix also takes a tab).</summary>
    private static readonly char[] CommandSeparators = [' ', '\t'];

    /// <summary>What the transcript shows for a secret (an initial response, a continuation line, a 334 challenge).</summary>
    public const string Redacted = "<redacted>";

    /// <summary>Whether an initial response of <paramref name="length"/> raw bytes fits on the AUTH line; a longer one waits for an empty 334.</summary>
    /// <param name="mechanism">The mechanism name.</param>
    /// <param name="length">The raw (not yet base64) length in bytes.</param>
    /// <returns>Whether <c>AUTH mechanism base64</c> and its CRLF stay within <see cref="MaxCommandLength"/> (the line counted with its CRLF, as RFC 5321 §4.5.3.1.4 counts a command line).</returns>
    public static bool FitsOnCommandLine(string mechanism, int length) =>
        "AUTH ".Length + mechanism.Length + 1 + Base64.GetMaxEncodedToUtf8Length(length) + 2 <= MaxCommandLength;

    /// <summary>Writes <c>AUTH mechanism [base64 | =]</c> and CRLF: no initial response, an empty one as <c>=</c>, else its base64.</summary>
    /// <param name="output">Where the line goes.</param>
    /// <param name="mechanism">A checked mechanism name (RFC 4422 §3.1: A-Z 0-9 - _).</param>
    /// <param name="initialResponse">The raw initial response, or <see langword="null"/> for none.</param>
    /// <returns>The line as the transcript shows it: <c>AUTH mechanism</c> or <c>AUTH mechanism &lt;redacted&gt;</c>.</returns>
    public static string WriteCommand(IBufferWriter<byte> output, string mechanism, ReadOnlyMemory<byte>? initialResponse)
    {
        Write(output, "AUTH "u8);
        var span = output.GetSpan(mechanism.Length);
        for (var i = 0; i < mechanism.Length; i++)
        {
            span[i] = (byte)mechanism[i];
        }

        output.Advance(mechanism.Length);
        if (initialResponse is not { } response)
        {
            Write(output, "\r\n"u8);
            return Command + " " + mechanism;
        }

        if (response.IsEmpty)
        {
            Write(output, " =\r\n"u8);
        }
        else
        {
            Write(output, " "u8);
            WriteBase64Line(output, response.Span);
        }

        return $"{Command} {mechanism} {Redacted}";
    }

    /// <summary>Writes one continuation line: the base64 of <paramref name="response"/> (empty for an empty answer), or <c>*</c> to cancel (RFC 4954 §4).</summary>
    /// <param name="output">Where the line goes.</param>
    /// <param name="response">The raw answer, or <see langword="null"/> to cancel the exchange.</param>
    /// <returns>The line as the transcript shows it: <c>*</c> or <c>&lt;redacted&gt;</c>.</returns>
    public static string WriteResponse(IBufferWriter<byte> output, ReadOnlyMemory<byte>? response)
    {
        if (response is not { } answer)
        {
            Write(output, "*\r\n"u8);
            return "*";
        }

        WriteBase64Line(output, answer.Span);
        return Redacted;
    }

    /// <summary>The challenge of a 334 reply, base64-decoded (RFC 4954 §4); empty for <c>334</c>, <c>334 </c> or <c>334 =</c>.</summary>
    /// <param name="reply">A 334 reply.</param>
    /// <param name="challenge">The decoded bytes.</param>
    /// <returns><see langword="false"/> when the text is not base64.</returns>
    public static bool TryDecodeChallenge(SmtpReply reply, out ReadOnlyMemory<byte> challenge)
    {
        var text = reply.Lines[0].AsSpan().Trim();
        challenge = ReadOnlyMemory<byte>.Empty;
        if (text.IsEmpty || text is "=")
        {
            return true;
        }

        var bytes = new byte[Base64.GetMaxDecodedFromUtf8Length(text.Length)];
        if (!Convert.TryFromBase64Chars(text, bytes, out var length))
        {
            return false;
        }

        challenge = bytes.AsMemory(0, length);
        return true;
    }

    /// <summary>
    /// The transcript form of a raw command line sent by the caller (<c>SendCommandAsync</c>): the initial response of
    /// <c>AUTH mechanism initial-response</c> and every continuation line inside an exchange are redacted (<c>*</c> stays).
    /// </summary>
    /// <param name="line">The line without CRLF.</param>
    /// <param name="inExchange">Whether an AUTH exchange is running (the line answers a 334).</param>
    /// <returns>The line to log, or <see langword="null"/> when it is no AUTH line (the caller decides).</returns>
    public static string? RedactRawLine(string line, bool inExchange)
    {
        if (IsAuthCommand(line))
        {
            var parts = line.Split(CommandSeparators, 3, StringSplitOptions.RemoveEmptyEntries);
            return parts.Length > 2 ? $"{parts[0]} {parts[1]} {Redacted}" : line;
        }

        return inExchange ? (line == "*" ? line : Redacted) : null;
    }

    /// <summary>Whether a raw command line starts an AUTH exchange (<c>AUTH</c>, any case, then a space or a tab; leading white space ignored, as servers such as Postfix ignore it).</summary>
    /// <param name="line">The line.</param>
    /// <returns>Whether it is an AUTH command.</returns>
    public static bool IsAuthCommand(string line)
    {
        var command = line.AsSpan().TrimStart(CommandSeparators);
        return command.Length > 4 && command.StartsWith("AUTH", StringComparison.OrdinalIgnoreCase) && command[4] is ' ' or '\t';
    }

    private static void WriteBase64Line(IBufferWriter<byte> output, ReadOnlySpan<byte> data)
    {
        var span = output.GetSpan(Base64.GetMaxEncodedToUtf8Length(data.Length) + 2);
        Base64.EncodeToUtf8(data, span, out _, out var written);
        span[written++] = (byte)'\r';
        span[written++] = (byte)'\n';
        output.Advance(written);
    }

    private static void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(output.GetSpan(bytes.Length));
        output.Advance(bytes.Length);
    }
}
