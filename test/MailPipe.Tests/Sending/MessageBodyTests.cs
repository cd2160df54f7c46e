using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using MailPipe.Sending;

namespace MailPipe.Tests.Sending;

/// <summary>
/// The one content-source loop of the message bodies (issue #9): every source hands over the same bytes, and only an
/// exception of the caller's source is marked as a content failure — never one of MailPipe's own code.
/// </summary>
public class MessageBodyTests
{
    private static readonly byte[] Content = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("line of content\r\n", 200)));

    [Fact]
    public async Task Bytes_stream_and_pipe_hand_over_the_same_content_and_large_memory_in_bounded_pieces()
    {
        var fromBytes = new RecordingBody(maxPiece: 1000);
        var fromStream = new RecordingBody();
        var fromPipe = new RecordingBody();
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Content);
        await pipe.Writer.CompleteAsync();

        (await fromBytes.CopyAsync(new ReadOnlySequence<byte>(Content), null, null)).Should().BeTrue();
        (await fromStream.CopyAsync(null, new MemoryStream(Content), null)).Should().BeTrue();
        (await fromPipe.CopyAsync(null, null, pipe.Reader)).Should().BeTrue();

        fromBytes.Received.Should().Equal(Content);
        fromStream.Received.Should().Equal(Content);
        fromPipe.Received.Should().Equal(Content);
        fromBytes.Pieces.Should().OnlyContain(p => p <= 1000);
    }

    [Fact]
    public async Task A_failing_stream_is_marked_as_the_callers_source()
    {
        var body = new RecordingBody();

        var thrown = await FluentActions.Awaiting(() => body.CopyAsync(null, new FailingStream(), null).AsTask()).Should().ThrowAsync<ContentSourceException>();

        thrown.Which.SourceException.Should().BeOfType<IOException>();
    }

    [Fact]
    public async Task A_failing_pipe_is_marked_as_the_callers_source()
    {
        var pipe = new Pipe();
        await pipe.Writer.CompleteAsync(new IOException("disk gone"));

        var thrown = await FluentActions.Awaiting(() => new RecordingBody().CopyAsync(null, null, pipe.Reader).AsTask()).Should().ThrowAsync<ContentSourceException>();

        thrown.Which.SourceException.Should().BeOfType<IOException>().Which.Message.Should().Be("disk gone");
    }

    [Fact]
    public async Task An_exception_of_MailPipes_own_code_is_never_taken_for_a_content_failure()
    {
        var body = new RecordingBody { FailWith = new InvalidOperationException("a bug of ours") };

        foreach (var copy in new Func<ValueTask<bool>>[]
        {
            () => body.CopyAsync(new ReadOnlySequence<byte>(Content), null, null),
            () => body.CopyAsync(null, new MemoryStream(Content), null),
            () => body.CopyAsync(null, null, PipeReader.Create(new ReadOnlySequence<byte>(Content))),
        })
        {
            await FluentActions.Awaiting(() => copy().AsTask()).Should().ThrowExactlyAsync<InvalidOperationException>();
        }
    }

    [Fact]
    public async Task A_cancelled_pipe_read_is_a_cancellation_never_the_end_of_the_content()
    {
        var pipe = new Pipe();
        pipe.Reader.CancelPendingRead();

        await FluentActions.Awaiting(() => new RecordingBody().CopyAsync(null, null, pipe.Reader).AsTask()).Should().ThrowAsync<OperationCanceledException>();
    }

    [Fact]
    public async Task A_body_that_stops_ends_the_copy()
    {
        var body = new RecordingBody(maxPiece: 100) { StopAfter = 3 };

        (await body.CopyAsync(new ReadOnlySequence<byte>(Content), null, null)).Should().BeFalse();

        body.Pieces.Should().HaveCount(3);
    }

    private sealed class RecordingBody(int maxPiece = int.MaxValue) : MessageBody
    {
        private readonly MemoryStream _received = new();

        public List<int> Pieces { get; } = [];

        public Exception? FailWith { get; init; }

        public int StopAfter { get; init; } = int.MaxValue;

        public byte[] Received => _received.ToArray();

        protected override int MaxPiece => maxPiece;

        public ValueTask<bool> CopyAsync(ReadOnlySequence<byte>? bytes, Stream? stream, PipeReader? reader) => CopyAsync(bytes, stream, reader, CancellationToken.None);

        protected override ValueTask<bool> WriteAsync(ReadOnlyMemory<byte> piece)
        {
            if (FailWith is not null)
            {
                throw FailWith;
            }

            _received.Write(piece.Span);
            Pieces.Add(piece.Length);
            return ValueTask.FromResult(Pieces.Count < StopAfter);
        }
    }

    private sealed class FailingStream : MemoryStream
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromException<int>(new IOException("read failed"));
    }
}
