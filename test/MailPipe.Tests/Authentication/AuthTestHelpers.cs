#pragma warning disable CA5350 // SCRAM-SHA-1 is what the test checks.
using System.Security.Cryptography;
using System.Text;

namespace MailPipe.Tests.Authentication;

/// <summary>The server side of SCRAM (RFC 5802 §3), enough to check MailPipe's client against an independent computation.</summary>
public sealed class TestScramServer(HashAlgorithmName hash, string user, string password, int iterations = 4096)
{
    private readonly byte[] _salt = RandomNumberGenerator.GetBytes(16);
    private string _clientFirstBare = "";
    private string _serverFirst = "";
    private string _nonce = "";

    public string? AuthorizationId { get; private set; }

    /// <summary>Reads client-first, returns server-first (<c>r=…,s=…,i=…</c>).</summary>
    public string ServerFirst(string clientFirst)
    {
        clientFirst.Should().StartWith("n,", "no channel binding");
        var secondComma = clientFirst.IndexOf(',', 2);
        var authzid = clientFirst[2..secondComma];
        AuthorizationId = authzid.Length == 0 ? null : authzid[2..];
        _clientFirstBare = clientFirst[(secondComma + 1)..];
        var parts = _clientFirstBare.Split(',');
        parts[0].Should().Be("n=" + user);
        _nonce = parts[1][2..] + "srv-" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(9));
        _serverFirst = $"r={_nonce},s={Convert.ToBase64String(_salt)},i={iterations}";
        return _serverFirst;
    }

    /// <summary>Checks client-final's proof; returns server-final (<c>v=…</c>) or <see langword="null"/> when the proof is wrong.</summary>
    public string? ServerFinal(string clientFinal)
    {
        var proofAt = clientFinal.LastIndexOf(",p=", StringComparison.Ordinal);
        var withoutProof = clientFinal[..proofAt];
        var proof = Convert.FromBase64String(clientFinal[(proofAt + 3)..]);
        withoutProof.Should().EndWith(",r=" + _nonce);
        var authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{_serverFirst},{withoutProof}");
        var length = hash == HashAlgorithmName.SHA256 ? 32 : 20;
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), _salt, iterations, hash, length);
        var clientKey = Hmac(salted, "Client Key"u8.ToArray());
        var storedKey = hash == HashAlgorithmName.SHA256 ? SHA256.HashData(clientKey) : SHA1.HashData(clientKey);
        var signature = Hmac(storedKey, authMessage);
        var recovered = proof.Select((b, i) => (byte)(b ^ signature[i])).ToArray();
        var recoveredStored = hash == HashAlgorithmName.SHA256 ? SHA256.HashData(recovered) : SHA1.HashData(recovered);
        if (!recoveredStored.SequenceEqual(storedKey))
        {
            return null;
        }

        return "v=" + Convert.ToBase64String(Hmac(Hmac(salted, "Server Key"u8.ToArray()), authMessage));
    }

    private byte[] Hmac(byte[] key, byte[] data) => hash == HashAlgorithmName.SHA256 ? HMACSHA256.HashData(key, data) : HMACSHA1.HashData(key, data);
}

public static class AuthTestData
{
    /// <summary>The user name of the scripted exchanges.</summary>
    public const string User = "testuser";

    /// <summary>The password of the scripted exchanges.</summary>
    public const string Password = "Pa55-Secret-Word";

    public static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    public static string Text(string base64Line) => Encoding.UTF8.GetString(Convert.FromBase64String(base64Line.Trim()));

    /// <summary>
    /// An NTLM type-2 (challenge) message shaped like Cyrus SASL's: flags 0x00028205 (Unicode, RequestTarget, NTLM,
    /// AlwaysSign, TargetTypeServer), target name "LOCALHOST", no TargetInfo (MS-NLMP §2.2.1.2).
    /// </summary>
    public static byte[] NtlmChallenge()
    {
        var target = Encoding.Unicode.GetBytes("LOCALHOST");
        var message = new byte[48 + target.Length];
        "NTLMSSP\0"u8.CopyTo(message);
        BitConverter.TryWriteBytes(message.AsSpan(8), 2);
        BitConverter.TryWriteBytes(message.AsSpan(12), (short)target.Length);
        BitConverter.TryWriteBytes(message.AsSpan(14), (short)target.Length);
        BitConverter.TryWriteBytes(message.AsSpan(16), 48);
        BitConverter.TryWriteBytes(message.AsSpan(20), 0x00028205);
        RandomNumberGenerator.Fill(message.AsSpan(24, 8));
        BitConverter.TryWriteBytes(message.AsSpan(40), (short)0);
        BitConverter.TryWriteBytes(message.AsSpan(42), (short)0);
        BitConverter.TryWriteBytes(message.AsSpan(44), 48 + target.Length);
        target.CopyTo(message.AsSpan(48));
        return message;
    }
}
