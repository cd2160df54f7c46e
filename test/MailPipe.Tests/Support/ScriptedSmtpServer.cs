using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace MailPipe.Tests.Support;

/// <summary>
/// What a <see cref="ScriptedSmtpServer"/> does, step by step: lines it sends (<c>S: …</c>), lines it expects to receive
/// (<c>C: …</c>), and the odd things real servers do (replies in pieces, delays, closing the connection).
/// </summary>
internal sealed class SmtpScript
{
    private readonly List<ScriptStep> _steps = [];

    internal IReadOnlyList<ScriptStep> Steps => _steps;

    /// <summary>
    /// Reads a transcript: <c>S: text</c> (the server sends text and CRLF), <c>C: text</c> (the server expects exactly
    /// text and CRLF), <c>C+ text</c> (as <c>C:</c>, and the line must have gone out in the same flush as the bytes
    /// before it: pipelined, RFC 2920), <c>C&gt; text</c> (as <c>C:</c>, and the client must have written the line only
    /// after it had read every byte the server sent so far: one command at a time), <c>CLOSE</c> (the server closes the
    /// connection), <c>DROP</c> (the connection breaks: the client reads end of stream and its writes fail from now on),
    /// <c>EXPECT CLOSE</c> (the client must close the connection without sending anything more).
    /// </summary>
    public static SmtpScript Parse(params string[] transcript) => new SmtpScript().Then(transcript);

    /// <summary>Appends the steps of a transcript (see <see cref="Parse"/>).</summary>
    public SmtpScript Then(params string[] transcript)
    {
        foreach (var line in transcript)
        {
            if (line.StartsWith("S:", StringComparison.Ordinal))
            {
                Send(TextAfterPrefix(line));
            }
            else if (line.StartsWith("C:", StringComparison.Ordinal))
            {
                Expect(TextAfterPrefix(line));
            }
            else if (line.StartsWith("C+", StringComparison.Ordinal))
            {
                Expect(TextAfterPrefix(line), ClientArrival.WithPrevious);
            }
            else if (line.StartsWith("C>", StringComparison.Ordinal))
            {
                Expect(TextAfterPrefix(line), ClientArrival.AfterReplies);
            }
            else if (line == "CLOSE")
            {
                Close();
            }
            else if (line == "DROP")
            {
                Drop();
            }
            else if (line == "EXPECT CLOSE")
            {
                ExpectClosed();
            }
            else
            {
                throw new ArgumentException($"Not a transcript line: \"{line}\" (use \"S: …\", \"C: …\", \"C+ …\", \"C> …\", CLOSE, DROP or EXPECT CLOSE).", nameof(transcript));
            }
        }

        return this;
    }

    /// <summary>The server sends <paramref name="line"/> and CRLF.</summary>
    public SmtpScript Send(string line) => SendRaw(line + "\r\n", $"S: {line}");

    /// <summary>The server sends exactly these bytes (UTF-8), in one write.</summary>
    public SmtpScript SendRaw(string text) => SendRaw(text, $"S(raw): {Printable(text)}");

    /// <summary>The server sends each piece in its own write and waits until the client has read it before the next.</summary>
    public SmtpScript SendPieces(params string[] pieces)
    {
        foreach (var piece in pieces)
        {
            SendRaw(piece, $"S(piece): {Printable(piece)}");
        }

        return this;
    }

    /// <summary>The server reads one line and requires it to be exactly <paramref name="line"/> and CRLF, arriving as <paramref name="arrival"/> says.</summary>
    public SmtpScript Expect(string line, ClientArrival arrival = ClientArrival.Any) => Add($"{Prefix(arrival)} {line}", async (server, ct) =>
    {
        var offset = server.ReceivedCount;
        var received = await server.ReadLineAsync(ct);
        var expected = line + "\r\n";
        if (received is null)
        {
            throw new ScriptMismatchException($"expected \"{Printable(expected)}\" but the client closed the connection");
        }

        var actual = Encoding.UTF8.GetString(received);
        if (actual != expected)
        {
            throw new ScriptMismatchException($"expected \"{Printable(expected)}\" but received \"{Printable(actual)}\"");
        }

        server.CheckArrival(offset, arrival, expected);
    });

    /// <summary>The server reads exactly as many bytes as <paramref name="text"/> has (UTF-8) and requires them to be equal, arriving as <paramref name="arrival"/> says.</summary>
    public SmtpScript ExpectRaw(string text, ClientArrival arrival = ClientArrival.Any) => ExpectBytes(Encoding.UTF8.GetBytes(text), arrival, $"{Prefix(arrival)}(raw) {Printable(text)}");

    /// <summary>The server reads exactly <paramref name="expected"/>.Length bytes and requires them to be equal (binary message data, BDAT chunks), arriving as <paramref name="arrival"/> says.</summary>
    public SmtpScript ExpectBytes(byte[] expected, ClientArrival arrival = ClientArrival.Any) =>
        ExpectBytes(expected, arrival, $"{Prefix(arrival)}(bytes) {expected.Length} bytes");

    /// <summary>The server reads <paramref name="count"/> bytes, whatever they are (the part of a large message a test does not care about).</summary>
    public SmtpScript Skip(int count) => Add($"SKIP {count}", async (server, ct) =>
    {
        var received = await server.ReadExactlyAsync(count, ct);
        if (received.Length < count)
        {
            throw new ScriptMismatchException($"expected {count} bytes but the client closed the connection after {received.Length}");
        }
    });

    private SmtpScript ExpectBytes(byte[] expected, ClientArrival arrival, string description) => Add(description, async (server, ct) =>
    {
        var offset = server.ReceivedCount;
        var received = await server.ReadExactlyAsync(expected.Length, ct);
        if (!received.AsSpan().SequenceEqual(expected))
        {
            var at = received.AsSpan().CommonPrefixLength(expected);
            throw new ScriptMismatchException($"expected \"{Printable(Encoding.Latin1.GetString(expected))}\" but received \"{Printable(Encoding.Latin1.GetString(received))}\" (first difference at byte {at})");
        }

        server.CheckArrival(offset, arrival, Encoding.Latin1.GetString(expected));
    });

    /// <summary>The server closes its side of the connection (the client reads end of stream).</summary>
    public SmtpScript Close() => Add("CLOSE", (server, _) => server.CloseAsync());

    /// <summary>The connection breaks: the client reads end of stream, its writes fail with <see cref="IOException"/>, and the server reads nothing more.</summary>
    public SmtpScript Drop() => Add("DROP", (server, _) => server.DropAsync());

    /// <summary>The client must close the connection without sending another byte.</summary>
    public SmtpScript ExpectClosed() => Add("EXPECT CLOSE", async (server, ct) =>
    {
        var extra = await server.ReadUntilClosedAsync(ct);
        if (extra.Length > 0)
        {
            throw new ScriptMismatchException($"expected the client to close the connection but received \"{Printable(Encoding.UTF8.GetString(extra))}\"");
        }
    });

    /// <summary>The server reads (and records) whatever the client sends until the client closes the connection.</summary>
    public SmtpScript ReadUntilClosed() => Add("READ UNTIL CLOSED", async (server, ct) => await server.ReadUntilClosedAsync(ct));

    /// <summary>The server does nothing until <paramref name="gate"/> completes (a delay the test controls).</summary>
    public SmtpScript WaitFor(Task gate) => Add("WAIT", (_, ct) => gate.WaitAsync(ct));

    /// <summary>A step the test writes itself (for exchanges a transcript cannot state, such as BDAT chunks of unknown sizes).</summary>
    public SmtpScript Do(string description, Func<ScriptedSmtpServer, CancellationToken, Task> step) => Add(description, step);

    /// <summary>The server tells the test that it reached this point.</summary>
    public SmtpScript Signal(TaskCompletionSource reached) => Add("SIGNAL", (_, _) =>
    {
        reached.TrySetResult();
        return Task.CompletedTask;
    });

    /// <summary>The server waits <paramref name="delay"/> on <paramref name="timeProvider"/>; <paramref name="started"/> completes once the delay's timer exists.</summary>
    public SmtpScript Delay(TimeSpan delay, TimeProvider timeProvider, TaskCompletionSource? started = null) => Add($"DELAY {delay}", async (_, ct) =>
    {
        var wait = Task.Delay(delay, timeProvider, ct);
        started?.TrySetResult();
        await wait;
    });

    private SmtpScript SendRaw(string text, string description) => Add(description, (server, ct) => server.SendAsync(Encoding.UTF8.GetBytes(text), ct));

    private SmtpScript Add(string description, Func<ScriptedSmtpServer, CancellationToken, Task> run)
    {
        _steps.Add(new ScriptStep(description, run));
        return this;
    }

    private static string Prefix(ClientArrival arrival) => arrival switch
    {
        ClientArrival.WithPrevious => "C+",
        ClientArrival.AfterReplies => "C>",
        _ => "C:",
    };

    private static string TextAfterPrefix(string line) => line.Length > 2 && line[2] == ' ' ? line[3..] : line[2..];

    internal static string Printable(string text) => text.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\0", "\\0", StringComparison.Ordinal);
}

/// <summary>How client bytes a script expects must have been sent, besides being the right bytes.</summary>
internal enum ClientArrival
{
    /// <summary>However the client sent them.</summary>
    Any,

    /// <summary>In the same flush as the bytes before them (no flush in between): pipelined with what came before (RFC 2920).</summary>
    WithPrevious,

    /// <summary>Written only after the client had read every byte the server sent before: the client waited for the reply.</summary>
    AfterReplies,
}

internal sealed record ScriptStep(string Description, Func<ScriptedSmtpServer, CancellationToken, Task> Run);

/// <summary>The client did not do what the script expected.</summary>
internal sealed class ScriptMismatchException(string message) : Exception(message);

/// <summary>
/// An in-memory SMTP server over a pair of <see cref="Pipe"/>s that follows a <see cref="SmtpScript"/> and records every
/// byte the client wrote. Give <see cref="ClientStream"/> to <c>AsyncSmtpSession.ConnectAsync(Stream)</c>.
/// </summary>
/// <remarks>
/// What the server sends is delivered one write at a time: each write waits until the client has read it, so a reply
/// sent in pieces reaches the client in pieces. Every wait of the server is bounded by <see cref="SafetyTimeout"/> so
/// that a broken test fails instead of hanging; it is never used to assert anything.
/// </remarks>
internal sealed class ScriptedSmtpServer : IAsyncDisposable
{
    /// <summary>A safety net for hung tests, never an assertion.</summary>
    public static TimeSpan SafetyTimeout { get; } = TimeSpan.FromSeconds(30);

    private readonly Pipe _toServer;
    private readonly Pipe _toClient;
    private readonly CancellationTokenSource _safety = new(SafetyTimeout);
    private readonly Lock _recordLock = new();
    private readonly List<byte> _received = [];
    private int _clientClosed;
    private long _bytesSent;

    private ScriptedSmtpServer(SmtpScript script, long clientWriteLimit)
    {
        // Client → server: unbounded unless a test wants back-pressure (a server that stops reading).
        _toServer = new Pipe(new PipeOptions(pauseWriterThreshold: clientWriteLimit, resumeWriterThreshold: clientWriteLimit / 2, useSynchronizationContext: false));

        // Server → client: each write waits until the client has consumed it, so pieces arrive as separate reads.
        _toClient = new Pipe(new PipeOptions(pauseWriterThreshold: 1, resumeWriterThreshold: 1, useSynchronizationContext: false));
        ClientStream = new DuplexStream(_toClient.Reader, _toServer.Writer);
        Completion = RunAsync(script);
    }

    /// <summary>Starts a server that follows a transcript (see <see cref="SmtpScript.Parse"/>).</summary>
    public static ScriptedSmtpServer Start(params string[] transcript) => new(SmtpScript.Parse(transcript), clientWriteLimit: 0);

    /// <summary>Starts a server that follows <paramref name="script"/>.</summary>
    /// <param name="script">The steps.</param>
    /// <param name="clientWriteLimit">When positive, the client's writes block once this many bytes are unread by the server.</param>
    public static ScriptedSmtpServer Start(SmtpScript script, long clientWriteLimit = 0) => new(script, clientWriteLimit);

    /// <summary>The client's end of the connection.</summary>
    public DuplexStream ClientStream { get; }

    /// <summary>Completes when every step has run; faults with the first mismatch.</summary>
    public Task Completion { get; }

    /// <summary>Whether the server has seen the client close the connection.</summary>
    public bool ClientClosed => Volatile.Read(ref _clientClosed) != 0;

    /// <summary>Every byte the server has read from the client so far, in order.</summary>
    public byte[] Received
    {
        get
        {
            lock (_recordLock)
            {
                return [.. _received];
            }
        }
    }

    /// <summary><see cref="Received"/> as text (Latin-1, so that every byte maps to one character).</summary>
    public string ReceivedText => Encoding.Latin1.GetString(Received);

    /// <summary>Waits for the script to finish (bounded by <see cref="SafetyTimeout"/>) and rethrows a mismatch.</summary>
    public Task WaitAsync() => Completion.WaitAsync(SafetyTimeout);

    public async ValueTask DisposeAsync()
    {
        await _safety.CancelAsync();
        await _toClient.Writer.CompleteAsync();
        await _toServer.Reader.CompleteAsync();
        try
        {
            await Completion;
        }
        catch (Exception)
        {
            // The test has already seen the failure (or did not care about the rest of the script).
        }

        await ClientStream.DisposeAsync();
        _safety.Dispose();
    }

    internal async Task SendAsync(byte[] bytes, CancellationToken cancellationToken)
    {
        _bytesSent += bytes.Length;
        var result = await _toClient.Writer.WriteAsync(bytes, cancellationToken);

        // Completed: the client has closed its end. That is fine if it read everything first (as after QUIT).
        if (result.IsCompleted && ClientStream.BytesRead < _bytesSent)
        {
            throw new ScriptMismatchException($"could not send \"{SmtpScript.Printable(Encoding.UTF8.GetString(bytes))}\": the client closed the connection");
        }
    }

    internal async Task CloseAsync() => await _toClient.Writer.CompleteAsync();

    internal async Task DropAsync()
    {
        ClientStream.Reset();
        await _toClient.Writer.CompleteAsync();
        await _toServer.Reader.CompleteAsync();
    }

    /// <summary>How many bytes the server has read from the client so far: the offset of the next byte it reads.</summary>
    internal long ReceivedCount
    {
        get
        {
            lock (_recordLock)
            {
                return _received.Count;
            }
        }
    }

    /// <summary>Checks how the bytes that started at <paramref name="offset"/> were sent.</summary>
    internal void CheckArrival(long offset, ClientArrival arrival, string what)
    {
        switch (arrival)
        {
            case ClientArrival.WithPrevious when offset == 0 || ClientStream.FlushedAt(offset):
                throw new ScriptMismatchException($"expected \"{SmtpScript.Printable(what)}\" in the same flush as the bytes before it, but the client flushed before it");
            case ClientArrival.AfterReplies when ClientStream.BytesReadBeforeWriting(offset) < _bytesSent:
                throw new ScriptMismatchException($"expected \"{SmtpScript.Printable(what)}\" to be written after the client read the replies ({_bytesSent} bytes), but it was written when the client had read {ClientStream.BytesReadBeforeWriting(offset)}");
        }
    }

    /// <summary>Reads one line up to and including LF; at end of stream, whatever is left (or null when nothing).</summary>
    internal async Task<byte[]?> ReadLineAsync(CancellationToken cancellationToken)
    {
        var reader = _toServer.Reader;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            var lineFeed = buffer.PositionOf((byte)'\n');
            if (lineFeed is not null)
            {
                var line = buffer.Slice(0, buffer.GetPosition(1, lineFeed.Value));
                var bytes = Record(line);
                reader.AdvanceTo(line.End);
                return bytes;
            }

            if (result.IsCompleted)
            {
                var rest = Record(buffer);
                reader.AdvanceTo(buffer.End);
                Volatile.Write(ref _clientClosed, 1);
                return rest.Length == 0 ? null : rest;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    internal async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
    {
        var reader = _toServer.Reader;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (buffer.Length >= count || result.IsCompleted)
            {
                var taken = buffer.Slice(0, Math.Min(count, buffer.Length));
                var bytes = Record(taken);
                reader.AdvanceTo(taken.End);
                return bytes;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Reads and records everything until the client closes; returns what was read.</summary>
    internal async Task<byte[]> ReadUntilClosedAsync(CancellationToken cancellationToken)
    {
        var reader = _toServer.Reader;
        var all = new List<byte>();
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            all.AddRange(Record(result.Buffer));
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                Volatile.Write(ref _clientClosed, 1);
                return [.. all];
            }
        }
    }

    private byte[] Record(in ReadOnlySequence<byte> bytes)
    {
        var array = bytes.ToArray();
        lock (_recordLock)
        {
            _received.AddRange(array);
        }

        return array;
    }

    private async Task RunAsync(SmtpScript script)
    {
        await Task.Yield();
        var steps = script.Steps;
        for (var i = 0; i < steps.Count; i++)
        {
            try
            {
                await steps[i].Run(this, _safety.Token);
            }
            catch (Exception ex)
            {
                // Hang up so that the client fails at once instead of waiting for a reply that will never come.
                await _toClient.Writer.CompleteAsync();
                await _toServer.Reader.CompleteAsync();
                throw new ScriptMismatchException($"Script step {i + 1} ({steps[i].Description}) failed: {ex.Message}. Received so far: \"{SmtpScript.Printable(ReceivedText)}\"");
            }
        }
    }
}
