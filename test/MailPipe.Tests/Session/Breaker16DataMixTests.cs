using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Session.DataWriteScripts;

namespace MailPipe.Tests.Session;

/// <summary>
/// A breaker's probe of WriteMessageDataAsync and SendBytesAsync mixed inside DATA (merge d51ff7e): a CR and an LF split
/// between the two make one CRLF whichever side holds which, so that no bare CR or LF reaches the wire.
/// </summary>
public class Breaker16DataMixTests
{
    /// <summary>
    /// Raw bytes ending with a CR, then WriteMessageDataAsync starting with anything but an LF: the CR stayed bare on the
    /// wire (and a '.' after it was not stuffed, so "CR . CRLF" could end the data early at a server that takes a bare CR
    /// as a line end), while the end of data after such a CR completes it with an LF.
    /// </summary>
    public static TheoryData<string[], string> RawCarriageReturnThenData() => new()
    {
        { ["raw:x\r", "y"], "x\r\ny\r\n.\r\n" },
        { ["raw:x\r", ".y"], "x\r\n..y\r\n.\r\n" },
        { ["raw:x\r", ".\r\n"], "x\r\n..\r\n.\r\n" },
        { ["raw:x\r", "\r"], "x\r\n\r\n.\r\n" },
        { ["raw:x\r", "\r\n"], "x\r\n\r\n.\r\n" },
        { ["raw:x\r", string.Empty, "y"], "x\r\ny\r\n.\r\n" },
    };

    [Theory]
    [MemberData(nameof(RawCarriageReturnThenData))]
    public async Task Data_after_raw_bytes_ending_with_a_CR_completes_that_line_end(string[] writes, string expected)
    {
        await using var server = ServerExpecting(expected);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.DataAsync().Safe();
        await WriteAllAsync(session, writes);

        (await session.EndMessageDataAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    /// <summary>
    /// A message with CRLF line ends only, lines starting with dots, split at random places into pieces each sent
    /// through WriteMessageDataAsync or SendBytesAsync (empty pieces between): the wire is the message with a '.' doubled
    /// where a data piece starts a line with it, then exactly one end of data; never a bare CR or LF.
    /// </summary>
    [Fact]
    public async Task Random_splits_of_a_CRLF_message_over_data_and_raw_writes_put_the_same_lines_on_the_wire()
    {
        string[] tokens = ["x", "yz", ".", "..", "\r\n", "\r\n", new string('a', 90)];
        var random = new Random(16);
        for (var round = 0; round < 300; round++)
        {
            var message = string.Concat(Enumerable.Range(0, random.Next(0, 24)).Select(_ => tokens[random.Next(tokens.Length)]));
            var writes = new List<string>();
            var expected = new StringBuilder();
            var start = 0;
            while (start < message.Length || writes.Count == 0)
            {
                var end = Math.Min(message.Length, start + random.Next(0, 6));
                var raw = random.Next(2) == 0;
                var piece = message[start..end];
                writes.Add((raw ? "raw:" : string.Empty) + piece);
                for (var i = start; i < end; i++)
                {
                    if (!raw && message[i] == '.' && (i == 0 || message[i - 1] == '\n'))
                    {
                        expected.Append('.');
                    }

                    expected.Append(message[i]);
                }

                start = end;
            }

            expected.Append(message.Length == 0 || message.EndsWith("\r\n", StringComparison.Ordinal) ? ".\r\n" : "\r\n.\r\n");
            var because = "round " + round + ": " + string.Join(" | ", writes.Select(w => w.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)));
            await using var server = ServerExpecting(expected.ToString());
            using var session = new AsyncSmtpSession();
            await session.ConnectAsync(server.ClientStream).Safe();
            await session.DataAsync().Safe();
            await WriteAllAsync(session, [.. writes]);
            (await session.EndMessageDataAsync().Safe()).Code.Should().Be(250, because);
            await server.WaitAsync();
            var wire = server.ReceivedText;
            var data = wire[(wire.IndexOf("DATA\r\n", StringComparison.Ordinal) + 6)..];
            data.Should().Be(expected.ToString(), because);
            data.Replace("\r\n", string.Empty, StringComparison.Ordinal).Should().NotContainAny(["\r", "\n"], because);
        }
    }
}
