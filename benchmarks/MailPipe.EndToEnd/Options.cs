using System.Globalization;

namespace MailPipe.EndToEnd;

/// <summary>Command-line options of the harness.</summary>
internal sealed class Options
{
    public int Rounds { get; private set; } = 3;

    /// <summary>Messages per run; <see langword="null"/> for the default of each size.</summary>
    public int? Messages { get; private set; }

    public IReadOnlyList<int> Sizes { get; private set; } = [1024, 64 * 1024, 1024 * 1024];

    public IReadOnlyList<int> Recipients { get; private set; } = [1, 10];

    /// <summary>Client names; empty for all.</summary>
    public IReadOnlyList<string> Clients { get; private set; } = [];

    /// <summary>Each in-process run stops after this long even if fewer messages were sent (slow clients).</summary>
    public TimeSpan TimeLimit { get; private set; } = TimeSpan.FromSeconds(3);

    /// <summary>Server-to-client delay of the loopback proxy; 0 for a direct connection.</summary>
    public int RttMs { get; private set; }

    public int Port { get; private set; } = 2529;

    /// <summary>Use the in-process <see cref="ChunkingSink"/> (PIPELINING + CHUNKING) instead of smtp-sink.</summary>
    public bool BuiltinSink { get; private set; }

    /// <summary>Send to a server already listening on 127.0.0.1 (e.g. the test Postfix on 2525, which offers CHUNKING) instead of starting smtp-sink.</summary>
    public int ServerPort { get; private set; }

    public string? OutputFile { get; private set; }

    public bool Verbose { get; private set; }

    /// <summary>Concurrent callers of the multi-caller clients (mailpipe-sender, mailkit-pool, mailpipe-batch2).</summary>
    public int Callers { get; private set; } = 32;

    public bool Help { get; private set; }

    /// <summary>Messages per run for a message size: enough for ≈ 0.3–1 s with a fast client, fewer through the delay proxy.</summary>
    public int MessagesFor(int size) => Messages ?? (RttMs > 0 ? 50 : size switch
    {
        <= 4096 => 2000,
        <= 128 * 1024 => 500,
        _ => 100,
    });

    public static string Usage(IEnumerable<string> clients) => $"""
        MailPipe.EndToEnd - one connection per client against Postfix's smtp-sink on 127.0.0.1, interleaved rounds.

        dotnet run -c Release --project benchmarks/MailPipe.EndToEnd -- [options]

          --rounds N          rounds per case (default 3); medians and min-max over rounds
          --messages N        messages per run (default: 2000 for <= 4 KiB, 500 for <= 128 KiB, 100 above; 50 with --rtt-ms)
          --sizes LIST        message sizes, e.g. 1k,64k,1m (default 1k,64k,1m)
          --recipients LIST   recipients per message, e.g. 1,10 (default 1,10)
          --clients LIST      among: {string.Join(", ", clients)} (default: all)
          --time-limit S      stop an in-process run after S seconds (default 3); the rate uses what was sent
          --rtt-ms N          put a loopback proxy in front of smtp-sink that holds every server-to-client chunk N ms;
                              reports round trips per message (elapsed / N ms)
          --port N            smtp-sink port on 127.0.0.1 (default 2529; another free port if taken)
          --sink builtin      use the harness's own minimal sink offering PIPELINING + CHUNKING (smtp-sink has no
                              CHUNKING): for round trips with BDAT; smtp-source is skipped
          --server-port N     send to a server already on 127.0.0.1:N instead of smtp-sink (e.g. Postfix 2525
                              from build/servers, which offers CHUNKING; unique recipients are not needed)
          --callers N         concurrent callers of the shared-client clients mailpipe-sender, mailkit-pool and
                              mailpipe-batch2 (default 32), e.g. --clients mailpipe-sender,mailkit-pool,mailpipe-batch2
          --output FILE       also write the markdown report to FILE
          --verbose           print every run
        """;

    public static Options Parse(string[] args)
    {
        var options = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            switch (name)
            {
                case "--rounds":
                    options.Rounds = PositiveInt(Value(), name);
                    break;
                case "--messages":
                    options.Messages = PositiveInt(Value(), name);
                    break;
                case "--sizes":
                    options.Sizes = [.. Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParseSize)];
                    break;
                case "--recipients":
                    options.Recipients = [.. Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(v => PositiveInt(v, name))];
                    break;
                case "--clients":
                    options.Clients = [.. Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
                    break;
                case "--time-limit":
                    options.TimeLimit = TimeSpan.FromSeconds(double.Parse(Value(), CultureInfo.InvariantCulture));
                    break;
                case "--rtt-ms":
                    options.RttMs = int.Parse(Value(), CultureInfo.InvariantCulture);
                    break;
                case "--port":
                    options.Port = PositiveInt(Value(), name);
                    break;
                case "--sink":
                    options.BuiltinSink = Value() == "builtin" ? true : throw new ArgumentException("--sink takes 'builtin' (smtp-sink is the default)");
                    break;
                case "--server-port":
                    options.ServerPort = PositiveInt(Value(), name);
                    break;
                case "--callers":
                    options.Callers = PositiveInt(Value(), name);
                    break;
                case "--output":
                    options.OutputFile = Value();
                    break;
                case "--verbose":
                    options.Verbose = true;
                    break;
                case "-h" or "--help":
                    options.Help = true;
                    break;
                default:
                    throw new ArgumentException($"Unknown option {name}.");
            }
        }

        return options;
    }

    public static string FormatSize(int size) => size switch
    {
        _ when size % (1024 * 1024) == 0 => $"{size / (1024 * 1024)} MiB",
        _ when size % 1024 == 0 => $"{size / 1024} KiB",
        _ => $"{size} B",
    };

    private static int ParseSize(string text)
    {
        var lower = text.ToLowerInvariant();
        var (digits, factor) = lower.EndsWith('k') ? (lower[..^1], 1024) : lower.EndsWith('m') ? (lower[..^1], 1024 * 1024) : (lower, 1);
        return checked(PositiveInt(digits, "--sizes") * factor);
    }

    private static int PositiveInt(string text, string name)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < 1)
        {
            throw new ArgumentException($"{name}: '{text}' is not a positive integer.");
        }

        return value;
    }
}
