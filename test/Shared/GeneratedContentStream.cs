using System.Text;

namespace MailPipe.Tests.Shared;

/// <summary>
/// Message content a send can read only once (no seeking, no length): <c>head</c>, then lines of 78 times
/// <c>filler</c> and CRLF up to <c>total</c> octets, then (when <c>failAtEnd</c>) an <see cref="IOException"/> instead
/// of its end, as a source that breaks midway. Large content without holding it in memory. Linked into both test projects.
/// </summary>
internal sealed class GeneratedContentStream(byte[] head, long total, bool failAtEnd = false, char filler = 'x') : ForwardOnlyStream
{
    private readonly byte[] _line = Encoding.ASCII.GetBytes(new string(filler, 78) + "\r\n");
    private long _position;

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = 0;
        var end = Math.Max(total, head.Length);
        while (n < count && _position < end)
        {
            buffer[offset + n++] = _position < head.Length ? head[_position] : _line[(_position - head.Length) % _line.Length];
            _position++;
        }

        if (n == 0 && failAtEnd)
        {
            throw new IOException("The source failed midway.");
        }

        return n;
    }
}
