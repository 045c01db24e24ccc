using System.Globalization;
using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Protocol;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>A Shadowsocks client's first bytes, written by hand: the salt (or IV), then the address header and a payload, encrypted.</summary>
internal static class FirstRequest
{
    public static byte[] For(RelayOptions options, ShadowsocksAddress destination, ReadOnlySpan<byte> payload = default)
    {
        var plain = new byte[AddressHeader.MaxDomainLength + 4 + payload.Length];
        var header = AddressHeader.Write(destination, plain);
        payload.CopyTo(plain.AsSpan(header));
        using var encryptor = ShadowsocksStreamCodec.CreateEncryptor(options.Cipher, options.MasterKey);
        var wire = new byte[encryptor.MaxOutputSize(header + payload.Length)];
        return wire[..encryptor.Encrypt(plain.AsSpan(0, header + payload.Length), wire)];
    }

    /// <summary>
    /// TCP sockets in state SYN-SENT toward <paramref name="port"/> on loopback, all processes' (<c>/proc/net/tcp</c>):
    /// connects that a listener with a full accept queue holds.
    /// </summary>
    public static int SynSentTo(int port)
    {
        var remote = $":{port.ToString("X4", CultureInfo.InvariantCulture)}";
        return File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(static l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => f[2].EndsWith(remote, StringComparison.Ordinal) && f[3] == "02");
    }

    /// <summary>Closes <paramref name="socket"/> with a reset (linger on, zero time).</summary>
    public static void Reset(Socket socket)
    {
        socket.LingerState = new LingerOption(true, 0);
        socket.Dispose();
    }
}
