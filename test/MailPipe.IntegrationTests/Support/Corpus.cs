using System.Reflection;

namespace MailPipe.IntegrationTests.Support;

/// <summary>The .eml corpus under test/corpus.</summary>
public static class Corpus
{
    public static string Directory
    {
        get
        {
            var root = typeof(Corpus).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .First(a => a.Key == "RepositoryRoot").Value!;
            return Path.GetFullPath(Path.Combine(root, "test", "corpus"));
        }
    }

    public static IEnumerable<string> Files => System.IO.Directory.GetFiles(Directory, "*.eml").Order(StringComparer.Ordinal);

    /// <summary>The file names, for [MemberData].</summary>
    public static TheoryData<string> Names
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var file in Files)
            {
                data.Add(Path.GetFileName(file));
            }

            return data;
        }
    }

    public static byte[] Read(string name) => File.ReadAllBytes(Path.Combine(Directory, name));

    /// <summary>
    /// What a line-based server stores for <paramref name="message"/> once MailPipe has normalised it: every line end
    /// CRLF, a final CRLF added. (Bare CR is a line end for MailPipe, so it becomes CRLF too.)
    /// </summary>
    public static byte[] NormalizeLineEnds(byte[] message)
    {
        var output = new List<byte>(message.Length + 64);
        for (var i = 0; i < message.Length; i++)
        {
            var b = message[i];
            if (b == (byte)'\r')
            {
                output.Add((byte)'\r');
                output.Add((byte)'\n');
                if (i + 1 < message.Length && message[i + 1] == (byte)'\n')
                {
                    i++;
                }
            }
            else if (b == (byte)'\n')
            {
                output.Add((byte)'\r');
                output.Add((byte)'\n');
            }
            else
            {
                output.Add(b);
            }
        }

        if (output.Count > 0 && !(output.Count >= 2 && output[^2] == (byte)'\r' && output[^1] == (byte)'\n'))
        {
            output.Add((byte)'\r');
            output.Add((byte)'\n');
        }

        return [.. output];
    }
}
