using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Message content that arrives in two parts: the first read returns <c>head</c>, the second waits until
/// <see cref="Open"/> (or until its token is cancelled, when <see cref="HonoursToken"/>), then returns the rest. A send
/// reading it stays in the middle of the message's content for as long as the test wants.
/// </summary>
internal sealed class GatedContentStream(byte[] head, byte[] tail) : Stream
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _headRead = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _reads;

    /// <summary>Whether the wait for the rest ends when the read's token is cancelled (a well-behaved source); when not, only <see cref="Open"/> ends it.</summary>
    public bool HonoursToken { get; init; } = true;

    /// <summary>Completes once the first part was handed out.</summary>
    public Task HeadRead => _headRead.Task;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>A message of about <paramref name="size"/> octets with a unique Message-Id, split after <paramref name="headSize"/> octets.</summary>
    public static (SmtpMessage Message, string MessageId, GatedContentStream Stream) Create(string tag, int size = 16 * 1024, int headSize = 8 * 1024, bool honoursToken = true)
    {
        var id = $"<{tag}-{Guid.NewGuid():N}@pool.test>";
        var text = new StringBuilder($"From: sender@example.test\r\nTo: rcpt@example.test\r\nSubject: {tag}\r\nMessage-Id: {id}\r\n\r\n");
        while (text.Length < size)
        {
            text.Append("Gated content: the quick brown fox jumps over the lazy dog.\r\n");
        }

        var bytes = Encoding.ASCII.GetBytes(text.ToString());
        var stream = new GatedContentStream(bytes[..headSize], bytes[headSize..]) { HonoursToken = honoursToken };
        return (SmtpMessage.FromStream(new SmtpEnvelope("sender@example.test", $"rcpt-{tag}@example.test"), stream), id, stream);
    }

    /// <summary>Lets the second read return the rest.</summary>
    public void Open() => _gate.TrySetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        switch (_reads++)
        {
            case 0:
                head.CopyTo(buffer);
                _headRead.TrySetResult();
                return head.Length;
            case 1:
                await (HonoursToken ? _gate.Task.WaitAsync(cancellationToken) : _gate.Task);
                tail.CopyTo(buffer);
                return tail.Length;
            default:
                return 0;
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Read asynchronously.");

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
