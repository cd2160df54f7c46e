using System.Globalization;

namespace MailPipe.Cli;

/// <summary>A duration option value: a number of seconds (<c>30</c>, <c>2.5</c>) or a number with a unit: <c>500ms</c>, <c>30s</c>, <c>3m</c>, <c>1h</c>.</summary>
internal static class DurationArgument
{
    /// <summary>The longest duration accepted: one day.</summary>
    public static readonly TimeSpan Max = TimeSpan.FromDays(1);

    /// <summary>How the values are written, for help and errors.</summary>
    public const string Forms = "seconds (30, 2.5) or a number with ms, s, m or h (500ms, 30s, 3m)";

    /// <summary>Parses a value.</summary>
    /// <param name="text">The value.</param>
    /// <param name="duration">The duration, above zero and at most <see cref="Max"/>.</param>
    /// <returns>Whether the value is such a duration.</returns>
    public static bool TryParse(string? text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var value = text.Trim();
        var (number, unit) = value.EndsWith("ms", StringComparison.OrdinalIgnoreCase) ? (value[..^2], 0.001)
            : value.EndsWith('s') || value.EndsWith('S') ? (value[..^1], 1.0)
            : value.EndsWith('m') || value.EndsWith('M') ? (value[..^1], 60.0)
            : value.EndsWith('h') || value.EndsWith('H') ? (value[..^1], 3600.0)
            : (value, 1.0);
        if (number.Length == 0 || !char.IsAsciiDigit(number[0]) && number[0] != '.'
            || !double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
        {
            return false;
        }

        var seconds = amount * unit;
        if (!(seconds > 0) || seconds > Max.TotalSeconds)
        {
            return false;
        }

        duration = TimeSpan.FromSeconds(seconds);
        return duration > TimeSpan.Zero;
    }
}
