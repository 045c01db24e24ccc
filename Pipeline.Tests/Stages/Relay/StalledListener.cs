using System.Net;
using System.Net.Sockets;

namespace Shadowsocks.Pipeline.Tests.Stages.Relay;

/// <summary>
/// A loopback listener whose accept queue is full, so the kernel drops further SYNs: a connect to it neither succeeds
/// nor fails until the connecting side gives up (a server or destination that does not answer).
/// </summary>
internal sealed class StalledListener : IDisposable
{
    private readonly Socket _listener;
    private readonly List<Socket> _fillers = [];

    /// <param name="address">Where it listens (127.0.0.1 by default).</param>
    /// <param name="port">Its port (any free one by default): another loopback address's port, to stand for one host of two addresses.</param>
    public StalledListener(IPAddress? address = null, int port = 0)
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(address ?? IPAddress.Loopback, port));
        _listener.Listen(0);
        for (var i = 0; i < 3; i++)
        {
            var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            _fillers.Add(filler);
            try
            {
                filler.Connect(_listener.LocalEndPoint!);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
            {
                // in progress, or stalled: either way the queue fills
            }
        }
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public void Dispose()
    {
        _fillers.ForEach(static f => f.Dispose());
        _listener.Dispose();
    }
}
