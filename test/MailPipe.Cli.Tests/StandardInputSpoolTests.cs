using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>Runs alone: <see cref="GC.GetTotalAllocatedBytes(bool)"/> counts every thread, so no other test may run meanwhile.</summary>
[CollectionDefinition(nameof(StandardInputSpoolCollection), DisableParallelization = true)]
public sealed class StandardInputSpoolCollection;

/// <summary>
/// A large message on standard input (<c>-</c>) was held in memory, in a growing buffer and then its copy: 6 GB of
/// memory for 2.2 GB, and then "Stream was too long", not sent, while the same message as a file streams with 55 MB.
/// Now a message longer than 1 MiB on a pipe goes to a temporary file and is streamed from there, as a large file.
/// </summary>
[Collection(nameof(StandardInputSpoolCollection))]
public class StandardInputSpoolTests
{
    private static byte[] LargeMessage(int bodyBytes)
    {
        var header = "From: a@example.test\r\nTo: b@example.test\r\nSubject: large\r\n\r\n"u8;
        var message = new byte[header.Length + bodyBytes];
        header.CopyTo(message);
        var line = "0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxyz\r\n"u8;
        for (var offset = header.Length; offset < message.Length; offset += line.Length)
        {
            line[..Math.Min(line.Length, message.Length - offset)].CopyTo(message.AsSpan(offset));
        }

        return message;
    }

    private static string[] Spools() => Directory.GetFiles(Path.GetTempPath(), $"mailpipe-{Environment.ProcessId}-*.eml");

    [Fact]
    public async Task A_large_message_on_standard_input_is_not_held_in_memory()
    {
        var message = LargeMessage(48 * 1024 * 1024);
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        var environment = new CliEnvironment(() => new MemoryStream(message, writable: false), OutputIsTerminal: false, ErrorIsTerminal: false);
        var output = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        var error = new StringWriter(new StringBuilder()) { NewLine = "\n" };

        // --quit-after connect: the message is read (before the connection is made) and not sent.
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var exit = await Program.RunAsync(["send", "--server", server.Address, "--quit-after", "connect", "-"], output, error, environment, CancellationToken.None);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        exit.Should().Be(0, output.ToString() + error);
        allocated.Should().BeLessThan(message.Length / 4, "the message goes to a temporary file, not to a buffer of its size");
        Spools().Should().BeEmpty("the temporary file is deleted with the message");
    }

    [Fact]
    public async Task A_large_message_on_standard_input_arrives_whole_and_its_temporary_file_is_deleted()
    {
        var message = LargeMessage(3 * 1024 * 1024);
        await using var server = await TestSmtpServer.StartAsync();
        var environment = new CliEnvironment(() => new MemoryStream(message, writable: false), OutputIsTerminal: false, ErrorIsTerminal: false);
        var output = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        var error = new StringWriter(new StringBuilder()) { NewLine = "\n" };

        var exit = await Program.RunAsync(["send", "--server", server.Address, "-"], output, error, environment, CancellationToken.None);

        exit.Should().Be(0, output.ToString() + error);
        output.ToString().Should().Contain("-: accepted (exit 0)");
        server.Messages.Should().ContainSingle().Which.Data.Should().Equal(message);
        Spools().Should().BeEmpty();
    }

    /// <summary>
    /// A spooled message that cannot be sent (here a header section over 4 MiB) was reported under the temporary file's
    /// name (813a04d), which is deleted with it: it is <c>-</c>, as the message came.
    /// </summary>
    [Fact]
    public async Task A_spooled_message_that_cannot_be_read_is_reported_as_standard_input()
    {
        var filler = new StringBuilder("From: a@example.test\r\nTo: b@example.test\r\n");
        for (var i = 0; filler.Length < 5 * 1024 * 1024; i++)
        {
            filler.Append("X-Filler-").Append(i).Append(": aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }

        var message = Encoding.ASCII.GetBytes(filler.Append("\r\nbody\r\n").ToString());
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        var environment = new CliEnvironment(() => new MemoryStream(message, writable: false), OutputIsTerminal: false, ErrorIsTerminal: false);
        var output = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        var error = new StringWriter(new StringBuilder()) { NewLine = "\n" };

        var exit = await Program.RunAsync(["send", "--server", server.Address, "-"], output, error, environment, CancellationToken.None);

        exit.Should().Be(1, output.ToString() + error);
        output.ToString().Should().StartWith("-: not sent (exit 1)").And.Contain("cannot read -: the header section is larger than 4 MiB")
            .And.NotContain(Path.GetTempPath());
        Spools().Should().BeEmpty();
    }

    /// <summary>
    /// A pipe that never ends (<c>yes |</c>, <c>- &lt; /dev/zero</c>) was spooled (813a04d) until the temporary folder was
    /// full, a tmpfs taking memory; before 813a04d it grew a buffer to 2 GiB. It now stops at <c>PipeLimit</c> (4 GiB;
    /// 3 MiB here): not sent, exit 1, the temporary file deleted.
    /// </summary>
    [Fact]
    public async Task A_pipe_that_never_ends_stops_at_the_limit_and_is_not_sent()
    {
        var limit = OutgoingMessage.PipeLimit;
        OutgoingMessage.PipeLimit = 3 * 1024 * 1024;
        try
        {
            await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
            var environment = new CliEnvironment(() => new EndlessStream(), OutputIsTerminal: false, ErrorIsTerminal: false);
            var output = new StringWriter(new StringBuilder()) { NewLine = "\n" };
            var error = new StringWriter(new StringBuilder()) { NewLine = "\n" };

            var exit = await Program.RunAsync(["send", "--server", server.Address, "-f", "a@example.test", "-t", "b@example.test", "-"], output, error, environment, CancellationToken.None);

            exit.Should().Be(1, output.ToString() + error);
            output.ToString().Should().Contain("-: cannot read standard input: it gives more than 3 MiB");
            Spools().Should().BeEmpty();
        }
        finally
        {
            OutgoingMessage.PipeLimit = limit;
        }
    }

    /// <summary>Lines of text for ever.</summary>
    private sealed class EndlessStream : ReadOnlyStream
    {
        public override int Read(Span<byte> buffer)
        {
            buffer.Fill((byte)'y');
            for (var i = 1; i < buffer.Length; i += 2)
            {
                buffer[i] = (byte)'\n';
            }

            return buffer.Length;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<int>(cancellationToken) : ValueTask.FromResult(Read(buffer.Span));
    }
}
