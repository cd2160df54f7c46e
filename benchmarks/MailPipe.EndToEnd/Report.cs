using System.Globalization;
using System.Text;
using MailPipe.EndToEnd.Clients;

namespace MailPipe.EndToEnd;

/// <summary>The results of every run of one case and client, and the markdown report over all of them.</summary>
internal sealed class CaseResult(Workload workload, ClientRunner client)
{
    public Workload Workload { get; } = workload;

    public ClientRunner Client { get; } = client;

    public List<Measurement> Runs { get; } = [];

    /// <summary>With the delay proxy: per run, the delay plus the mean lateness of the chunks held during that run.</summary>
    public List<TimeSpan> Holds { get; } = [];

    /// <summary>With the delay proxy: per run, the elapsed time of the same run through the proxy at zero hold.</summary>
    public List<TimeSpan> Unheld { get; } = [];

    public string? Failure { get; set; }

    public double[] Rates => [.. Runs.Select(r => r.Messages / r.Elapsed.TotalSeconds)];
}

internal static class Report
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string Markdown(IReadOnlyList<CaseResult> results, Options options, string header)
    {
        var text = new StringBuilder();
        text.AppendLine(header).AppendLine();
        if (options.RttMs > 0)
        {
            text.AppendLine($"Server replies are held {options.RttMs} ms by the proxy. Round trips per message = elapsed / ({options.RttMs} ms × messages);");
            text.AppendLine("\"held\" divides by the hold each chunk really got in that run instead (the delay plus the proxy's mean lateness: timer");
            text.AppendLine("precision and scheduling), which removes most of the proxy's own error. Allocation and CPU are not shown in this mode");
            text.AppendLine("(the proxy runs in the same process). \"delays paid\" = (elapsed − elapsed of the same run through the proxy at");
            text.AppendLine("0 ms) / (delay × messages): the relay's own hops, the client's and the server's processing cancel out, leaving the");
            text.AppendLine("number of times the client waited for the link, as on a real link with this round-trip time.").AppendLine();
            text.AppendLine("| message | rcpts | client | msgs/s median (min–max) | round trips / msg: elapsed / delay, median (min–max) | elapsed / held | delays paid / msg | ms / msg at 0 ms | mean hold ms | msgs / run |");
            text.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        }
        else
        {
            text.AppendLine($"× {ClientCatalog.Reference} = median msgs/s over {ClientCatalog.Reference}'s median msgs/s in the same case.").AppendLine();
            text.AppendLine("| message | rcpts | client | msgs/s median (min–max) | MB/s | × " + ClientCatalog.Reference + " | allocated B / msg median (min–max) | client CPU µs / msg median (min–max) | msgs / run |");
            text.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|");
        }

        foreach (var group in results.GroupBy(r => (r.Workload.Size, r.Workload.Recipients.Count)))
        {
            var reference = group.FirstOrDefault(r => r.Client.Name == ClientCatalog.Reference && r.Runs.Count > 0);
            var referenceRate = reference is null ? double.NaN : Median(reference.Rates);
            foreach (var result in group)
            {
                var size = Options.FormatSize(result.Workload.Size);
                var recipients = result.Workload.Recipients.Count;
                if (result.Runs.Count == 0)
                {
                    text.AppendLine($"| {size} | {recipients} | {result.Client.Name} | failed: {Escape(result.Failure ?? "no run")} | | | | | |");
                    continue;
                }

                var rates = result.Rates;
                var messages = Range(result.Runs.Select(r => (double)r.Messages).ToArray(), "0");
                if (options.RttMs > 0)
                {
                    var trips = result.Runs.Select(r => r.Elapsed.TotalMilliseconds / r.Messages / options.RttMs).ToArray();
                    var held = result.Runs.Select((r, i) => r.Elapsed / result.Holds[i] / r.Messages).ToArray();
                    var hold = result.Holds.Select(h => h.TotalMilliseconds).ToArray();
                    var paid = result.Runs.Select((r, i) => (r.Elapsed - result.Unheld[i]).TotalMilliseconds / r.Messages / options.RttMs).ToArray();
                    var unheld = result.Runs.Select((r, i) => result.Unheld[i].TotalMilliseconds / r.Messages).ToArray();
                    text.AppendLine($"| {size} | {recipients} | {result.Client.Name} | {Summary(rates, "N0")} | {Summary(trips, "0.00")} | {Summary(held, "0.00")} | {Summary(paid, "0.00")} | {Summary(unheld, "0.000")} | {Report.Median(hold).ToString("0.00", Invariant)} | {messages} |");
                    continue;
                }

                var megabytes = Median(rates) * result.Workload.Size / 1e6;
                var ratio = Median(rates) / referenceRate;
                var allocated = result.Runs.All(r => r.AllocatedBytes >= 0)
                    ? Summary([.. result.Runs.Select(r => (double)r.AllocatedBytes / r.Messages)], "N0")
                    : "—";
                var cpu = Summary([.. result.Runs.Select(r => r.Cpu.TotalMicroseconds / r.Messages)], "N0");
                var failure = result.Failure is null ? string.Empty : $" (failed once: {Escape(result.Failure)})";
                text.AppendLine(Invariant, $"| {size} | {recipients} | {result.Client.Name}{failure} | {Summary(rates, "N0")} | {megabytes.ToString("N1", Invariant)} | {(double.IsNaN(ratio) ? "—" : ratio.ToString("0.00", Invariant))} | {allocated} | {cpu} | {messages} |");
            }
        }

        text.AppendLine().AppendLine("Clients:");
        foreach (var client in results.Select(r => r.Client).Distinct())
        {
            text.AppendLine($"- `{client.Name}`: {client.Description}");
        }

        return text.ToString();
    }

    public static double Median(double[] values)
    {
        if (values.Length == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private static string Summary(double[] values, string format) =>
        values.Length == 1
            ? values[0].ToString(format, Invariant)
            : $"{Median(values).ToString(format, Invariant)} ({values.Min().ToString(format, Invariant)}–{values.Max().ToString(format, Invariant)})";

    private static string Range(double[] values, string format) =>
        values.Min() == values.Max() ? values[0].ToString(format, Invariant) : $"{values.Min().ToString(format, Invariant)}–{values.Max().ToString(format, Invariant)}";

    private static string Escape(string text) => text.Replace('|', '/').ReplaceLineEndings(" ");
}
