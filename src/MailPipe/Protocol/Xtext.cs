using System.Text;

namespace MailPipe;

/// <summary>xtext encoding of DSN parameter values (RFC 3461 §4): printable ASCII except <c>+</c> and <c>=</c> as is, every other byte as <c>+XX</c>.</summary>
internal static class Xtext
{
    public static string Encode(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        var builder = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            if (b is >= 33 and <= 126 && b != (byte)'+' && b != (byte)'=')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('+').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }
}
