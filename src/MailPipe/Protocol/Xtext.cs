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

    /// <summary>
    /// The utf-8-addr-xtext of RFC 6533 §3 (the <c>utf-8</c> address type of ORCPT, for an address that is not ASCII):
    /// printable ASCII but <c>+</c>, <c>=</c> and <c>\</c> as is, every other character as <c>\x{HEX}</c>, its code point in
    /// upper-case hex without leading zeros (at least two digits). It is valid utf-8-addr-unitext too (with SMTPUTF8).
    /// </summary>
    /// <param name="address">The address.</param>
    /// <returns>The encoded address.</returns>
    public static string EncodeUtf8Address(string address)
    {
        var builder = new StringBuilder(address.Length + 16);
        foreach (var rune in address.EnumerateRunes())
        {
            if (rune.Value is >= 33 and <= 126 && rune.Value != '+' && rune.Value != '=' && rune.Value != '\\')
            {
                builder.Append((char)rune.Value);
            }
            else
            {
                builder.Append("\\x{").Append(rune.Value.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)).Append('}');
            }
        }

        return builder.ToString();
    }
}
