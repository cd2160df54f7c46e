using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Session.DataWriteScripts;

namespace MailPipe.Tests.Session;

/// <summary>
/// A peer's probe of WriteMessageDataAsync "split anywhere, even between CR and LF" (README, seed's SendLines row): each
/// split of the same content puts the same bytes on the wire, and EndMessageDataAsync adds a CRLF only when the content
/// did not end with a line end (a CR held back at the end of the last write is a line end).
/// </summary>
public class Breaker15DataSplitTests
{
    public static TheoryData<string[], string> Splits() => new()
    {
        { ["x\r"], "x\r\n.\r\n" },                                   // a CR at the end of the last write: one CRLF, not two
        { ["x\r", string.Empty, "\n"], "x\r\n.\r\n" },               // an empty write between CR and LF
        { ["x\r", ".y"], "x\r\n..y\r\n.\r\n" },                     // a bare CR ends a line: the '.' after it is stuffed
        { ["x\r", "\r\n"], "x\r\n\r\n.\r\n" },                      // a bare CR then CRLF: two line ends
        { ["x\r\n", "."], "x\r\n..\r\n.\r\n" },                     // a lone '.' as the last write
        { ["x\n", ".\n", "."], "x\r\n..\r\n..\r\n.\r\n" },          // lone dots with LF line ends
        { ["x", ".y"], "x.y\r\n.\r\n" },                             // a '.' in mid-line is not stuffed
        { [string.Empty, ".", string.Empty, "\r", string.Empty, "\n"], "..\r\n.\r\n" },
        { ["x\r\n", string.Empty], "x\r\n.\r\n" },
    };

    [Theory]
    [MemberData(nameof(Splits))]
    public async Task Each_split_puts_the_normalised_stuffed_bytes_on_the_wire(string[] writes, string expected)
    {
        await using var server = ServerExpecting(expected);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        (await session.DataAsync().Safe()).Code.Should().Be(354);

        await WriteAllAsync(session, writes);

        var reply = await session.EndMessageDataAsync().Safe();
        reply.Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task No_content_at_all_sends_only_the_end_of_data()
    {
        await using var server = ServerExpecting(".\r\n");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.DataAsync().Safe();
        await session.WriteMessageDataAsync(ReadOnlyMemory<byte>.Empty).Safe();

        (await session.EndMessageDataAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    public static TheoryData<string[], string> RawSplits() => new()
    {
        { ["raw:x\r", "raw:\n"], "x\r\n.\r\n" },                       // CRLF split over two raw writes ends the line
        { ["x", "raw:\r", "raw:\n"], "x\r\n.\r\n" },
        { ["raw:x\r\n"], "x\r\n.\r\n" },
        { ["raw:x"], "x\r\n.\r\n" },
        { ["raw:x\r", "raw:y"], "x\ry\r\n.\r\n" },                      // a raw bare CR is the caller's; the line is still open
        { ["raw:x\r"], "x\r\n.\r\n" },                                   // a raw CR at the end: the end of data completes it, no bare CR
        { ["raw:x\r", "\n"], "x\r\n.\r\n" },                           // a raw CR, then WriteMessageDataAsync's LF completes it
        { ["raw:x\r", "\n.y\n"], "x\r\n..y\r\n.\r\n" },               // ... and the '.' after it starts a line
        { ["x\r", "raw:\n"], "x\r\n.\r\n" },                           // a data CR (sent as CRLF), then a raw LF completes it: one CRLF, no bare LF
        { ["x\r", "raw:\n", "\n"], "x\r\n\r\n.\r\n" },                 // ... and a data LF after it is an empty line
        { ["x\r", "raw:\ny\r\n"], "x\r\ny\r\n.\r\n" },               // ... a raw LF and more raw bytes
        { ["x\r", "raw:\n", "raw:y"], "x\r\ny\r\n.\r\n" },
        { ["x\r", "raw:\n", ".y"], "x\r\n..y\r\n.\r\n" },               // the line start after it is known: a '.' is stuffed
        { ["x\r", "raw:y"], "x\r\ny\r\n.\r\n" },                         // a data CR then raw bytes not starting with LF: the CRLF stands
        { ["x\r", "raw:\r\n"], "x\r\n\r\n.\r\n" },                     // a data CR then a raw CRLF: two line ends
    };

    [Theory]
    [MemberData(nameof(RawSplits))]
    public async Task EndMessageDataAsync_after_SendBytesAsync_adds_a_CRLF_only_when_the_wire_does_not_end_with_one(string[] writes, string expected)
    {
        await using var server = ServerExpecting(expected);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.DataAsync().Safe();
        await WriteAllAsync(session, writes);

        (await session.EndMessageDataAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }
}
