using System.Diagnostics;
using System.Globalization;

namespace MailPipe.Cli;

/// <summary>
/// The progress of a batch on standard error when it is a terminal: one line, redrawn at most ten times a second,
/// <c>done/total messages, A accepted, N msgs/s</c>, ended by a line break when the batch is done. N counts the
/// accepted messages, as the summary's messages per second does (refused and unsent ones are done, not sent). Nothing at all is written when
/// standard error is redirected (a file, a pipe): no progress and no escape sequences.
/// </summary>
internal sealed class ProgressLine
{
    private static readonly long RedrawTicks = Stopwatch.Frequency / 10;

    private readonly TextWriter _error;
    private readonly int _total;
    private readonly long _start = Stopwatch.GetTimestamp();
    private long _lastDraw;
    private int _done;
    private int _accepted;
    private bool _drawn;

    /// <summary>Creates the progress line.</summary>
    /// <param name="error">Standard error, a terminal.</param>
    /// <param name="total">The messages of the batch.</param>
    public ProgressLine(TextWriter error, int total)
    {
        _error = error;
        _total = total;
    }

    /// <summary>Whether a batch shows progress: more than one message and standard error a terminal.</summary>
    /// <param name="errorIsTerminal">Whether standard error is a terminal.</param>
    /// <param name="total">The messages of the batch.</param>
    /// <returns>Whether to show it.</returns>
    public static bool Wanted(bool errorIsTerminal, int total) => errorIsTerminal && total > 1;

    /// <summary>Counts a message whose outcome is known; redraws when the last drawing is older than 0.1 s.</summary>
    /// <param name="accepted">Whether the server accepted the message (only those count in the rate).</param>
    public void Advance(bool accepted)
    {
        _done++;
        if (accepted)
        {
            _accepted++;
        }

        var now = Stopwatch.GetTimestamp();
        if (now - _lastDraw >= RedrawTicks)
        {
            _lastDraw = now;
            Draw(now);
        }
    }

    /// <summary>Erases the line (before other output goes to the same terminal); the next <see cref="Advance"/> draws it again.</summary>
    public void Clear()
    {
        if (_drawn)
        {
            _error.Write("\r\u001b[K");
            _error.Flush();
            _drawn = false;
            _lastDraw = 0;
        }
    }

    /// <summary>Draws the final state and ends the line.</summary>
    public void Complete()
    {
        Draw(Stopwatch.GetTimestamp());
        _error.Write('\n');
        _error.Flush();
        _drawn = false;
    }

    private void Draw(long now)
    {
        var seconds = Stopwatch.GetElapsedTime(_start, now).TotalSeconds;
        var rate = seconds > 0 ? _accepted / seconds : 0;
        _error.Write(string.Create(CultureInfo.InvariantCulture, $"\r\u001b[K{_done}/{_total} messages, {_accepted} accepted, {rate:0} msgs/s"));
        _error.Flush();
        _drawn = true;
    }
}
