namespace Shadowsocks.Pipeline.Hosts.Configuration;

/// <summary>Which protocols a verb relays: <c>mode</c> in config.json, <c>-u</c> and <c>-U</c> on the command line.</summary>
internal enum RelayMode
{
    TcpOnly,
    TcpAndUdp,
    UdpOnly,
}
