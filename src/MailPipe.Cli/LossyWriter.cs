using System.Text;

namespace MailPipe.Cli;

/// <summary>
/// Standard error as the tool's own process uses it: a line that cannot be written (a full disk, <c>2&gt;/dev/full</c>;
/// a closed descriptor) is lost instead of ending the process, whose exit code still says what happened. Standard
/// error is where failures are said, so there is nowhere left to say this one.
/// </summary>
/// <param name="inner">The writer (<see cref="Console.Error"/>).</param>
internal sealed class LossyWriter(TextWriter inner) : TextWriter
{
    /// <inheritdoc/>
    public override Encoding Encoding => inner.Encoding;

    /// <inheritdoc/>
    public override string NewLine
    {
        get => inner.NewLine;
#pragma warning disable CS8765 // the base setter takes null as the default line break
        set => inner.NewLine = value;
#pragma warning restore CS8765
    }

    /// <inheritdoc/>
    public override void Write(char value) => Try(static (w, v) => w.Write(v), value);

    /// <inheritdoc/>
    public override void Write(string? value) => Try(static (w, v) => w.Write(v), value);

    /// <inheritdoc/>
    public override void Write(char[] buffer, int index, int count) => Try(static (w, v) => w.Write(v.buffer, v.index, v.count), (buffer, index, count));

    /// <inheritdoc/>
    public override void WriteLine(string? value) => Try(static (w, v) => w.WriteLine(v), value);

    /// <inheritdoc/>
    public override void Flush() => Try(static (w, _) => w.Flush(), 0);

    /// <inheritdoc/>
    public override Task WriteAsync(char value) => TryAsync(static (w, v) => w.WriteAsync(v), value);

    /// <inheritdoc/>
    public override Task WriteAsync(string? value) => TryAsync(static (w, v) => w.WriteAsync(v), value);

    /// <inheritdoc/>
    public override Task WriteLineAsync(string? value) => TryAsync(static (w, v) => w.WriteLineAsync(v), value);

    /// <inheritdoc/>
    public override Task FlushAsync() => TryAsync(static (w, _) => w.FlushAsync(), 0);

    private void Try<T>(Action<TextWriter, T> write, T value)
    {
        try
        {
            write(inner, value);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Lost: see the class.
        }
    }

    private async Task TryAsync<T>(Func<TextWriter, T, Task> write, T value)
    {
        try
        {
            await write(inner, value).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Lost: see the class.
        }
    }
}
