using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace MailPipe.Benchmarks;

/// <summary>Input bytes per second (decimal GB/s) from the mean time, for benchmarks with a <see cref="DataInput"/> parameter named "Input".</summary>
internal sealed class ThroughputColumn : IColumn
{
    public string Id => nameof(ThroughputColumn);

    public string ColumnName => "GB/s (input)";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => "Input bytes processed per second, 10^9 bytes/s, from Mean";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var statistics = summary[benchmarkCase]?.ResultStatistics;
        var input = benchmarkCase.Parameters["Input"];
        if (statistics is null || input is not DataInput kind || statistics.Mean <= 0)
        {
            return "-";
        }

        // Mean is in nanoseconds: bytes per nanosecond = GB/s.
        return (TextCorpus.SizeOf(kind) / statistics.Mean).ToString("0.000", CultureInfo.InvariantCulture);
    }

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public override string ToString() => ColumnName;
}
