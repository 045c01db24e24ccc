using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Multiplexing;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Stages.Connections;
using Shadowsocks.Pipeline.Stages.Socks5Trim;

namespace Shadowsocks.Pipeline.Stages.AddHeader;

/// <summary>
/// Shared, connection-level (local and tunnel): once the server is connected, tells a SOCKS5 client it succeeded,
/// then builds the stream's first plaintext: the address header followed by whatever the client sends within
/// <see cref="FirstDataWait"/>. Sending header and first data together keeps the first packet's length from
/// giving away the header's (a fixed-size first packet is a classic fingerprint).
/// </summary>
internal static class AddHeaderStage
{
    public const string Name = "add_header";

    /// <summary>How long to wait for the client's first bytes before sending the header alone (server-speaks-first protocols).</summary>
    public static readonly TimeSpan FirstDataWait = TimeSpan.FromMilliseconds(20);

    /// <summary>At most this much first data rides with the header: one AEAD chunk's payload (0x3FFF) less the largest header.</summary>
    private const int MaxFirstData = 0x3FFF - AddressHeader.MaxSize;

    public static TransformBlock<TcpSession, TcpSession> Create(StageOptions options, bool replyToSocks5, TimeProvider timeProvider) =>
        new(async session =>
        {
            using var span = StageActivity.Start(Name, session, options);
            try
            {
                if (replyToSocks5)
                {
                    await ReplySucceededAsync(session).ConfigureAwait(false);
                }

                var pending = session.InitialPayload;
                var headerSize = AddressHeader.GetSize(session.Destination);
                var first = Chunk.RentBuffer(headerSize + MaxFirstData);
                var filled = AddressHeader.Write(session.Destination, first);
                if (pending is { } early)
                {
                    early.Span.CopyTo(first.AsSpan(filled));
                    filled += early.Length;
                    early.Return();
                    session.InitialPayload = null;
                }
                else
                {
                    filled += await ReceiveFirstDataAsync(session, first.AsMemory(filled, MaxFirstData), timeProvider).ConfigureAwait(false);
                }

                session.InitialPayload = new Chunk(first, filled);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                span.Fail(e.Message);
                session.Fail($"add header: {e.Message}");
            }

            return session;
        }, BlockOptions.Shared(options));

    /// <summary>Tells the SOCKS5 client its CONNECT succeeded, with the address it is connected to on our side.</summary>
    internal static async ValueTask ReplySucceededAsync(TcpSession session)
    {
        var reply = new byte[22];
        var bound = session.Client.LocalEndPoint is IPEndPoint local ? ShadowsocksAddress.FromEndPoint(local) : (ShadowsocksAddress?)null;
        var length = Socks5Codec.WriteReply(Socks5Reply.Succeeded, bound, reply);
        session.Socks5ReplyPending = false;
        await SocketSend.SendAllAsync(session.Client, reply.AsMemory(0, length), session.Cancellation.Token).ConfigureAwait(false);
    }

    private static async ValueTask<int> ReceiveFirstDataAsync(TcpSession session, Memory<byte> destination, TimeProvider timeProvider)
    {
        using var wait = SocketReads.Deadline(FirstDataWait, timeProvider, session.Cancellation.Token);
        try
        {
            await SocketReadiness.ReadableAsync(session.Client, wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!session.Cancellation.IsCancellationRequested)
        {
            return 0;
        }

        return session.Client.Available > 0
            ? await SocketIo.ReceiveAsync(session.Client, destination, session.Cancellation.Token).ConfigureAwait(false)
            : 0;
    }
}
