using System.Text;

namespace MailPipe.Benchmarks;

/// <summary>The inputs of the data-writer benchmarks.</summary>
public enum DataInput
{
    /// <summary>1 MiB of CRLF text, about 15 % of the lines starting with '.'.</summary>
    TypicalCrlf,

    /// <summary>The same kind of text with bare LF line ends (every line end rewritten).</summary>
    LfOnly,

    /// <summary>1 MiB where every line starts with '.' (every line stuffed).</summary>
    AllDots,

    /// <summary>64 MiB of typical CRLF text: larger than any cache.</summary>
    Typical64MiB,
}

/// <summary>Deterministic, realistic text: words, lines of 20 to 76 characters.</summary>
internal static class TextCorpus
{
    public const int SmallSize = 1024 * 1024;
    public const int LargeSize = 64 * 1024 * 1024;

    private static readonly string[] Words =
    [
        "the", "message", "server", "delivery", "of", "and", "to", "a", "queue", "pipeline", "reply", "status",
        "recipient", "sender", "header", "body", "line", "with", "for", "is", "on", "that", "mail", "transfer",
        "protocol", "client", "connection", "data", "octets", "extension", "envelope", "report", "2026-11-29",
        "example.test", "Content-Type:", "text/plain;", "charset=utf-8", "Subject:", "Re:", "meeting", "notes",
    ];

    public static int SizeOf(DataInput input) => input == DataInput.Typical64MiB ? LargeSize : SmallSize;

    /// <summary>Exactly <see cref="SizeOf"/> bytes of the kind asked for.</summary>
    public static byte[] Create(DataInput input) => input switch
    {
        DataInput.TypicalCrlf => Text(SmallSize, dotShare: 0.15, "\r\n"),
        DataInput.LfOnly => Text(SmallSize, dotShare: 0.15, "\n"),
        DataInput.AllDots => Text(SmallSize, dotShare: 1.0, "\r\n"),
        DataInput.Typical64MiB => Text(LargeSize, dotShare: 0.15, "\r\n"),
        _ => throw new ArgumentOutOfRangeException(nameof(input)),
    };

    /// <summary>Lines of words; <paramref name="dotShare"/> of them start with '.'; exactly <paramref name="size"/> bytes, ending with a line end.</summary>
    public static byte[] Text(int size, double dotShare, string newLine)
    {
        var random = new Random(20261129);
        var result = new byte[size];
        var position = 0;
        var line = new StringBuilder(80);
        while (position < size)
        {
            line.Clear();
            if (random.NextDouble() < dotShare)
            {
                line.Append('.');
            }

            var target = random.Next(20, 77);
            while (line.Length < target)
            {
                if (line.Length > 1)
                {
                    line.Append(' ');
                }

                line.Append(Words[random.Next(Words.Length)]);
            }

            line.Append(newLine);
            var bytes = Encoding.ASCII.GetBytes(line.ToString());
            var count = Math.Min(bytes.Length, size - position);
            bytes.AsSpan(0, count).CopyTo(result.AsSpan(position));
            position += count;
        }

        // The last line may have been cut: make the input end with a line end.
        newLine.Select(c => (byte)c).ToArray().CopyTo(result, size - newLine.Length);
        return result;
    }
}
