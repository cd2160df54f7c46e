using MailPipe.Sending;
using MailPipe.Transmission;

namespace MailPipe;

/// <summary>What the transaction sender needs of the session: the channel, the capabilities, the TLS state, the guard, telemetry.</summary>
public sealed partial class AsyncSmtpSession : ITransactionHost
{
    SmtpChannel ITransactionHost.Channel => _channel;

    bool ITransactionHost.IsTls => _channel.Connection?.TlsStream is not null;

    OperationScope ITransactionHost.BeginSend(CancellationToken cancellationToken) => BeginOperation(cancellationToken);

    void ITransactionHost.TransactionStarting(MailTransaction tx, bool chunking) => SessionTelemetry.StartTransaction(this, tx, chunking);
}
