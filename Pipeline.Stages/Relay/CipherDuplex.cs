using System.Diagnostics;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
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
/// is the other end of the Shadowsocks stream. A FIN read on one side completes that direction's blocks and
/// then shuts down sending toward the other side (half-close); the other direction flows on until it ends too.
/// A fault, a reset or the idle timer tears the whole connection down.
/// </summary>
internal static class CipherDuplex
{
    /// <summary>Plaintext read per receive: two full AEAD chunks (payload at most 0x3FFF each).</summary>
    private const int PlainReceiveSize = 2 * 0x3FFF;

    /// <summary>Ciphertext read per receive.</summary>
    private const int CipherReceiveSize = 32 * 1024;

    private static readonly DataflowLinkOptions s_propagate = new() { PropagateCompletion = true };

    public static async Task RunAsync(
        TcpSession session,
        Socket plainSide,
        Socket cipherSide,
        bool plainSideIsClient,
        IStreamEncryptor encryptor,
        IStreamDecryptor decryptor,
        PipelineOptions options,
        IdleTimer idle)
    {
        var token = session.Cancellation.Token;

        // Encrypt direction: plain side → encrypt → forward → cipher side.
        var encrypt = EncryptStage.Create(encryptor, options.Encrypt, token);
        var encryptedBytes = new ByteCount();
        var forwardCiphertext = ForwardStage.Create(cipherSide, options.Forward, encryptedBytes.Add, token);
        encrypt.LinkTo(forwardCiphertext, s_propagate);

        // Decrypt direction: cipher side → decrypt → forward → plain side.
        var decrypt = DecryptStage.Create(decryptor, options.Decrypt, token);
        var decryptedBytes = new ByteCount();
        var forwardPlaintext = ForwardStage.Create(plainSide, options.Forward, decryptedBytes.Add, token);
        decrypt.LinkTo(forwardPlaintext, s_propagate);

        // What the handshake stages already hold goes first: the local's header and first data, the server's data after the header.
        if (session.InitialPayload is { } initial)
        {
            session.InitialPayload = null;
            var first = plainSideIsClient ? encrypt.Post(initial) : forwardPlaintext.Post(initial);
            if (!first)
            {
                initial.Return();
            }
        }

        await Task.WhenAll(
            RunDirectionAsync(session, plainSide, encrypt, forwardCiphertext.Completion, cipherSide, PlainReceiveSize, idle,
                plainSideIsClient ? Direction.Upstream : Direction.Downstream, encryptedBytes),
            RunDirectionAsync(session, cipherSide, decrypt, forwardPlaintext.Completion, plainSide, CipherReceiveSize, idle,
                plainSideIsClient ? Direction.Downstream : Direction.Upstream, decryptedBytes)).ConfigureAwait(false);
    }

    private static async Task RunDirectionAsync(
        TcpSession session, Socket from, ITargetBlock<Chunk> head, Task tail, Socket to, int receiveSize, IdleTimer idle, string name, ByteCount sent)
    {
        using var span = PipelineTelemetry.Source.StartActivity(name, ActivityKind.Internal, session.Span?.Context ?? default);
        span?.SetTag(TagNames.Stage, name);
        var pump = SocketReceiveBridge.RunAsync(from, head, receiveSize, _ => idle.Touch(), session.Cancellation.Token);
        var ended = true;
        try
        {
            if (await Task.WhenAny(pump, tail).ConfigureAwait(false) == tail && tail.Status != TaskStatus.RanToCompletion)
            {
                Fail(session, span, tail.Exception?.InnerException?.Message ?? "cancelled");
                ended = false;
            }

            var outcome = await pump.ConfigureAwait(false);
            if (outcome != ReceiveOutcome.EndOfStream)
            {
                if (ended)
                {
                    Fail(session, span, outcome.ToString());
                }

                ended = false;
                return;
            }

            try
            {
                await tail.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Fail(session, span, e.Message);
                ended = false;
                return;
            }

            // Half-close: what came to an end on one side ends sending toward the other.
            try
            {
                to.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already closed by the other direction's teardown.
            }
        }
        finally
        {
            span?.SetTag(TagNames.Bytes, sent.Value);
            if (ended)
            {
                span?.SetStatus(ActivityStatusCode.Ok);
            }

            PipelineTelemetry.BytesRelayed.Add(sent.Value, new KeyValuePair<string, object?>(TagNames.Direction, name));
        }
    }

    private static void Fail(TcpSession session, Activity? span, string reason)
    {
        span?.SetStatus(ActivityStatusCode.Error, reason);
        session.Abort();
    }
}
