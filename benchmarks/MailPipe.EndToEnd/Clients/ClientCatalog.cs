namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// Every client the harness knows, in report order. To add a client: write an <see cref="InProcessClientRunner"/>
/// (copy <see cref="MailPipeSessionClient"/>, open and EHLO in <c>OpenAsync</c>, one message per <c>SendAsync(index, isLast)</c>, or a whole batch on the last call) and list it
/// here. Nothing else changes: options, rounds, statistics and the report pick it up by <see cref="ClientRunner.Name"/>.
/// </summary>
internal static class ClientCatalog
{
    public static IReadOnlyList<ClientRunner> All { get; } =
    [
        new MailPipeSessionClient(),
        new MailPipeRawPipelinedClient(),
        new MailPipeSendClient(batch: false),
        new MailPipeSendClient(batch: true),
        new MailPipeOtelClient(),
        new MailPipeMimeKitClient(batch: false),
        new MailPipeMimeKitClient(batch: true),
        new MailPipeCliClient(wholeProcess: false),
        new MailPipeCliClient(wholeProcess: true),
        new MailKitClient(noDelay: false),
        new MailKitClient(noDelay: true),
        new SystemNetMailClient(),
        new SmtpSourceClient(),
        new MailPipeSenderClient(),
        new MailKitPoolClient(),
        new MailPipeBatch2Client(),
        new RawSocket2Client(),
    ];

    /// <summary>The reference for the "× MailKit" column.</summary>
    public const string Reference = "mailkit";
}
