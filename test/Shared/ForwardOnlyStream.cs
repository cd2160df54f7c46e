namespace MailPipe.Tests.Shared;

/// <summary>
/// A read-only stream that cannot seek and has no length, as a send sees a network or pipe source: the members a
/// test's stream would otherwise each repeat. A test's stream overrides its reads only. Linked into both test projects.
/// </summary>
internal abstract class ForwardOnlyStream : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
