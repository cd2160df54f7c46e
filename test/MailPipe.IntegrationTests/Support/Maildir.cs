namespace MailPipe.IntegrationTests.Support;

/// <summary>Reads what the real servers stored, stripping the trace headers they prepend.</summary>
public static class Maildir
{
    private static readonly string[] EnvelopeHeaders = ["return-path:", "delivered-to:", "envelope-to:", "delivery-date:"];

    /// <summary>Waits (polling, up to <paramref name="timeout"/>) for <paramref name="count"/> files in Postfix's Maildir of <paramref name="recipient"/>.</summary>
    public static async Task<IReadOnlyList<byte[]>> WaitForPostfixAsync(string recipient, int count = 1, TimeSpan? timeout = null)
    {
        var directory = Path.Combine(TestServers.PostfixMaildir, recipient, "new");
        return await WaitForFilesAsync(directory, "*", count, timeout ?? TimeSpan.FromSeconds(60), _ => true);
    }

    /// <summary>Waits for Exim's copy for <paramref name="recipient"/> (Exim stores all mail in one Maildir; the Envelope-to header tells them apart).</summary>
    public static async Task<byte[]> WaitForEximAsync(string recipient, TimeSpan? timeout = null)
    {
        var directory = Path.Combine(TestServers.EximMaildir, "new");
        var needle = System.Text.Encoding.UTF8.GetBytes("Envelope-to: " + recipient + "\r\n");
        var files = await WaitForFilesAsync(directory, "*", 1, timeout ?? TimeSpan.FromSeconds(60), bytes => bytes.AsSpan().IndexOf(needle) >= 0);
        return files[0];
    }

    /// <summary>
    /// The message as the client sent it (after dot-unstuffing): the stored file without the leading envelope headers and
    /// exactly one Received: header with its continuation lines.
    /// </summary>
    public static byte[] StripTraceHeaders(byte[] stored)
    {
        var position = 0;
        while (position < stored.Length && StartsWithAny(stored, position, EnvelopeHeaders))
        {
            position = NextLine(stored, position);
        }

        if (StartsWithAny(stored, position, ["received:"]))
        {
            position = NextLine(stored, position);
            while (position < stored.Length && (stored[position] == (byte)' ' || stored[position] == (byte)'\t'))
            {
                position = NextLine(stored, position);
            }
        }

        return stored[position..];
    }

    private static async Task<IReadOnlyList<byte[]>> WaitForFilesAsync(string directory, string pattern, int count, TimeSpan timeout, Func<byte[], bool> match)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (Directory.Exists(directory))
            {
                var found = new List<byte[]>();
                foreach (var file in Directory.GetFiles(directory, pattern).Order(StringComparer.Ordinal))
                {
                    var bytes = await File.ReadAllBytesAsync(file);
                    if (match(bytes))
                    {
                        found.Add(bytes);
                    }
                }

                if (found.Count >= count)
                {
                    return found;
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Expected {count} message(s) in {directory} within {timeout.TotalSeconds} s.");
            }

            await Task.Delay(50);
        }
    }

    private static int NextLine(byte[] data, int position)
    {
        var lf = Array.IndexOf(data, (byte)'\n', position);
        return lf < 0 ? data.Length : lf + 1;
    }

    private static bool StartsWithAny(byte[] data, int position, string[] prefixes)
    {
        foreach (var prefix in prefixes)
        {
            if (data.Length - position >= prefix.Length
                && System.Text.Encoding.ASCII.GetString(data, position, prefix.Length).Equals(prefix, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Reads what aiosmtpd stored: &lt;stem&gt;.eml (exact bytes after dot-unstuffing) and &lt;stem&gt;.json (envelope), the .json written last.</summary>
public static class AiosmtpdStore
{
    public static async Task<byte[]> WaitForAsync(string recipient, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        var directory = TestServers.AiosmtpdMessages;
        while (true)
        {
            if (Directory.Exists(directory))
            {
                foreach (var json in Directory.GetFiles(directory, "*.json"))
                {
                    var text = await File.ReadAllTextAsync(json);
                    if (text.Contains($"\"{recipient}\"", StringComparison.Ordinal))
                    {
                        return await File.ReadAllBytesAsync(Path.ChangeExtension(json, ".eml"));
                    }
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"No message for {recipient} in {directory}.");
            }

            await Task.Delay(50);
        }
    }
}
