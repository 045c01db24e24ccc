namespace Shadowsocks.Pipeline.Stages.ReadHeader;

/// <summary>
/// What the header stage has of a header that is not complete yet, kept on the session while it waits for more bytes
/// (<see cref="Connections.WaitForBytesStage"/>): when it began, the salt's bytes so far and the plaintext decrypted so far. The plaintext is a copy
/// of exactly that length, not a pooled buffer, so a session that waits holds nothing of the pool's and a session torn
/// down while it waits has nothing to give back. (The decryptor, on the session, keeps its own partial chunk.)
/// </summary>
internal sealed class HeaderProgress(int saltSize)
{
    /// <summary>When the stage first worked on the header (its span's start, <see cref="DateTime.UtcNow"/> as spans have it).</summary>
    public DateTime Started { get; init; }

    /// <summary>The stream's salt, as far as it has arrived (for the replay filter).</summary>
    public byte[] Salt { get; } = new byte[saltSize];

    /// <summary>How many bytes of <see cref="Salt"/> have arrived.</summary>
    public int SaltFilled { get; set; }

    /// <summary>The plaintext decrypted so far (the header's first bytes), or empty.</summary>
    public byte[] Plain { get; set; } = [];
}
