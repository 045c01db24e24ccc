using System.Net;

namespace Shadowsocks.Pipeline.Stages.Udp;

/// <summary>
/// Local: which client addresses hold a live SOCKS5 UDP ASSOCIATE (RFC 1928 § 7: an association lasts as long as
/// the TCP connection that asked for it). Datagrams from any other address are dropped; when an address's last
/// control connection closes, <c>ended</c> runs so its NAT entries close at once.
/// </summary>
internal sealed class UdpAssociations(Action<IPAddress> ended)
{
    private readonly Dictionary<IPAddress, int> _live = [];

    public bool Contains(IPAddress address)
    {
        lock (_live)
        {
            return _live.ContainsKey(address);
        }
    }

    public IDisposable Register(IPAddress address)
    {
        lock (_live)
        {
            _live[address] = _live.GetValueOrDefault(address) + 1;
        }

        return new Registration(this, address);
    }

    private void Unregister(IPAddress address)
    {
        lock (_live)
        {
            if (--_live[address] > 0)
            {
                return;
            }

            _live.Remove(address);
        }

        ended(address);
    }

    private sealed class Registration(UdpAssociations owner, IPAddress address) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Unregister(address);
            }
        }
    }
}
