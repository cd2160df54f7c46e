using System.Buffers;
using System.Text;

namespace MailPipe.Tests.Support;

/// <summary>Builds multi-segment <see cref="ReadOnlySequence{T}"/> values, so that parsers meet every possible segment boundary.</summary>
internal static class ReadOnlySequenceFactory
{
    /// <summary>One segment per array, in order (empty arrays make empty segments).</summary>
    public static ReadOnlySequence<byte> Create(params byte[][] segments)
    {
        ArgumentNullException.ThrowIfNull(segments);
        if (segments.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        if (segments.Length == 1)
        {
            return new ReadOnlySequence<byte>(segments[0]);
        }

        var first = new Segment(segments[0], 0);
        var last = first;
        for (var i = 1; i < segments.Length; i++)
        {
            last = last.Append(segments[i]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Two segments: the bytes before <paramref name="splitAt"/> and the rest.</summary>
    public static ReadOnlySequence<byte> SplitAt(byte[] bytes, int splitAt) => Create(bytes[..splitAt], bytes[splitAt..]);

    /// <summary>One segment per byte.</summary>
    public static ReadOnlySequence<byte> OneBytePerSegment(byte[] bytes) => Create([.. bytes.Select(b => new[] { b })]);

    /// <summary>Segments of the given sizes (the last one takes whatever remains).</summary>
    public static ReadOnlySequence<byte> Chunked(byte[] bytes, IEnumerable<int> sizes)
    {
        var segments = new List<byte[]>();
        var offset = 0;
        foreach (var size in sizes)
        {
            var length = Math.Min(size, bytes.Length - offset);
            segments.Add(bytes[offset..(offset + length)]);
            offset += length;
        }

        segments.Add(bytes[offset..]);
        return Create([.. segments]);
    }

    /// <summary>The text as UTF-8, one segment per byte.</summary>
    public static ReadOnlySequence<byte> OneBytePerSegment(string text) => OneBytePerSegment(Encoding.UTF8.GetBytes(text));

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
