using System.Reflection;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// Every client the harness knows, in report order. MailPipe's envelope API (<c>SendAsync</c>, <c>SendBatchAsync</c>)
/// is measured by <c>MailPipeSendClient</c> when the library has it (MAILPIPE_HAS_SEND). To add a client: write an <see cref="InProcessClientRunner"/> (copy <see cref="MailPipeSessionClient"/>, open and
/// EHLO in <c>OpenAsync</c>, one message per <c>SendAsync(index, isLast)</c>, or a whole batch on the last call) and list it
/// here. Nothing else changes: options, rounds, statistics and the report pick it up by <see cref="ClientRunner.Name"/>.
/// </summary>
internal static class ClientCatalog
{
    public static IReadOnlyList<ClientRunner> All { get; } =
    [
        new MailPipeSessionClient(),
        new MailPipeRawPipelinedClient(),

#if MAILPIPE_HAS_SEND
        new MailPipeSendClient(batch: false),
        new MailPipeSendClient(batch: true),
#endif
        new MailKitClient(noDelay: false),
        new MailKitClient(noDelay: true),
        new SystemNetMailClient(),
        new SmtpSourceClient(),
    ];

    /// <summary>The reference for the "× MailKit" column.</summary>
    public const string Reference = "mailkit";

    /// <summary>A note when the library has grown a pipelined send API that no runner covers yet.</summary>
    public static string? MissingRunnerNote()
    {
        var sendMethods = typeof(AsyncSmtpSession).Assembly.GetExportedTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            .Where(m => m.Name == "SendAsync")
            .Select(m => $"{m.DeclaringType!.Name}.{m.Name}")
            .Distinct()
            .ToList();
        return sendMethods.Count > 0 && All.All(c => !c.Name.StartsWith("mailpipe-send", StringComparison.Ordinal))
            ? $"Note: the MailPipe build has {string.Join(", ", sendMethods)} but no 'mailpipe-send' runner measures it yet (see Clients/ClientCatalog.cs)."
            : null;
    }
}
