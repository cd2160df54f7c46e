namespace MailPipe.Cli;

/// <summary>A read-only stream of some bytes held in memory followed by the rest of another stream (a new header section, then a file's body).</summary>
internal sealed class PrefixedStream : ReadOnlyStream
{
    private readonly byte[] _prefix;
    private readonly Stream _rest;
    private int _prefixPosition;

    /// <summary>Creates the stream; it owns <paramref name="rest"/> and disposes it.</summary>
    /// <param name="prefix">The first bytes.</param>
    /// <param name="rest">The stream read after them, from its current position.</param>
    public PrefixedStream(byte[] prefix, Stream rest)
    {
        _prefix = prefix;
        _rest = rest;
    }

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        var fromPrefix = CopyPrefix(buffer);
        return fromPrefix > 0 ? fromPrefix : _rest.Read(buffer);
    }

    /// <inheritdoc/>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var fromPrefix = CopyPrefix(buffer.Span);
        return fromPrefix > 0 ? ValueTask.FromResult(fromPrefix) : _rest.ReadAsync(buffer, cancellationToken);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _rest.Dispose();
        }

        base.Dispose(disposing);
    }

    private int CopyPrefix(Span<byte> buffer)
    {
        var count = Math.Min(buffer.Length, _prefix.Length - _prefixPosition);
        if (count <= 0)
        {
            return 0;
        }

        _prefix.AsSpan(_prefixPosition, count).CopyTo(buffer);
        _prefixPosition += count;
        return count;
    }
}
