using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Sending;

/// <summary>
/// The scripted server's checks of how client bytes arrived (<c>C+</c>: same flush; <c>C&gt;</c>: after the replies)
/// and its DROP step, driven by hand over the raw client stream, so that the pipelining tests can trust them.
/// </summary>
public class ScriptedServerArrivalTests
{
    private static async Task WriteAsync(Stream stream, string text, bool flush = true)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes(text)).AsTask().Safe();
        if (flush)
        {
            await stream.FlushAsync().Safe();
        }
    }

    private static async Task<string> ReadAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer).AsTask().Safe();
        return Encoding.ASCII.GetString(buffer);
    }

    [Fact]
    public async Task Lines_in_one_flush_pass_the_same_flush_check()
    {
        await using var server = ScriptedSmtpServer.Start("C: MAIL", "C+ RCPT", "C+ DATA", "S: 250 ok");
        var stream = server.ClientStream;

        await WriteAsync(stream, "MAIL\r\nRCPT\r\nDATA\r\n");

        (await ReadAsync(stream, 8)).Should().Be("250 ok\r\n");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Lines_written_separately_in_one_flush_pass_the_same_flush_check()
    {
        await using var server = ScriptedSmtpServer.Start("C: MAIL", "C+ RCPT", "S: 250 ok");
        var stream = server.ClientStream;

        await WriteAsync(stream, "MAIL\r\n", flush: false);
        await WriteAsync(stream, "RCPT\r\n");

        (await ReadAsync(stream, 8)).Should().Be("250 ok\r\n");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_flush_between_lines_fails_the_same_flush_check()
    {
        await using var server = ScriptedSmtpServer.Start("C: MAIL", "C+ RCPT");
        var stream = server.ClientStream;

        await WriteAsync(stream, "MAIL\r\n");
        await WriteAsync(stream, "RCPT\r\n");

        (await FluentActions.Awaiting(server.WaitAsync).Should().ThrowAsync<ScriptMismatchException>())
            .Which.Message.Should().Contain("same flush").And.Contain("C+ RCPT");
    }

    [Fact]
    public async Task Same_flush_check_on_raw_bytes()
    {
        var good = SmtpScript.Parse("C: MAIL").ExpectRaw("BDAT 2 LAST\r\nab", ClientArrival.WithPrevious);
        await using (var server = ScriptedSmtpServer.Start(good))
        {
            await WriteAsync(server.ClientStream, "MAIL\r\nBDAT 2 LAST\r\nab");
            await server.WaitAsync();
        }

        var bad = SmtpScript.Parse("C: MAIL").ExpectBytes(Encoding.ASCII.GetBytes("BDAT 2 LAST\r\nab"), ClientArrival.WithPrevious);
        await using (var server = ScriptedSmtpServer.Start(bad))
        {
            await WriteAsync(server.ClientStream, "MAIL\r\n");
            await WriteAsync(server.ClientStream, "BDAT 2 LAST\r\nab");
            await FluentActions.Awaiting(server.WaitAsync).Should().ThrowAsync<ScriptMismatchException>();
        }
    }

    [Fact]
    public async Task A_line_written_after_reading_the_reply_passes_the_after_replies_check()
    {
        await using var server = ScriptedSmtpServer.Start("S: 220 hi", "C> MAIL", "S: 250 ok", "C> RCPT", "S: 250 ok");
        var stream = server.ClientStream;

        (await ReadAsync(stream, 8)).Should().Be("220 hi\r\n");
        await WriteAsync(stream, "MAIL\r\n");
        (await ReadAsync(stream, 8)).Should().Be("250 ok\r\n");
        await WriteAsync(stream, "RCPT\r\n");
        (await ReadAsync(stream, 8)).Should().Be("250 ok\r\n");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_line_written_before_reading_the_reply_fails_the_after_replies_check()
    {
        await using var server = ScriptedSmtpServer.Start("C: MAIL", "S: 250 ok", "C> RCPT");
        var stream = server.ClientStream;

        await WriteAsync(stream, "MAIL\r\n");
        await WriteAsync(stream, "RCPT\r\n");
        (await ReadAsync(stream, 8)).Should().Be("250 ok\r\n");

        (await FluentActions.Awaiting(server.WaitAsync).Should().ThrowAsync<ScriptMismatchException>())
            .Which.Message.Should().Contain("after the client read the replies");
    }

    [Fact]
    public async Task Drop_ends_the_client_reads_and_fails_its_writes()
    {
        var written = new TaskCompletionSource();
        var dropped = new TaskCompletionSource();
        var script = SmtpScript.Parse("C: MAIL").WaitFor(written.Task).Drop().Signal(dropped);
        await using var server = ScriptedSmtpServer.Start(script);
        var stream = server.ClientStream;

        await WriteAsync(stream, "MAIL\r\n");
        written.SetResult();
        await dropped.Task.Safe();

        (await stream.ReadAsync(new byte[16]).AsTask().Safe()).Should().Be(0);
        await FluentActions.Awaiting(() => WriteAsync(stream, "RCPT\r\n")).Should().ThrowAsync<IOException>();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Skip_reads_bytes_whatever_they_are()
    {
        var script = new SmtpScript().Skip(5).Then("C: NOOP");
        await using var server = ScriptedSmtpServer.Start(script);

        await WriteAsync(server.ClientStream, "\0\r.x\nNOOP\r\n");

        await server.WaitAsync();
    }
}
