using System.Globalization;

namespace MailPipe;

/// <summary>
/// A complete SMTP reply: a three-digit reply code and one or more lines of text (RFC 5321 §4.2).
/// </summary>
/// <remarks>
/// A negative reply (4yz, 5yz) is data, not a failure: every command method of <see cref="AsyncSmtpSession"/> returns
/// it. Exceptions are kept for transport failures, protocol violations, timeouts and cancellation.
/// </remarks>
public sealed class SmtpReply
{
    private readonly string[] _lines;

    /// <summary>Creates a reply. Used by the parser; public so that tests and custom transports can make replies.</summary>
    /// <param name="code">The reply code, 200 to 599 (RFC 5321 §4.2: first digit 2 to 5).</param>
    /// <param name="lines">The text of each line after the code and its separator, first line first; at least one (may be empty text).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="code"/> is not between 200 and 599.</exception>
    /// <exception cref="ArgumentException"><paramref name="lines"/> is empty.</exception>
    public SmtpReply(int code, IEnumerable<string> lines)
        : this(code, ToArray(lines), ownsLines: true)
    {
    }

    private SmtpReply(int code, string[] lines, bool ownsLines)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(code, 200);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(code, 599);
        _ = ownsLines;
        _lines = lines;
        Code = code;
        var first = _lines[0];
        var length = MailPipe.EnhancedStatusCode.TryParsePrefix(first, out var enhanced);
        if (length > 0 && enhanced!.Value.Class == code / 100)
        {
            EnhancedStatusCode = enhanced;
            Text = first[length..].TrimStart(' ');
        }
        else
        {
            Text = first;
        }
    }

    /// <summary>Creates a one-line reply.</summary>
    /// <param name="code">The reply code, 200 to 599.</param>
    /// <param name="text">The text after the code.</param>
    public SmtpReply(int code, string text)
        : this(code, [text ?? string.Empty])
    {
    }

    /// <summary>Creates a reply that takes ownership of <paramref name="lines"/> (the parser's path: no copy).</summary>
    internal static SmtpReply FromParsedLines(int code, string[] lines) => new(code, lines, ownsLines: true);

    private static string[] ToArray(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        string[] array = [.. lines];
        if (array.Length == 0)
        {
            throw new ArgumentException("A reply has at least one line.", nameof(lines));
        }

        foreach (var line in array)
        {
            ArgumentNullException.ThrowIfNull(line, nameof(lines));
        }

        return array;
    }

    /// <summary>The three-digit reply code, 200 to 599 (RFC 5321 §4.2.1). The seed's <c>ReplyCode()</c>.</summary>
    public int Code { get; }

    /// <summary>
    /// The enhanced status code of the first line (RFC 3463), or <see langword="null"/> when the first line has none
    /// that is well formed and whose class equals the first digit of <see cref="Code"/>. The seed's <c>EnhancedStatusCode()</c>.
    /// </summary>
    public EnhancedStatusCode? EnhancedStatusCode { get; }

    /// <summary>
    /// The text of the first line, without the reply code and without a parsed enhanced status code
    /// (<c>"550 5.1.1 No such user"</c> gives <c>"No such user"</c>). The seed's <c>ReplyText()</c>.
    /// </summary>
    public string Text { get; }

    /// <summary>The text of every line after the code and separator, exactly as received (enhanced status codes included).</summary>
    public IReadOnlyList<string> Lines => _lines;

    /// <summary>2yz: positive completion (RFC 5321 §4.2.1).</summary>
    public bool IsPositiveCompletion => Code / 100 == 2;

    /// <summary>3yz: positive intermediate, such as 354 to DATA or 334 to AUTH (RFC 5321 §4.2.1).</summary>
    public bool IsPositiveIntermediate => Code / 100 == 3;

    /// <summary>4yz: transient negative completion; the same command may succeed later (RFC 5321 §4.2.1).</summary>
    public bool IsTransientNegative => Code / 100 == 4;

    /// <summary>5yz: permanent negative completion; repeating the command as is will fail again (RFC 5321 §4.2.1).</summary>
    public bool IsPermanentNegative => Code / 100 == 5;

    /// <summary>2yz or 3yz.</summary>
    public bool IsPositive => Code < 400;

    /// <summary>4yz or 5yz.</summary>
    public bool IsNegative => Code >= 400;

    /// <summary>421: the service is closing the transmission channel (RFC 5321 §3.8); the session cannot be used further.</summary>
    public bool IsServiceClosing => Code == 421;

    /// <summary>The reply as the server sent it, one line per reply line joined by <c>\n</c>, without the final line break.</summary>
    /// <returns>The reply text with codes.</returns>
    public override string ToString()
    {
        var code = Code.ToString(CultureInfo.InvariantCulture);
        if (_lines.Length == 1)
        {
            return _lines[0].Length == 0 ? code : $"{code} {_lines[0]}";
        }

        var builder = new System.Text.StringBuilder();
        for (var i = 0; i < _lines.Length; i++)
        {
            builder.Append(code);
            if (i < _lines.Length - 1)
            {
                builder.Append('-');
            }
            else if (_lines[i].Length > 0)
            {
                builder.Append(' ');
            }

            builder.Append(_lines[i]);
            if (i < _lines.Length - 1)
            {
                builder.Append('\n');
            }
        }

        return builder.ToString();
    }
}
