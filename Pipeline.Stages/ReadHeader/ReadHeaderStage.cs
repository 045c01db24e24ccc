using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.ReadHeader;

/// <summary>
/// Shared, connection-level (server): decrypts the client's first bytes until the address header is complete.
/// Keeps the decryptor for the rest of the stream and any data after the header as the initial payload.
/// The salt of an authenticated stream is remembered; a salt seen before (a replay) counts as an authentication
/// failure. An authentication failure or a bad header marks the session for draining (probe resistance: no answer, no
/// input-dependent close). A multi-user 2022 server (SIP023) reads with its <c>users</c>: a request naming none of them
/// fails as a bad tag does, and the user it names goes on the connection's span (<c>user.name</c>).
/// <para>
/// It never waits for the client: it takes the bytes that are there (a session comes here once
/// <see cref="WaitForBytesStage"/> has seen some), and a header still incomplete when they run out leaves with its
/// <see cref="TcpSession.PendingHeader"/> for another wait, so a slot here is held only while there are bytes to work on.
/// </para>
/// </summary>
internal static class ReadHeaderStage
{
    public const string Name = "read_header";

    /// <summary>Ciphertext read per receive while looking for the header: one AEAD chunk with its length and tags.</summary>
    private const int ReceiveSize = 2 + 16 + 0x3FFF + 16;

    public static TransformBlock<TcpSession, TcpSession> Create(
        StageOptions options, CipherInfo cipher, byte[] masterKey, TimeProvider timeProvider, ISaltFilter? replays = null,
        ServerUsers? users = null) =>
        new(StageGuard.Isolate(Name, session =>
        {
            // One span per header, not per piece: a pass that ends waiting for more bytes has none (the waits make one
            // of their own), and the one that ends the header starts its span when the header's first piece came.
            var progress = session.PendingHeader ?? new HeaderProgress(cipher.SaltSize) { Started = DateTime.UtcNow };
            session.PendingHeader = null;
            var decryptor = session.Decryptor ??= ShadowsocksStreamCodec.CreateDecryptor(cipher, masterKey, time: timeProvider, users: users);

            // The plaintext buffer is rented at the first bytes and never held across a wait (see HeaderProgress).
            byte[]? plain = null;
            var filled = 0;
            if (progress.Plain.Length > 0)
            {
                plain = Room(null, 0, progress.Plain.Length);
                progress.Plain.CopyTo(plain, 0);
                filled = progress.Plain.Length;
            }

            var salt = progress.Salt;
            try
            {
                SocketIo.NonBlocking(session.Client);

                while (true)
                {
                    if (!SocketIo.TryReceiveRented(session.Client, ReceiveSize, out var input))
                    {
                        // Nothing more yet: wait for it outside this stage, keeping what there is.
                        progress.Plain = filled == 0 ? [] : plain.AsSpan(0, filled).ToArray();
                        session.PendingHeader = progress;
                        break;
                    }

                    if (input.Length == 0)
                    {
                        input.Return();
                        session.Fail("client closed before the address header");
                        break;
                    }

                    if (progress.SaltFilled < salt.Length)
                    {
                        var take = Math.Min(salt.Length - progress.SaltFilled, input.Length);
                        input.Span[..take].CopyTo(salt.AsSpan(progress.SaltFilled));
                        progress.SaltFilled += take;
                    }

                    plain = Room(plain, filled, decryptor.MaxOutputSize(input.Length));
                    var status = decryptor.Decrypt(input.Span, plain.AsSpan(filled), out var written);
                    input.Return();
                    if (status != DecryptStatus.Ok)
                    {
                        PipelineTelemetry.AuthenticationFailures.Add(1, TransportTags.Tcp);
                        session.Fail($"authentication failed: {status}", drain: true);
                        break;
                    }

                    filled += written;
                    var header = AddressHeader.TryRead(plain.AsSpan(0, filled), out var address, out var consumed);
                    if (header == AddressParseStatus.Ok && salt.Length > 0 && replays?.TryAdd(salt) == false)
                    {
                        // A salt this server has accepted before: a replayed recording. Treated as an authentication
                        // failure, so it is drained like any probe and never reaches the destination.
                        PipelineTelemetry.AuthenticationFailures.Add(1, TransportTags.Tcp);
                        session.Fail("replayed salt", drain: true);
                        break;
                    }

                    if (header == AddressParseStatus.Ok)
                    {
                        session.Destination = address;
                        session.HeaderReadAt = timeProvider.GetTimestamp();
                        if (decryptor is Aead2022StreamDecryptor { User: { } user })
                        {
                            session.User = user.Name;
                            session.Span?.SetTag(TagNames.UserName, user.Name);

                            // Found before a reload took the user off the list, marked after it looked for marked
                            // connections: one of the two sees the other (a fence each side), so this one is refused here.
                            Interlocked.MemoryBarrier();
                            if (users?.Serves(user) == false)
                            {
                                PipelineTelemetry.AuthenticationFailures.Add(1, TransportTags.Tcp);
                                session.Fail($"user {user.Name} is no longer served", drain: true);
                                break;
                            }
                        }

                        session.Span?.SetTag(TagNames.ServerAddress, address.Host ?? address.Ip!.ToString());
                        session.Span?.SetTag(TagNames.ServerPort, (int)address.Port);
                        if (filled > consumed)
                        {
                            session.InitialPayload = Chunk.CopyOf(plain.AsSpan(consumed, filled - consumed));
                        }

                        break;
                    }

                    if (header != AddressParseStatus.Incomplete)
                    {
                        PipelineTelemetry.HandshakeFailures.Add(1);
                        session.Fail($"bad address header: {header}", drain: true);
                        break;
                    }
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                session.Fail($"reading the address header: {e.Message}");
            }
            finally
            {
                if (plain is not null)
                {
                    new Chunk(plain, 0).Return();
                }
            }

            if (session.IsAlive && session.PendingHeader is not null)
            {
                return Task.FromResult(session);
            }

            WaitForBytesStage.EndSpan(session);
            using var span = StageActivity.Start(Name, session, options);
            span?.SetStartTime(progress.Started);
            if (!session.IsAlive)
            {
                session.PendingHeader = null;
                span.Fail(session.FailureReason!);
            }

            return Task.FromResult(session);
        }), BlockOptions.Shared(options));

    /// <summary>
    /// The plaintext buffer with room for <paramref name="more"/> bytes after the <paramref name="filled"/> ones: rented
    /// at the first bytes (one chunk's worth), and grown when a large first chunk arrives in pieces (its part buffered
    /// in the decryptor comes out with the next piece). The header is complete or malformed within 259 bytes, so this
    /// stays under two chunks (SIP004), or one variable header of up to 0xFFFF bytes and a chunk (2022).
    /// </summary>
    private static byte[] Room(byte[]? plain, int filled, int more)
    {
        if (plain is null)
        {
            return Chunk.RentBuffer(Math.Max(AddressHeader.MaxSize + ReceiveSize, more));
        }

        if (plain.Length - filled >= more)
        {
            return plain;
        }

        var larger = Chunk.RentBuffer(filled + more);
        plain.AsSpan(0, filled).CopyTo(larger);
        new Chunk(plain, 0).Return();
        return larger;
    }
}
