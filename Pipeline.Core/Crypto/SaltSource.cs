using System.Security.Cryptography;

namespace Shadowsocks.Pipeline.Core.Crypto;

/// <summary>
/// Random salts for UDP packets and TCP streams from the system's CSPRNG, drawn 1 KiB at a time per thread: one
/// packet's or connection's 32 bytes cost 0.7 µs as a call of their own, most of it the call (OpenSSL's per-thread
/// generator, which also checks its process id with a system call each time). Bytes handed out are wiped from the buffer.
/// </summary>
internal static class SaltSource
{
    private const int BatchSize = 1024;

    [ThreadStatic]
    private static byte[]? t_batch;

    /// <summary>Unused bytes at the end of this thread's batch.</summary>
    [ThreadStatic]
    private static int t_available;

    public static void Fill(Span<byte> salt)
    {
        if (salt.Length > BatchSize)
        {
            RandomNumberGenerator.Fill(salt);
            return;
        }

        var batch = t_batch ??= new byte[BatchSize];
        if (t_available < salt.Length)
        {
            RandomNumberGenerator.Fill(batch);
            t_available = BatchSize;
        }

        var taken = batch.AsSpan(BatchSize - t_available, salt.Length);
        taken.CopyTo(salt);
        taken.Clear();
        t_available -= salt.Length;
    }
}
