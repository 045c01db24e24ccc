using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Caching;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Decrypt;
using Shadowsocks.Pipeline.Stages.Encrypt;
using Shadowsocks.Pipeline.Stages.Forward;

namespace Shadowsocks.Pipeline.Stages.Relay;

/// <summary>
/// The per-connection data stages every TCP relay ends in, linked in flow order:
/// <code>
///  plain side ─readiness─► [encrypt] ─► [forward] ─► cipher side
///  plain side ◄─ [forward] ◄─ [decrypt] ◄─readiness─ cipher side
/// </code>
/// The plain side is the SOCKS5 or tunnel client on the local, the destination on the server; the cipher side
/// is the other end of the Shadowsocks stream. Each direction's blocks are built per burst of data
/// (<see cref="SocketReceiveBridge"/>) and its cipher state on first use, so an idle connection holds neither.
/// A FIN read on one side drains that direction and then shuts down sending toward the other side (half-close);
/// the other direction flows on until it ends too. A reset read on one side, or a send to it that fails, ends the
/// connection with a reset on both sides once what that side sent before it has gone out, and a stream that fails authentication ends
/// with a reset toward the plain side: a peer never takes a stream cut off that way for a complete one, and it gets
/// what was queued toward it before the reset (<see cref="ResetAfterDelivery"/>); a server's client whose stream fails
/// authentication is not told at all: it is drained, as a failed header is (<see cref="TcpSession.ClientFailedAuthentication"/>). Through a
/// local and a server, a reset on either end thereby reaches the other end as a reset. The idle timer, and any other
/// fault, close both sides as usual.
/// </summary>
internal static class CipherDuplex
{
    /// <summary>
    /// Plaintext read into a buffer of <paramref name="bufferSize"/> bytes (a pool bucket, from the relay's
    /// <see cref="ReadBudget"/>): as much as its AEAD chunks (payload at most 0x3FFF each) carry while their ciphertext,
    /// with the per-chunk overhead (2-byte length + 2 tags) and the salt, still fits the same bucket. Full chunks alone
    /// would overflow it by a few hundred bytes and make every ciphertext chunk rent an array of twice the size.
    /// 128 KiB reads moved 4–10 % more than 64 KiB in an A/B on every bulk case (bench/RESULTS.md, 2026-11-26).
    /// </summary>
    internal static int PlainReadIn(int bufferSize) => bufferSize - ((bufferSize / 0x4000) * (2 + 16 + 16)) - 32;

    /// <summary>Ciphertext read into a buffer: all of it.</summary>
    private static int CipherReadIn(int bufferSize) => bufferSize;

    private static readonly DataflowLinkOptions s_propagate = new() { PropagateCompletion = true };

    public static async Task RunAsync(
        TcpSession session, Socket plainSide, Socket cipherSide, bool plainSideIsClient, RelayOptions options, IdleTimer idle, TimeProvider time,
        ClientSide? clientSide = null, ISaltFilter? ownSalts = null)
    {
        var token = session.Cancellation.Token;
        var pipeline = options.Pipeline;
        IStreamEncryptor? encryptor = null;
        var encryptedBytes = new ByteCount(plainSideIsClient ? Direction.Upstream : Direction.Downstream, session.User);
        var decryptedBytes = new ByteCount(plainSideIsClient ? Direction.Downstream : Direction.Upstream, session.User);
        var encryptInFlight = new ChunksInFlight(options.ReadBudget);
        var decryptInFlight = new ChunksInFlight(options.ReadBudget);

        // The codecs, on first use. A 2022 stream's two directions know each other: the server's response names the
        // request's salt (its decryptor is the read-header stage's), and the client's decryptor checks that name.
        IStreamEncryptor Encryptor() =>
            encryptor ??= session.Direct ? PlainStreamCodec.Instance
                : ShadowsocksStreamCodec.CreateEncryptor(
                    options.Cipher, options.MasterKey, answering: plainSideIsClient ? null : session.Decryptor, time, clientSide?.Identities, ownSalts);
        IStreamDecryptor Decryptor() =>
            session.Decryptor ??= session.Direct ? PlainStreamCodec.Instance
                : ShadowsocksStreamCodec.CreateDecryptor(options.Cipher, options.MasterKey, request: plainSideIsClient ? Encryptor() : null, time);

        // How a broken connection ends, decided where it breaks (before a block's fault, or a stalled drain, lets
        // anything else end it): a reset read or a failed send resets both sides. A stream that fails authentication
        // resets both on a local (the server is ours), and only the destination on a server: its Shadowsocks client
        // gets nothing more and is drained until it closes or the idle timeout (probe resistance, PROTOCOL.md;
        // SessionRunner drains it).
        Action<Socket> readFailed = socket => session.MarkBroken(socket, BrokenBy.Reset);
        Action<Socket, SocketError> sendFailed = session.SendFailed;
        Action cipherSideFailedAuthentication = plainSideIsClient
            ? () => session.Broken(cipherSide, BrokenBy.AuthenticationFailed)
            : session.ClientFailedAuthentication;

        // Encrypt direction, per burst: plain side → encrypt → forward → cipher side.
        ChunkChain OpenEncryptChain()
        {
            var codec = Encryptor();
            var encrypt = EncryptStage.Create(codec, pipeline.Encrypt, token);
            var forward = ForwardStage.Create(cipherSide, pipeline.Forward, encryptedBytes.Add, encryptInFlight, sendFailed, token);
            encrypt.LinkTo(forward, s_propagate);
            return Watch(session, new ChunkChain(encrypt, ReleaseKeyScheduleAfter(forward.Completion, codec.ReleaseKeySchedule)));
        }

        // Decrypt direction, per burst: cipher side → decrypt → forward → plain side. The server's plaintext that
        // came with the header (already decrypted by the read-header stage) goes straight to the forward block.
        ChunkChain OpenDecryptChain(Chunk? alreadyDecrypted)
        {
            var codec = Decryptor();
            var decrypt = DecryptStage.Create(codec, pipeline.Decrypt, cipherSideFailedAuthentication, token);
            var forward = ForwardStage.Create(plainSide, pipeline.Forward, decryptedBytes.Add, decryptInFlight, sendFailed, token);
            decrypt.LinkTo(forward, s_propagate);
            if (alreadyDecrypted is { } plain)
            {
                decryptInFlight.Post(forward, plain);
            }

            return Watch(session, new ChunkChain(decrypt, ReleaseKeyScheduleAfter(forward.Completion, codec.ReleaseKeySchedule)));
        }

        // At the idle timeout, a side the relay still holds bytes for is reset rather than sent a FIN.
        session.HoldsUndelivered = socket => (ReferenceEquals(socket, plainSide) ? decryptInFlight : encryptInFlight).Count > 0;

        // What the handshake stages hold goes first: the local's header and first data, the server's data after the header.
        ChunkChain? firstEncrypt = null;
        ChunkChain? firstDecrypt = null;
        if (session.InitialPayload is { } initial)
        {
            session.InitialPayload = null;
            if (plainSideIsClient)
            {
                firstEncrypt = OpenEncryptChain();
                encryptInFlight.Post(firstEncrypt.Head, initial);
            }
            else
            {
                firstDecrypt = OpenDecryptChain(initial);
            }
        }

        if (firstDecrypt is null)
        {
            // The server's read-header stage is done with the decryptor and no data came with the header: the
            // connection may now sit idle, so the key schedule goes until the first data (the local has none yet).
            session.Decryptor?.ReleaseKeySchedule();
        }

        try
        {
            var ended = new StrongBox<int>();
            var encryptDirection = RunDirectionAsync(session, plainSide, OpenEncryptChain, firstEncrypt, cipherSide, PlainReadIn, encryptInFlight, decryptInFlight, idle, ended, readFailed,
                plainSideIsClient ? Direction.Upstream : Direction.Downstream, encryptedBytes, ("encrypt", pipeline.Encrypt), pipeline.Forward);
            var decryptDirection = RunDirectionAsync(session, cipherSide, () => OpenDecryptChain(null), firstDecrypt, plainSide, CipherReadIn, decryptInFlight, encryptInFlight, idle, ended, readFailed,
                plainSideIsClient ? Direction.Downstream : Direction.Upstream, decryptedBytes, ("decrypt", pipeline.Decrypt), pipeline.Forward);

            // This method's frame lives as long as the connection: it must not keep the first burst's blocks alive
            // after the pumps have let them go (an idle connection holds no blocks).
            firstEncrypt = firstDecrypt = null;
            await Task.WhenAll(encryptDirection, decryptDirection).ConfigureAwait(false);
        }
        finally
        {
            encryptor?.Dispose();
        }
    }

    /// <summary>
    /// One direction's pump and span. The span stands for the direction's per-connection stages (encrypt or decrypt,
    /// then forward; no span per chunk): it carries the cipher stage's tuning as <c>pipeline.stage.*</c> and the
    /// forward stage's as <c>pipeline.forward.*</c>, and the bytes relayed.
    /// </summary>
    private static async Task RunDirectionAsync(
        TcpSession session, Socket from, Func<ChunkChain> open, ChunkChain? first, Socket to, Func<int, int> readSizeIn, ChunksInFlight inFlight, ChunksInFlight towardFrom, IdleTimer idle,
        StrongBox<int> ended, Action<Socket> readFailed, string name, ByteCount sent,
        (string Name, StageOptions Options) cipherStage, StageOptions forward)
    {
        using var span = PipelineTelemetry.Source.StartActivity(name, ActivityKind.Internal, session.Span?.Context ?? default);
        if (span is not null)
        {
            span.SetTag(TagNames.Stage, name);
            span.SetTag(TagNames.CipherStage, cipherStage.Name);
            span.SetTag(TagNames.StageMaxParallelism, cipherStage.Options.MaxParallelism);
            span.SetTag(TagNames.StageBoundedCapacity, cipherStage.Options.BoundedCapacity);
            span.SetTag(TagNames.ForwardMaxParallelism, forward.MaxParallelism);
            span.SetTag(TagNames.ForwardBoundedCapacity, forward.BoundedCapacity);
        }

        var pumping = SocketReceiveBridge.RunAsync(from, open, first, inFlight, readSizeIn, _ => idle.Touch(), session.Cancellation.Token, readFailed);
        first = null; // the pump owns the first chain now and drops it when the burst ends
        var outcome = await pumping.ConfigureAwait(false);
        span?.SetTag(TagNames.Bytes, sent.Value); // the metric had each chunk as it went (ByteCount)
        if (outcome != ReceiveOutcome.EndOfStream)
        {
            span?.SetStatus(ActivityStatusCode.Error, outcome.ToString());
        }

        if (outcome == ReceiveOutcome.EndOfStream && towardFrom.Count > 0 && session.ClosedWithoutFin(from))
        {
            // An end of stream that is a reset: a send to this side, still counted in flight, took the reset's error,
            // and its failure has not marked the side yet (SendFailed will find this read ended). Asked only then: no
            // send under way, no error taken (a receive would have returned it). A reset that came in reply to data
            // sent after the peer's own FIN leaves EPIPE, not ECONNRESET: its stream was complete, and the FIN goes on
            // before the reset.
            session.MarkBroken(from, BrokenBy.Reset, finFirst: SocketIo.PendingError(from) == (int)SocketError.Shutdown);
        }

        if (session.ReadEnded(from, endOfStream: outcome == ReceiveOutcome.EndOfStream))
        {
            // This side broke (a reset read here, marked when the pump read it, or a send to it that failed): what it
            // sent before has gone out, and the connection ends with a reset toward the other side, not a FIN.
            span?.SetStatus(ActivityStatusCode.Error, "reset");
            return;
        }

        if (outcome != ReceiveOutcome.EndOfStream)
        {
            session.Fault();
            return;
        }

        // Half-close: what came to an end on one side ends sending toward the other.
        session.SendingFin(to);
        try
        {
            to.Shutdown(SocketShutdown.Send);
            span?.SetStatus(ActivityStatusCode.Ok);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed by the other direction's teardown.
        }

        if (session.HalfClosedAfterBreak(from))
        {
            return; // the side had closed with a FIN and then reset (EPIPE): FIN passed on, then the reset
        }

        if (Interlocked.Increment(ref ended.Value) == 1)
        {
            HalfOpenWatch.Shared.Watch(session, from); // the other direction goes on: a reset on this side must still end it
        }
    }

    /// <summary>
    /// A burst's end: once its blocks have drained, nothing uses the cipher until the next burst (which the pump opens
    /// only after this task), so it gives back its key schedule (AES-GCM: 1.7 KiB of native memory per direction).
    /// A chain that fails keeps its fault or cancellation.
    /// </summary>
    private static async Task ReleaseKeyScheduleAfter(Task drained, Action release)
    {
        await drained.ConfigureAwait(false);
        release();
    }

    /// <summary>
    /// A chain that faults or is cancelled tears the whole connection down, even while its pump waits for data; one
    /// whose send failed leaves that to the end of the read of the side it sent to (<see cref="TcpSession.SendFailed"/>).
    /// </summary>
    private static ChunkChain Watch(TcpSession session, ChunkChain chain)
    {
        chain.Tail.ContinueWith(
            static (_, state) => ((TcpSession)state!).Fault(),
            session,
            CancellationToken.None,
            TaskContinuationOptions.NotOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        return chain;
    }
}
