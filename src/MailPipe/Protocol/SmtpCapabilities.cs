using System.Globalization;

namespace MailPipe;

/// <summary>One service extension advertised in the reply to EHLO: a keyword and its parameters (RFC 5321 §4.1.1.1).</summary>
/// <param name="Keyword">The EHLO keyword, such as <c>SIZE</c> or <c>AUTH</c>, as the server spelled it.</param>
/// <param name="Parameters">The parameters after the keyword, split on spaces (for <c>AUTH PLAIN LOGIN</c>: <c>PLAIN</c>, <c>LOGIN</c>).</param>
/// <param name="Line">The whole reply line, the seed's <c>CapabilityAt()</c> item.</param>
public sealed record SmtpCapability(string Keyword, IReadOnlyList<string> Parameters, string Line)
{
    /// <inheritdoc/>
    public override string ToString() => Line;
}

/// <summary>
/// The service extensions a server advertised in its reply to EHLO (RFC 5321 §4.1.1.1, §2.2): an ordered list with
/// case-insensitive look-up, and typed accessors for the extensions MailPipe uses. Empty before EHLO, after HELO, and
/// after STARTTLS until EHLO is sent again (RFC 3207 §4.2). Enumerable (<c>foreach</c>, LINQ) in the server's order;
/// <see cref="ToString"/> gives the lines as the server wrote them.
/// </summary>
public sealed class SmtpCapabilities : IReadOnlyList<SmtpCapability>
{
    private readonly SmtpCapability[] _items;
    private readonly Dictionary<string, SmtpCapability> _byKeyword;

    /// <summary>No extensions (before EHLO, or after HELO).</summary>
    public static SmtpCapabilities None { get; } = new(null, []);

    private SmtpCapabilities(string? domain, SmtpCapability[] items)
    {
        Domain = domain;
        _items = items;
        _byKeyword = new Dictionary<string, SmtpCapability>(items.Length, StringComparer.OrdinalIgnoreCase);
        foreach (var item in items)
        {
            _byKeyword.TryAdd(item.Keyword, item);
            IsCourier |= item.Line.StartsWith("XVERP=Courier", StringComparison.OrdinalIgnoreCase);
        }

        IsCourier |= _byKeyword.ContainsKey("XEXDATA");
    }

    /// <summary>
    /// Whether the EHLO reply is Courier-MTA's (<c>XVERP=Courier</c>, <c>XEXDATA</c>): its esmtpd (1.0.16) silently
    /// discards the commands that arrive in the same read as an end of data. Decided once per EHLO reply, not per send.
    /// </summary>
    internal bool IsCourier { get; }

    /// <summary>Reads the extensions from a positive reply to EHLO: the first line is the server's domain and greeting, each further line an extension.</summary>
    /// <param name="ehloReply">The reply to EHLO.</param>
    /// <returns>The capabilities, or <see cref="None"/> when the reply is not positive (2yz).</returns>
    public static SmtpCapabilities FromEhloReply(SmtpReply ehloReply)
    {
        ArgumentNullException.ThrowIfNull(ehloReply);
        if (!ehloReply.IsPositiveCompletion)
        {
            return None;
        }

        var lines = ehloReply.Lines;
        var items = new List<SmtpCapability>(lines.Count);
        for (var i = 1; i < lines.Count; i++)
        {
            var parts = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parts.Length == 0)
            {
                continue;
            }

            items.Add(new SmtpCapability(parts[0], parts[1..], lines[i]));
        }

        var domain = lines[0].Split(' ', 2)[0];
        return new SmtpCapabilities(domain, [.. items]);
    }

    /// <summary>The server's domain from the first line of the EHLO reply, or <see langword="null"/> before EHLO.</summary>
    public string? Domain { get; }

    /// <summary>The number of extensions (the seed's <c>NumCapabilities()</c>).</summary>
    public int Count => _items.Length;

    /// <summary>The extension at <paramref name="index"/>, in the server's order (the seed's <c>CapabilityAt()</c>).</summary>
    /// <param name="index">0 to <see cref="Count"/> - 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative or not less than <see cref="Count"/> (as <see cref="Items"/>' indexer and <see cref="List{T}"/>).</exception>
    public SmtpCapability this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _items.Length);
            return _items[index];
        }
    }

    /// <summary>Every extension, in the server's order.</summary>
    public IReadOnlyList<SmtpCapability> Items => _items;

    /// <summary>Whether the keyword was advertised, case-insensitively (the seed's <c>HasCapability()</c>).</summary>
    /// <param name="keyword">An EHLO keyword such as <c>PIPELINING</c>.</param>
    /// <returns><see langword="true"/> when advertised.</returns>
    public bool Contains(string keyword) => _byKeyword.ContainsKey(keyword);

    /// <summary>Looks up an extension by keyword, case-insensitively. A keyword the server advertised twice (some do, with different parameters) is found as its first line; <see cref="Items"/> keeps both.</summary>
    /// <param name="keyword">An EHLO keyword.</param>
    /// <param name="capability">The extension, when advertised.</param>
    /// <returns><see langword="true"/> when advertised.</returns>
    public bool TryGet(string keyword, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SmtpCapability? capability) =>
        _byKeyword.TryGetValue(keyword, out capability);

    /// <summary>
    /// The SIZE extension's maximum message size in bytes (RFC 1870 §4); 0 when SIZE is advertised without a limit;
    /// <see langword="null"/> when not advertised or not a number. Without a standard <c>SIZE</c> line, the
    /// pre-standard <c>SIZE=1048576</c> form (as <c>AUTH=</c>; smtp4dev sends it when given a maximum size) counts too.
    /// </summary>
    public long? MaxMessageSize =>
        TryGet("SIZE", out var size)
            ? size.Parameters.Count == 0 ? 0 : ParseSize(size.Parameters[0])
            : _items.FirstOrDefault(static item => item.Keyword.StartsWith("SIZE=", StringComparison.OrdinalIgnoreCase)) is { Parameters.Count: 0 } equalsForm
                ? ParseSize(equalsForm.Keyword[5..])
                : null;

    private static long? ParseSize(string value) =>
        long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) ? limit : null;

    /// <summary>PIPELINING (RFC 2920).</summary>
    public bool SupportsPipelining => Contains("PIPELINING");

    /// <summary>CHUNKING, the BDAT command (RFC 3030).</summary>
    public bool SupportsChunking => Contains("CHUNKING");

    /// <summary>BINARYMIME (RFC 3030 §3).</summary>
    public bool SupportsBinaryMime => Contains("BINARYMIME");

    /// <summary>8BITMIME (RFC 6152).</summary>
    public bool Supports8BitMime => Contains("8BITMIME");

    /// <summary>SMTPUTF8 (RFC 6531).</summary>
    public bool SupportsSmtpUtf8 => Contains("SMTPUTF8");

    /// <summary>DSN (RFC 3461).</summary>
    public bool SupportsDsn => Contains("DSN");

    /// <summary>STARTTLS (RFC 3207).</summary>
    public bool SupportsStartTls => Contains("STARTTLS");

    /// <summary>ENHANCEDSTATUSCODES (RFC 2034).</summary>
    public bool SupportsEnhancedStatusCodes => Contains("ENHANCEDSTATUSCODES");

    /// <summary>REQUIRETLS (RFC 8689).</summary>
    public bool SupportsRequireTls => Contains("REQUIRETLS");

    /// <summary>Enumerates the extensions in the server's order.</summary>
    /// <returns>The enumerator.</returns>
    public IEnumerator<SmtpCapability> GetEnumerator() => ((IEnumerable<SmtpCapability>)_items).GetEnumerator();

    /// <inheritdoc/>
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The extension lines as the server wrote them, comma-separated (<c>PIPELINING, SIZE 10485760, …</c>); empty when there are none.</summary>
    /// <returns>The lines.</returns>
    public override string ToString() => string.Join(", ", _items.Select(static item => item.Line));

    /// <summary>
    /// The SASL mechanisms of the AUTH extension (RFC 4954 §3), upper-case, each once, in the server's order; empty when
    /// AUTH is not advertised. Every AUTH line counts (a server may spread its mechanisms over several), and so does the
    /// pre-standard <c>AUTH=LOGIN PLAIN</c> form (old Outlook and Exchange clients needed it; some servers send nothing
    /// else), after the standard lines.
    /// </summary>
    public IReadOnlyList<string> AuthenticationMechanisms =>
        _items.Where(static item => item.Keyword.Equals("AUTH", StringComparison.OrdinalIgnoreCase))
            .SelectMany(static item => item.Parameters)
            .Concat(_items.Where(static item => item.Keyword.StartsWith("AUTH=", StringComparison.OrdinalIgnoreCase))
                .SelectMany(static item => item.Parameters.Prepend(item.Keyword[5..])))
            .Where(static m => m.Length > 0)
            .Select(static m => m.ToUpperInvariant())
            .Distinct(StringComparer.Ordinal)
            .ToArray();
}
