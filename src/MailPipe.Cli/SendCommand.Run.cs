using System.CommandLine;
using System.CommandLine.Parsing;
using System.Net.Sockets;
using MimeKit;

namespace MailPipe.Cli;

/// <content>The run of <c>mailpipe send</c> with checked options: load, send or deliver to the embedded server, print.</content>
internal sealed partial class SendCommand
{
    /// <summary>Runs <c>mailpipe send</c> with checked options.</summary>
    /// <param name="options">The options.</param>
    /// <param name="output">Standard output: the results and the summary.</param>
    /// <param name="error">Standard error: diagnostics, the progress and the transcript.</param>
    /// <param name="environment">Standard input and whether the standard streams are terminals.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The exit code (see <see cref="ExitCodes"/>).</returns>
    public static async Task<int> RunAsync(SendOptions options, TextWriter output, TextWriter error, CliEnvironment environment, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(environment);
        if (options.Connection.HeloName is null && options.QuitAfter is not (QuitAfter.Connect or QuitAfter.Banner))
        {
            ResolverWarmUp.Start();
        }

        List<OutgoingMessage> messages;
        var loading = Task.Run(() => LoadMessages(options, environment), CancellationToken.None);
        try
        {
            // Reading may wait for as long as its input stays open (standard input, a FIFO): Ctrl+C or SIGTERM, which
            // the signal handler takes instead of ending the process, must end that wait too.
            messages = await loading.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"mailpipe send: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.UsageOrInput;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _ = DisposeWhenLoadedAsync(loading);
            OutgoingMessage.DeleteSpools();
            await error.WriteLineAsync($"mailpipe send: {BatchSender.Interrupted} while the messages were being read; nothing was sent").ConfigureAwait(false);
            return ExitCodes.ConnectionFailed;
        }

        try
        {
            var printer = new ResultPrinter(output, options.Json);
            var results = new List<MessageResult>(messages.Count);

            // Every message is read (a large file opened) before the connection is made: one that cannot be is reported now and costs nothing else.
            var sendable = new List<OutgoingMessage>(messages.Count);
            foreach (var message in messages)
            {
                if (message.InputError is null)
                {
                    sendable.Add(message);
                    continue;
                }

                var result = BatchSender.NotSent(message, ExitCodes.UsageOrInput, message.InputError);
                printer.Print(result);
                results.Add(result);
            }

            printer.Flush();

            BatchReport? report = null;
            var server = options.Connection.Server;
            if (sendable.Count > 0)
            {
                EmbeddedServer? embedded = null;
                Program.PreferInlineSocketCompletions();
                if (server is null)
                {
                    try
                    {
                        embedded = await EmbeddedServer.StartAsync(options.SaveDirectory, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or SocketException)
                    {
                        await error.WriteLineAsync($"mailpipe send: cannot start the embedded SMTP server with --save-dir {options.SaveDirectory}: {ex.Message}").ConfigureAwait(false);
                        return ExitCodes.UsageOrInput;
                    }

                    server = embedded.Address;
                    await error.WriteLineAsync($"mailpipe send: no --server given: delivering to an embedded SMTP server on {server}, saving to {options.SaveDirectory}").ConfigureAwait(false);
                }

                var progress = ProgressLine.Wanted(environment.ErrorIsTerminal, sendable.Count) ? new ProgressLine(error, sendable.Count) : null;
                var clearBeforeOutput = progress is not null && environment.OutputIsTerminal;
                void OnResult(MessageResult sent)
                {
                    var result = sent;
                    if (embedded is not null && result.Outcome == MessageOutcome.Accepted && embedded.TryTakeSaved(out var path))
                    {
                        result = result with { SavedTo = path };
                    }

                    if (clearBeforeOutput)
                    {
                        progress!.Clear();
                        printer.Print(result);
                        printer.Flush();
                    }
                    else
                    {
                        printer.Print(result);
                    }

                    results.Add(result);
                    progress?.Advance(result.Outcome == MessageOutcome.Accepted);
                }

                void OnNotice(string notice)
                {
                    // Between two connections: the results so far are out, then the line on standard error.
                    printer.Flush();
                    progress?.Clear();
                    error.WriteLine($"mailpipe send: {notice}");
                }

                try
                {
                    using var loggerFactory = options.Connection.Trace ? TranscriptLoggerProvider.CreateFactory(error) : null;
                    var sessionOptions = options.Connection.CreateSessionOptions(loggerFactory, options.AllowCleartextAuthentication);
                    var sender = new BatchSender(server, options.Connection.HeloName, options.Connection.TlsMode, options.Auth, sessionOptions, options.QuitAfter, options.Reconnects, options.MaxPerConnection);
                    report = await sender.SendAsync(sendable, OnResult, printer.Flush, cancellationToken, OnNotice).ConfigureAwait(false);
                }
                finally
                {
                    if (embedded is not null)
                    {
                        await embedded.DisposeAsync().ConfigureAwait(false);
                    }
                }

                printer.Flush();
                progress?.Complete();
                if (cancellationToken.IsCancellationRequested)
                {
                    await error.WriteLineAsync($"mailpipe send: {BatchSender.Interrupted}; every message is listed with its outcome").ConfigureAwait(false);
                }
                else if (report.SessionError is { } sessionError && !(environment.OutputIsTerminal && environment.ErrorIsTerminal))
                {
                    // The text summary repeats the reason (standard output may be a file); on one terminal, once is enough.
                    await error.WriteLineAsync($"mailpipe send: {sessionError}").ConfigureAwait(false);
                }
            }

            var summary = BatchSummary.From(results, report, server);
            printer.Print(summary);
            if (printer.Failure is { } failure)
            {
                // A reader that went away (| head -1) had what it wanted; but a user used to tools that die of SIGPIPE
                // must not take the batch for stopped and send it again.
                var lost = CliEnvironment.IsBrokenPipe(failure)
                    ? "standard output's reader went away (broken pipe) before the last results; the batch went on to its end without printing them: "
                    : $"writing the results to standard output failed ({failure.InnerException?.Message ?? failure.Message}); the batch went on without them: ";
                await error.WriteLineAsync("mailpipe send: " + lost + TerminalText.Sanitize(ResultPrinter.ToText(summary)).TrimEnd()).ConfigureAwait(false);
            }

            return summary.ExitCode;
        }
        finally
        {
            foreach (var message in messages)
            {
                message.Dispose();
            }
        }
    }
}
