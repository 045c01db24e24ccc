using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Tests.Stages.Connect;

/// <summary>
/// The end of a half-closed client's exchange through our server: the destination gets the request ("ping") and the
/// client's FIN passed on, answers ("pong") and closes; the client gets the answer (encrypted: more than a salt), then
/// the end of the stream. Shared by the tests of a client that half-closes while the server looks up or connects.
/// </summary>
internal static class HalfClosedExchange
{
    public static async Task AssertServedAsync(Socket fromServer, Socket client, int saltSize, CancellationToken cancellationToken)
    {
        var buffer = new byte[64];
        var got = 0;
        int read;
        while ((read = await fromServer.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, cancellationToken)) > 0)
        {
            got += read; // the request, then the client's FIN passed on
        }

        Assert.Equal("ping"u8.ToArray(), buffer[..got]);
        await fromServer.SendAsync("pong"u8.ToArray(), SocketFlags.None, cancellationToken);
        fromServer.Shutdown(SocketShutdown.Send);

        // The answer reaches the client (encrypted: a salt and a chunk), then the end of the stream.
        var answer = 0;
        while ((read = await client.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
        {
            answer += read;
        }

        Assert.True(answer > saltSize, $"the client got {answer} bytes");
    }
}
