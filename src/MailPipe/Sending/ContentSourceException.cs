namespace MailPipe;

/// <summary>
/// Marks an exception thrown by the caller's content source (its stream or pipe reader), so that only such a failure
/// is reported as <see cref="SmtpErrorCode.ContentReadFailed"/>; an exception from MailPipe's own code never is.
/// Never leaves the library: the source's exception is the inner exception of the <see cref="SmtpException"/>.
/// </summary>
internal sealed class ContentSourceException(Exception sourceException) : Exception(sourceException.Message, sourceException)
{
    /// <summary>The exception the content source threw.</summary>
    public Exception SourceException => InnerException!;

    /// <summary>
    /// The exception to report as the <see cref="SmtpErrorCode.ContentReadFailed"/> exception's inner exception: the
    /// source's, or for a content writer the one the writer threw (not the wrapper that kept it from being taken for
    /// one of the session's own, <see cref="WriterContent.ContentWriterException"/>).
    /// </summary>
    /// <param name="exception">What stopped the content: this marker, or an exception that is not one.</param>
    /// <returns>The exception to report.</returns>
    public static Exception Reported(Exception exception)
    {
        var source = exception is ContentSourceException marked ? marked.SourceException : exception;
        return source is WriterContent.ContentWriterException { InnerException: { } writerException } ? writerException : source;
    }
}
