using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// Encrypt and decrypt one datagram in place (<c>salt | sealed payload | tag</c>, or <c>IV | ciphertext</c>).
/// Datagrams are independent, so these run in parallel and unordered, with the <c>udp</c> stage options.
/// </summary>
internal static class UdpCipherStages
{
    /// <summary>
    /// Seals each datagram with a fresh salt. A server gives its replay filter as <paramref name="remember"/>: the salt
    /// goes into it, so its answer sent back to it (a reflection, which the one key both ways would read as a request)
    /// is dropped as a replay, as ss-libev's aead_encrypt_all adds its salts to its Bloom filter. (A transform-many
    /// block, as the others: a datagram whose work threw goes on as nothing.)
    /// </summary>
    public static TransformManyBlock<Datagram, Datagram> Encrypt(
        StageOptions options, TaskScheduler loop, CipherInfo cipher, byte[] masterKey, ISaltFilter? remember = null) =>
        new(UdpStageGuard.Isolate("udp.encrypt", datagram =>
        {
            var start = datagram.Offset - cipher.SaltSize;
            var size = UdpPacketCodec.MaxPacketSize(cipher, datagram.Length);
            datagram.Length = UdpPacketCodec.Encrypt(cipher, masterKey, datagram.Data, datagram.Buffer.AsSpan(start, size));
            if (remember is not null && cipher.SaltSize > 0)
            {
                _ = remember.TryAdd(datagram.Buffer.AsSpan(start, cipher.SaltSize)); // false only for a filter's false positive
            }

            datagram.Offset = start;
            return datagram.Alone;
        }), BlockOptions.OnLoop(options, loop));

    /// <summary>
    /// Yields nothing for a packet that is too short or fails authentication (counted, buffer returned). With
    /// <paramref name="replays"/> (the server) a packet whose salt was seen before, a replayed recording, is dropped
    /// too, unanswered (as ss-server does); a salt is remembered only once its packet authenticated.
    /// </summary>
    public static TransformManyBlock<Datagram, Datagram> Decrypt(
        StageOptions options, TaskScheduler loop, CipherInfo cipher, byte[] masterKey, ISaltFilter? replays = null) =>
        new(UdpStageGuard.Isolate("udp.decrypt", datagram =>
        {
            var payload = datagram.Buffer.AsSpan(datagram.Offset + cipher.SaltSize);
            if (!UdpPacketCodec.TryDecrypt(cipher, masterKey, datagram.Data, payload, out var length))
            {
                PipelineTelemetry.AuthenticationFailures.Add(1, TransportTags.Udp);
                UdpCounters.Drop(datagram, "authentication failed");
                return [];
            }

            if (replays is not null && cipher.SaltSize > 0 && !replays.TryAdd(datagram.Buffer.AsSpan(datagram.Offset, cipher.SaltSize)))
            {
                PipelineTelemetry.AuthenticationFailures.Add(1, TransportTags.Udp);
                UdpCounters.Drop(datagram, "replayed salt");
                return [];
            }

            datagram.Offset += cipher.SaltSize;
            datagram.Length = length;
            return datagram.Alone;
        }), BlockOptions.OnLoop(options, loop));
}
