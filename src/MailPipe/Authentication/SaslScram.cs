using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace MailPipe.Authentication;

/// <summary>
/// SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677) without channel binding (GS2 header <c>n,</c>). The server's
/// signature in the server-final message is verified (mutual authentication, RFC 5802 §5.1): a 235 without it, or
/// with a wrong one, is refused and the connection closed. Postfix/Cyrus send the server-final message as a 334
/// challenge; it is answered with an empty response (RFC 4954 §4). A malformed server-first message or a server error
/// (<c>e=</c>) is answered with <c>*</c> (<see cref="SaslMechanism.Cancel"/>): the server claimed nothing, the session stays usable.
/// </summary>
internal sealed class SaslScram : SaslMechanism
{
    /// <summary>Upper bound on the server's iteration count, so that a hostile server cannot make the client spin (RFC 7677 §4 asks at least 4096).</summary>
    internal const int MaxIterations = ScramDerivation.MaxIterations;

    private readonly HashAlgorithmName _hash;
    private readonly string _userName;
    private readonly byte[] _password;
    private readonly string _gs2Header;
    private readonly string _clientNonce;
    private string? _clientFirstBare;
    private byte[]? _expectedServerSignature;
    private int _step;
    private bool _verified;

    /// <summary>Creates a SCRAM client.</summary>
    /// <param name="hash"><see cref="HashAlgorithmName.SHA256"/> or <see cref="HashAlgorithmName.SHA1"/>.</param>
    /// <param name="userName">The user name; SASLprep'd and escaped.</param>
    /// <param name="password">The password; SASLprep'd.</param>
    /// <param name="authorizationId">The authorization identity or <see langword="null"/>.</param>
    /// <param name="clientNonce">The client nonce (printable ASCII without ','); <see langword="null"/> for 24 random bytes in base64. Tests inject the RFC's nonce.</param>
    /// <exception cref="ArgumentException">A hash other than SHA-1/SHA-256, or a value SASLprep refuses.</exception>
    public SaslScram(HashAlgorithmName hash, string userName, string password, string? authorizationId, string? clientNonce = null)
        : base(hash == HashAlgorithmName.SHA256 ? SmtpAuthenticationMechanisms.ScramSha256
            : hash == HashAlgorithmName.SHA1 ? SmtpAuthenticationMechanisms.ScramSha1
            : throw new ArgumentException("SCRAM is implemented with SHA-1 and SHA-256 only.", nameof(hash)))
    {
        _hash = hash;
        _userName = EscapeName(SaslPrep.Prepare(userName, nameof(userName)));
        _password = Encoding.UTF8.GetBytes(SaslPrep.Prepare(password, nameof(password), allowEmpty: true, secret: true));
        _gs2Header = authorizationId is null ? "n,," : $"n,a={EscapeName(SaslPrep.Prepare(authorizationId, nameof(authorizationId)))},";
        _clientNonce = clientNonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
    }

    public override ValueTask<ReadOnlyMemory<byte>?> GetInitialResponseAsync(CancellationToken cancellationToken)
    {
        _clientFirstBare = $"n={_userName},r={_clientNonce}";
        return Result(Encoding.UTF8.GetBytes(_gs2Header + _clientFirstBare));
    }

    public override ValueTask<ReadOnlyMemory<byte>?> RespondAsync(ReadOnlyMemory<byte> challenge, CancellationToken cancellationToken)
    {
        switch (_step++)
        {
            case 0:
                if (Decode(challenge, out var serverFirst) is { } notText)
                {
                    return Cancel(notText);
                }

                return ClientFinal(serverFirst, cancellationToken, out var clientFinal) is { } problem ? Cancel(problem) : Result(clientFinal);
            case 1:
                // A server-final message that is not text carries no signature either: the server proved nothing.
                if (Decode(challenge, out var serverFinal) is { } garbled)
                {
                    throw Failure(garbled + "; the connection was closed.");
                }

                return VerifyServerFinal(serverFinal) is { } serverError ? Cancel(serverError) : Result(ReadOnlyMemory<byte>.Empty);
            default:
                return Result(null);
        }
    }

    public override string? CheckSuccess() =>
        _verified ? null : $"AUTH {Name}: the server reported success without proving that it knows the password (no verified server signature, RFC 5802 §5.1); the connection was closed.";

    protected override void Dispose(bool disposing)
    {
        CryptographicOperations.ZeroMemory(_password);
        base.Dispose(disposing);
    }

    /// <summary>Computes client-final-message from server-first-message (RFC 5802 §3, §7).</summary>
    /// <returns>What is wrong with the server-first message (the exchange is then cancelled), or <see langword="null"/> with <paramref name="clientFinal"/> set.</returns>
    private string? ClientFinal(string serverFirst, CancellationToken cancellationToken, out byte[] clientFinal)
    {
        clientFinal = [];
        if (_clientFirstBare is null)
        {
            return "the server sent a challenge before the client-first message";
        }

        string? nonce = null, salt = null, iterations = null;
        foreach (var attribute in serverFirst.Split(','))
        {
            if (attribute.Length < 2 || attribute[1] != '=')
            {
                return "the server-first message is malformed (RFC 5802 §7)";
            }

            switch (attribute[0])
            {
                case 'r': nonce = attribute[2..]; break;
                case 's': salt = attribute[2..]; break;
                case 'i': iterations = attribute[2..]; break;
                case 'm': return "the server requires an unsupported mandatory extension (RFC 5802 §5.1)";
                case 'e': return $"the server reported an error ({ErrorValue(attribute[2..])})";
                default: break;
            }
        }

        if (nonce is null || salt is null || iterations is null)
        {
            return "the server-first message lacks r=, s= or i= (RFC 5802 §7)";
        }

        if (!nonce.StartsWith(_clientNonce, StringComparison.Ordinal) || nonce.Length == _clientNonce.Length)
        {
            return "the server's nonce does not extend the client's (RFC 5802 §5.1)";
        }

        if (!int.TryParse(iterations, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count < 1 || count > MaxIterations)
        {
            return $"the iteration count must be 1 to {MaxIterations}";
        }

        byte[] saltBytes;
        try
        {
            saltBytes = Convert.FromBase64String(salt);
        }
        catch (FormatException)
        {
            return "the salt is not base64";
        }

        var withoutProof = $"c={Convert.ToBase64String(Encoding.UTF8.GetBytes(_gs2Header))},r={nonce}";
        var authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{serverFirst},{withoutProof}");
        var saltedPassword = ScramDerivation.Hi(_password, saltBytes, count, _hash, cancellationToken);
        try
        {
            var clientKey = Hmac(saltedPassword, "Client Key"u8);
            var storedKey = Hash(clientKey);
            var clientSignature = Hmac(storedKey, authMessage);
            var proof = new byte[clientKey.Length];
            for (var i = 0; i < proof.Length; i++)
            {
                proof[i] = (byte)(clientKey[i] ^ clientSignature[i]);
            }

            _expectedServerSignature = Hmac(Hmac(saltedPassword, "Server Key"u8), authMessage);
            CryptographicOperations.ZeroMemory(clientKey);
            clientFinal = Encoding.UTF8.GetBytes($"{withoutProof},p={Convert.ToBase64String(proof)}");
            return null;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(saltedPassword);
        }
    }

    /// <summary>Checks <c>v=ServerSignature</c> in constant time (RFC 5802 §3).</summary>
    /// <returns>The server's error (<c>e=</c>: it refuses, the exchange is cancelled), or <see langword="null"/> when the signature is right.</returns>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.AuthenticationError"/>: no signature or a wrong one; the server proved nothing and the connection is closed.</exception>
    private string? VerifyServerFinal(string serverFinal)
    {
        if (serverFinal.StartsWith("e=", StringComparison.Ordinal))
        {
            return $"the server reported an error ({ErrorValue(serverFinal.Split(',')[0][2..])})";
        }

        var attribute = serverFinal.Split(',')[0];
        byte[] signature;
        try
        {
            signature = attribute.StartsWith("v=", StringComparison.Ordinal) ? Convert.FromBase64String(attribute[2..]) : [];
        }
        catch (FormatException)
        {
            signature = [];
        }

        if (_expectedServerSignature is null || !CryptographicOperations.FixedTimeEquals(signature, _expectedServerSignature))
        {
            throw Failure("the server's signature is wrong: it does not know the password (RFC 5802 §5.1); the connection was closed.");
        }

        _verified = true;
        return null;
    }

    /// <summary>A server-error-value (RFC 5802 §7: such as <c>invalid-proof</c>) for a message: printable ASCII of at most 64 characters, else a placeholder (the text comes from the server).</summary>
    private static string ErrorValue(string value) =>
        value.Length is > 0 and <= 64 && value.All(static c => c is > ' ' and <= '~') ? value : "unreadable error value";

    /// <summary>The challenge as text: <see langword="null"/>, or what is wrong with it.</summary>
    private static string? Decode(ReadOnlyMemory<byte> challenge, out string text)
    {
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(challenge.Span);
            return null;
        }
        catch (DecoderFallbackException)
        {
            text = "";
            return "the challenge is not UTF-8";
        }
    }

#pragma warning disable CA5350 // SCRAM-SHA-1 is defined on SHA-1 (RFC 5802); SCRAM-SHA-256 is preferred when offered.
    private byte[] Hmac(byte[] key, ReadOnlySpan<byte> data) =>
        _hash == HashAlgorithmName.SHA256 ? HMACSHA256.HashData(key, data) : HMACSHA1.HashData(key, data);

    private byte[] Hash(byte[] data) => _hash == HashAlgorithmName.SHA256 ? SHA256.HashData(data) : SHA1.HashData(data);
#pragma warning restore CA5350

    /// <summary>saslname (RFC 5802 §5.1): ',' → "=2C", '=' → "=3D".</summary>
    private static string EscapeName(string name) => name.Replace("=", "=3D", StringComparison.Ordinal).Replace(",", "=2C", StringComparison.Ordinal);
}
