namespace MailPipe.MimeKit.Tests.Integration;

/// <summary>A read-only memory stream that gives its bytes up to <c>failAt</c>, then fails like a broken disk (every read overload).</summary>
internal sealed class FailAfterStream(byte[] content, int failAt) : MemoryStream(content, writable: false)
{
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Position >= failAt ? throw new IOException("disk gone") : base.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Position >= failAt ? throw new IOException("disk gone") : base.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => Position >= failAt ? throw new IOException("disk gone") : base.Read(buffer, offset, count);

    public override int Read(Span<byte> buffer) => Position >= failAt ? throw new IOException("disk gone") : base.Read(buffer);
}
