// Issue #16: how fast can a server take 1,000 1 KiB messages from a warm client? One process sends ROUNDS batches of
// 1,000 messages (MailPipe's SendBatchAsync, one connection per batch) to each port in turn, so the client's JIT
// warm-up is paid in the first rounds; the later rounds show what the servers themselves allow. Usage:
//   dotnet run -c Release benchmarks/scripts/warm-batch.cs -- ROUNDS PORT [PORT...]
// e.g. `mailpipe serve --listen 127.0.0.1:2600` and smtp-sink (2528): ... -- 8 2600 2528
#:project ../../src/MailPipe/MailPipe.csproj
using System.Diagnostics;
using System.Text;
using MailPipe;

var rounds = int.Parse(args[0]);
var ports = args.Skip(1).Select(int.Parse).ToArray();
var content = new byte[1024];
var head = Encoding.ASCII.GetBytes("From: sender@example.test\r\nTo: rcpt@example.test\r\nSubject: warm batch\r\n\r\n");
head.CopyTo(content, 0);
for (var i = head.Length; i < content.Length; i++)
{
    content[i] = (i - head.Length) % 72 == 70 ? (byte)'\r' : (i - head.Length) % 72 == 71 ? (byte)'\n' : (byte)'x';
}

content[^2] = (byte)'\r';
content[^1] = (byte)'\n';
var envelope = new SmtpEnvelope("sender@example.test", "rcpt@example.test");
var rates = ports.ToDictionary(p => p, _ => new List<double>());
for (var round = 1; round <= rounds; round++)
{
    var line = new StringBuilder($"round {round}:");
    foreach (var port in ports)
    {
        var messages = Enumerable.Range(0, 1000).Select(_ => SmtpMessage.FromBytes(envelope, content)).ToList();
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions());
        var stopwatch = Stopwatch.StartNew();
        await session.ConnectAsync("127.0.0.1", port);
        await session.EhloAsync("client.example.test");
        var results = await session.SendBatchAsync(messages);
        stopwatch.Stop();
        await session.QuitAsync();
        var accepted = results.Count(r => r.Outcome == SmtpSendOutcome.Accepted);
        var rate = accepted / stopwatch.Elapsed.TotalSeconds;
        rates[port].Add(rate);
        line.Append($"  {port}: {rate,7:F0} msgs/s ({accepted} accepted)");
    }

    Console.WriteLine(line);
}

foreach (var (port, list) in rates)
{
    var late = list.Skip(list.Count / 2).Order().ToList();
    Console.WriteLine($"port {port}: median of the last {late.Count} rounds {late[late.Count / 2]:F0} msgs/s, best {list.Max():F0}");
}
