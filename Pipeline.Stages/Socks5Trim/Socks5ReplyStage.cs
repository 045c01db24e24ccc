using System.Net.Sockets;
using System.Threading.Tasks.Dataflow;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Stages.AddHeader;
using Shadowsocks.Pipeline.Stages.Connections;

namespace Shadowsocks.Pipeline.Stages.Socks5Trim;

/// <summary>
/// Shared, connection-level (local, direct connections of an ACL): once the destination is connected, tells the
/// SOCKS5 client it succeeded. No address header: the bytes go to the destination as the client sent them.
/// </summary>
internal static class Socks5ReplyStage
{
    public const string Name = "socks5_reply";

    public static TransformBlock<TcpSession, TcpSession> Create(StageOptions options) =>
        new(StageGuard.Isolate(Name, async session =>
        {
            using var span = StageActivity.Start(Name, session, options);
            try
            {
                await AddHeaderStage.ReplySucceededAsync(session).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                span.Fail(e.Message);
                session.Fail($"socks5 reply: {e.Message}");
            }

            return session;
        }), BlockOptions.Shared(options));
}
