using System.Net.Sockets;
using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class SocketSendTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ASendThatFits_CompletesAtOnce()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        var sending = SocketSend.SendAllAsync(writer, "hello"u8.ToArray(), CancellationToken.None);
        Assert.True(sending.IsCompletedSuccessfully);
        var buffer = new byte[16];
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buffer, 0, await reader.ReceiveAsync(buffer)));
    }

    [Fact]
    public async Task ASendThatDoesNotFit_WaitsForTheReader_AndDeliversEveryByteInOrder()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        writer.SendBufferSize = 16 * 1024;
        reader.ReceiveBufferSize = 16 * 1024;
        var payload = Enumerable.Range(0, 8 * 1024 * 1024).Select(i => (byte)(i * 7)).ToArray();

        var sending = SocketSend.SendAllAsync(writer, payload, CancellationToken.None).AsTask();
        await Task.Delay(100);
        Assert.False(sending.IsCompleted); // nobody reads yet: the rest waits for room

        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (received.Length < payload.Length)
        {
            var n = await reader.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(s_wait);
            Assert.NotEqual(0, n);
            received.Write(buffer, 0, n);
        }

        await sending.WaitAsync(s_wait);
        Assert.Equal(payload, received.ToArray());
    }

    [Fact]
    public async Task ACancelledToken_SendsNothing()
    {
        var (reader, writer) = await SocketReceiveBridgeTests.ConnectedPairAsync();
        using var _ = reader;
        using var __ = writer;
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SocketSend.SendAllAsync(writer, new byte[10], cancel.Token).AsTask());
        reader.Blocking = false;
        Assert.Equal(0, reader.Available);
    }

    [Fact]
    public async Task AFastOpenSocketsFirstSend_BeforeItHasACookie_WaitsForTheConnect_AndDeliversTheBytes()
    {
        // A listener without TCP Fast Open never hands out a cookie: the first send only starts the connect
        // ("in progress"), and the bytes must follow once it is established.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.SetRawSocketOption(6, 30, BitConverter.GetBytes(1)); // TCP_FASTOPEN_CONNECT
        var connecting = SocketIo.ConnectAsync(client, listener.LocalEndPoint!, CancellationToken.None);
        Assert.True(connecting.IsCompletedSuccessfully); // no SYN yet: it waits for the first data

        await SocketSend.SendAllAsync(client, "hello"u8.ToArray(), CancellationToken.None).AsTask().WaitAsync(s_wait);
        using var accepted = await listener.AcceptAsync().WaitAsync(s_wait);
        var buffer = new byte[16];
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buffer, 0, await accepted.ReceiveAsync(buffer).WaitAsync(s_wait)));
    }
}
