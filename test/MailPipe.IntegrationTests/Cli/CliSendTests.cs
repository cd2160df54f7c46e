using System.Text;
using MailPipe.IntegrationTests.Support;
using static MailPipe.IntegrationTests.Cli.CliProcess;

namespace MailPipe.IntegrationTests.Cli;

/// <summary>
/// <c>mailpipe send</c> against the real Postfix (core issue acceptance 3, CLI check): every corpus file byte for byte,
/// the envelope from the headers with Bcc removed, a whole directory as one pipelined batch.
/// </summary>
public sealed class CliSendTests
{
    private const string Sender = "sender@example.test";

    public CliSendTests() => TestServers.RequireListening(TestServers.PostfixPort);

    public static TheoryData<string> CorpusNames => Corpus.Names;

    [Theory]
    [MemberData(nameof(CorpusNames))]
    public async Task Each_corpus_file_is_stored_byte_for_byte_after_CRLF_normalisation(string name)
    {
        var recipient = TestServers.UniqueRecipient("cli");
        var file = Path.Combine(Corpus.Directory, name);

        var run = await RunAsync("send", "--server", Server(TestServers.PostfixPort), "--from", Sender, "--to", recipient, file);

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain($"{file}: accepted (exit 0)");
        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        Maildir.StripTraceHeaders(stored).Should().Equal(Corpus.NormalizeLineEnds(Corpus.Read(name)));
    }

    [Fact]
    public async Task The_bcc_file_without_from_and_to_reaches_To_Cc_and_Bcc_and_is_stored_without_the_Bcc_line()
    {
        const string Name = "10-bcc-header.eml";
        string[] recipients = ["rcpt@example.test", "cc@example.test", "hidden@example.test"];
        var before = recipients.ToDictionary(r => r, ExistingFiles);
        var input = Corpus.Read(Name);
        var expected = Corpus.NormalizeLineEnds(WithoutLine(input, "Bcc: hidden@example.test\r\n"));
        expected.Length.Should().Be(input.Length - "Bcc: hidden@example.test\r\n".Length, "the file is CRLF throughout and has one Bcc line");

        var run = await RunAsync("send", "--server", Server(TestServers.PostfixPort), "--json", Path.Combine(Corpus.Directory, Name));

        run.ExitCode.Should().Be(0, run.ToString());
        var message = System.Text.Json.JsonDocument.Parse(run.OutputLines[0]).RootElement;
        message.GetProperty("from").GetString().Should().Be(Sender);
        message.GetProperty("recipients").EnumerateArray().Select(r => r.GetProperty("address").GetString()).Should().Equal(recipients);
        foreach (var recipient in recipients)
        {
            var stored = Maildir.StripTraceHeaders(await WaitForNewFileAsync(recipient, before[recipient], expected));
            stored.Should().Equal(expected, $"{recipient} gets the message without its Bcc line");
            var text = Encoding.ASCII.GetString(stored);
            var header = text[..text.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
            header.Split("\r\n").Should().NotContain(line => line.StartsWith("Bcc:", StringComparison.OrdinalIgnoreCase));
            header.Should().NotContain("hidden@example.test");
        }
    }

    [Fact]
    public async Task The_corpus_directory_goes_as_one_batch_and_the_summary_counts_it()
    {
        var recipient = TestServers.UniqueRecipient("cli-batch");
        var files = Corpus.Files.ToArray();

        var run = await RunAsync("send", "--server", Server(TestServers.PostfixPort), "--from", Sender, "--to", recipient, "--json", Corpus.Directory);

        run.ExitCode.Should().Be(0, run.ToString());
        run.OutputLines.Should().HaveCount(files.Length + 1);
        var summary = run.LastJson;
        summary.GetProperty("type").GetString().Should().Be("summary");
        summary.GetProperty("messages").GetInt32().Should().Be(files.Length);
        summary.GetProperty("accepted").GetInt32().Should().Be(files.Length);
        summary.GetProperty("bytes").GetInt64().Should().Be(files.Sum(f => new FileInfo(f).Length));
        summary.GetProperty("messagesPerSecond").GetDouble().Should().BePositive();
        summary.GetProperty("elapsedSeconds").GetDouble().Should().BePositive();

        var stored = await Maildir.WaitForPostfixAsync(recipient, files.Length, TimeSpan.FromSeconds(60));
        var expected = files.Select(f => Convert.ToHexString(Corpus.NormalizeLineEnds(File.ReadAllBytes(f)))).Order(StringComparer.Ordinal);
        stored.Select(s => Convert.ToHexString(Maildir.StripTraceHeaders(s))).Order(StringComparer.Ordinal).Should().Equal(expected);
    }

    [Fact]
    public async Task Starttls_required_against_a_server_without_it_exits_2()
    {
        TestServers.RequireListening(TestServers.SinkPort);

        var run = await RunAsync("send", "--server", Server(TestServers.SinkPort), "--starttls", "--from", Sender, "--to", TestServers.UniqueRecipient(), "--body", "x");

        run.ExitCode.Should().Be(2, run.ToString());
        run.Error.Should().Contain("does not offer STARTTLS");
    }

    private static HashSet<string> ExistingFiles(string recipient)
    {
        var directory = Path.Combine(TestServers.PostfixMaildir, recipient, "new");
        return Directory.Exists(directory) ? [.. Directory.GetFiles(directory)] : [];
    }

    /// <summary>Waits for a file in the recipient's Maildir that was not there before and holds <paramref name="expected"/> after the trace headers.</summary>
    private static async Task<byte[]> WaitForNewFileAsync(string recipient, HashSet<string> before, byte[] expected)
    {
        var directory = Path.Combine(TestServers.PostfixMaildir, recipient, "new");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        byte[]? last = null;
        while (DateTime.UtcNow < deadline)
        {
            if (Directory.Exists(directory))
            {
                foreach (var file in Directory.GetFiles(directory).Where(f => !before.Contains(f)))
                {
                    last = await File.ReadAllBytesAsync(file);
                    if (Maildir.StripTraceHeaders(last).AsSpan().SequenceEqual(expected))
                    {
                        return last;
                    }
                }
            }

            await Task.Delay(50);
        }

        return last ?? throw new TimeoutException($"No new message for {recipient} in {directory}.");
    }

    private static byte[] WithoutLine(byte[] message, string line)
    {
        var needle = Encoding.ASCII.GetBytes(line);
        var at = message.AsSpan().IndexOf(needle);
        at.Should().BeGreaterThanOrEqualTo(0);
        return [.. message.AsSpan(0, at), .. message.AsSpan(at + needle.Length)];
    }
}
